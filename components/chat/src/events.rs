//! `GET /chat/rooms/{id}/events`: the room's events as Server-Sent Events, for clients that
//! cannot open WebSockets. Pushpin holds the stream (GRIP `Grip-Hold: stream`) and appends every
//! event published to the room's channels, in the `http-stream` format of the same publish that
//! reaches WebSockets. The app answers the opening request, then only Pushpin's re-checks at the
//! stream's next link (see `recheck`).
//!
//! Resuming: each message event carries `id: <message id>`, so a reconnecting `EventSource` sends
//! `Last-Event-ID`, which is read as `?after=`: the answer starts with the messages missed since,
//! then the stream is held. When more are missed than one page holds, the answer is that page
//! alone and the stream ends; the client reconnects with the page's last id for the next one.
use chrono::{DateTime, Utc};
use http::{HeaderValue, StatusCode, header};
use serde_json::Value;
use shared::grip::session_channel;
use shared::ids::{MessageId, PageLimit, RoomId, SessionId, UserId};
use shared::request::{query_pairs, query_value};
use shared::response::complete_reply;
use shared::token::{Bearer, bearer_token};
use shared::{ApiError, Reply};
use spin_sdk::http::Request;

use crate::error::ChatError;
use crate::realtime::{member_channel, message_event, room_channel};
use crate::settings::Settings;
use crate::websocket::{Standing, standing, verify_gateway};

/// An SSE comment Pushpin sends on idle streams, so proxies and clients keep them open.
const KEEP_ALIVE: &str = ":\\n\\n; format=cstring; timeout=20";

/// The messages a stream starts with.
struct Backlog {
    events: String,
    /// Whether more were missed than one page holds.
    has_more: bool,
}

pub async fn stream(settings: &Settings, request: Request, room: RoomId) -> Result<Reply, ChatError> {
    let query = query_pairs(request.uri())?;
    if let Some(credential) = query_value(&query, "recheck") {
        return recheck(settings, request.headers(), room, credential).await;
    }
    let bearer = authenticate(settings, request.headers(), &query)?;
    let after = resume_after(request.headers(), &query)?;
    // Only Pushpin can hold the stream open; straight from the API it would end at once. Checked
    // after the request's own faults, which a client must hear about wherever it sent it.
    verify_gateway(settings, request.headers()).map_err(|_| ChatError::StreamWithoutGateway)?;
    // As for a WebSocket: a token that names no session cannot be checked against a logout.
    let session = bearer.session.ok_or_else(|| ApiError::unauthorized("the access token names no session"))?;
    let backlog = backlog(settings, room, bearer.user, session, after).await?;
    let mut reply = event_stream_reply(backlog.events);
    if !backlog.has_more {
        hold(settings, &mut reply, room, bearer, session)?;
    }
    Ok(reply)
}

/// Pushpin asking, at the stream's next link, whether it may go on. Streams hear their session's
/// end and their member's departure as published closes, but a close published while the stream
/// was opening, before it subscribed, is lost; and a stream must not outlive its access token.
/// So, as a socket is by its keep-alive requests, a stream is re-checked: while its token is
/// valid, its session live and its user a member, it is held again (with a new next link);
/// otherwise an answer without a hold ends it. That answer is a 200, also for a credential that
/// does not verify (forged, or sent by a client itself): Pushpin retries a next link that answers
/// an error status, with back-off, before it ends the stream (Pushpin 1.36,
/// `handler/httpsession.cpp`), and an empty 200 reveals nothing.
async fn recheck(
    settings: &Settings,
    headers: &http::HeaderMap,
    room: RoomId,
    credential: &str,
) -> Result<Reply, ChatError> {
    verify_gateway(settings, headers).map_err(|_| ChatError::StreamWithoutGateway)?;
    let mut reply = event_stream_reply(String::new());
    let Ok(bearer) = settings.keys.verify_stream_recheck(credential, room, Utc::now()) else {
        return Ok(reply);
    };
    let session = bearer.session.expect("a re-check credential names its session");
    if standing(settings, session, room, bearer.user).await? == Standing::Member {
        hold(settings, &mut reply, room, bearer, session)?;
    }
    Ok(reply)
}

fn event_stream_reply(events: String) -> Reply {
    // Pushpin reads the whole reply and holds the client's stream itself: the reply is complete.
    let mut reply = complete_reply(StatusCode::OK, events.into());
    let headers = reply.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    reply
}

/// Asks Pushpin to hold the stream on the room's, the member's and the session's channels, and to
/// come back to the next link (see [`recheck`]) after the re-check interval, or sooner when the
/// token is refused sooner.
fn hold(
    settings: &Settings,
    reply: &mut Reply,
    room: RoomId,
    bearer: Bearer,
    session: SessionId,
) -> Result<(), ApiError> {
    let channels =
        format!("{}, {}, {}", room_channel(room), member_channel(room, bearer.user), session_channel(session));
    let recheck_seconds =
        recheck_interval_seconds(settings.socket_recheck_interval_seconds, bearer.refused_from(), Utc::now());
    let credential = settings.keys.issue_stream_recheck(bearer, session, room);
    let next_link = format!("</chat/rooms/{room}/events?recheck={credential}>; rel=next; timeout={recheck_seconds}");
    let headers = reply.headers_mut();
    headers.insert("grip-hold", HeaderValue::from_static("stream"));
    headers.insert("grip-channel", HeaderValue::try_from(channels).map_err(ApiError::internal)?);
    headers.insert("grip-keep-alive", HeaderValue::from_static(KEEP_ALIVE));
    headers.insert("grip-link", HeaderValue::try_from(next_link).map_err(ApiError::internal)?);
    Ok(())
}

/// Seconds until the stream's next re-check: the configured interval, or as soon as its token is
/// refused when that is sooner. Unlike a socket's keep-alive, a next link's timeout has no floor in
/// Pushpin, so the stream ends within a second of the refusal; never 0, which Pushpin would
/// request at once.
fn recheck_interval_seconds(configured_seconds: u32, token_refused_from: DateTime<Utc>, now: DateTime<Utc>) -> u32 {
    let until_refused = u32::try_from((token_refused_from - now).num_seconds()).unwrap_or(0);
    configured_seconds.min(until_refused.max(1))
}

/// The caller and their session, by `Authorization: Bearer` or, for `EventSource` (which cannot
/// set headers), the `token` query parameter.
fn authenticate(
    settings: &Settings,
    headers: &http::HeaderMap,
    query: &[(String, String)],
) -> Result<Bearer, ChatError> {
    if bearer_token(headers).is_some() {
        return Ok(settings.keys.authenticate_bearer(headers)?);
    }
    let token = query_value(query, "token").ok_or_else(|| ApiError::unauthorized("a bearer token is required"))?;
    let bearer = settings
        .keys
        .verify_bearer(token, Utc::now())
        .map_err(|_| ApiError::unauthorized("the access token is invalid"))?;
    shared::request_log::note_user(bearer.user);
    Ok(bearer)
}

/// `Last-Event-ID` (sent by a reconnecting `EventSource`), else `?after=`: a message id.
fn resume_after(headers: &http::HeaderMap, query: &[(String, String)]) -> Result<Option<MessageId>, ChatError> {
    let raw = match headers.get("last-event-id") {
        Some(value) => Some(value.to_str().unwrap_or_default()),
        None => query_value(query, "after"),
    };
    match raw {
        None => Ok(None),
        Some(raw) => MessageId::parse(raw).map(Some).ok_or_else(|| {
            ApiError::bad_request("invalid_cursor", "Last-Event-ID and after must be a message id").into()
        }),
    }
}

/// The messages after `after` as SSE events (none without a cursor); a non-member gets 404, and a
/// session that has ended (logged out) 401: its logout's close was published before this stream
/// subscribed, so only the stream's first re-check would end it.
async fn backlog(
    settings: &Settings,
    room: RoomId,
    user: UserId,
    session: SessionId,
    after: Option<MessageId>,
) -> Result<Backlog, ChatError> {
    let database = shared::db::connect(&settings.database_url).await?;
    // Without a cursor the page asked for is past the newest message: empty, but it still says
    // whether the caller is a member, in the same one query.
    let after = after.map_or(i64::MAX, MessageId::get);
    let limit = PageLimit::parse(None, settings.max_page_size)?;
    let row = shared::db::optional_row(
        &database,
        "SELECT auth_session_is_live($5::int8) AS live, \
            chat_history($1::int8, $2::int8, NULL, $3::int8, $4::int4) AS resource",
        vec![room.get().into(), user.get().into(), after.into(), limit.get().into(), session.get().into()],
    )
    .await?;
    if !row.as_ref().and_then(|row| row.get::<bool>("live")).unwrap_or(false) {
        return Err(ApiError::unauthorized("the session has ended").into());
    }
    let page: Option<String> = row.and_then(|row| row.get("resource"));
    let page: Value = serde_json::from_str(&page.ok_or_else(|| ChatError::Outcome("room_not_found".into()))?)
        .map_err(ApiError::internal)?;
    let mut events = String::new();
    for message in page["items"].as_array().into_iter().flatten() {
        let event = message_event(room, &message.to_string());
        if let shared::grip::EventBody::Text { content } = &event.body {
            events.push_str(&shared::grip::sse_event(event.stream_id, content));
        }
    }
    Ok(Backlog { events, has_more: page["has_more"].as_bool().unwrap_or(false) })
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, Utc};

    use super::recheck_interval_seconds;

    #[test]
    fn a_stream_is_rechecked_at_its_interval_or_once_its_token_is_refused() {
        let now = Utc::now();
        assert_eq!(recheck_interval_seconds(20, now + Duration::minutes(15), now), 20);
        assert_eq!(recheck_interval_seconds(20, now + Duration::seconds(7), now), 7);
        assert_eq!(recheck_interval_seconds(20, now + Duration::milliseconds(400), now), 1, "never 0");
        assert_eq!(recheck_interval_seconds(20, now - Duration::seconds(5), now), 1);
    }
}
