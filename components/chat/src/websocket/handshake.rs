//! Who may open a socket: only Pushpin speaks this protocol (`Grip-Sig`), and only a member of
//! the room with a valid access token gets subscribed. The same holds for as long as the socket
//! speaks: every later request is checked again ([`recheck`]), so a socket does not outlive its
//! token or its user's membership.
//!
//! The token travels in `Sec-WebSocket-Protocol` (`sendinchat.v1, bearer.<token>`) or in the
//! `token` query parameter. Browsers cannot set an `Authorization` header on a WebSocket, and a
//! token in the URL ends up in proxy and server logs and browser history; the subprotocol keeps
//! it out of URLs, so it is preferred, and the query parameter exists for clients that cannot
//! set subprotocols.
use chrono::{DateTime, Utc};
use jwt_compact::Claims;
use serde::Deserialize;
use shared::grip::session_channel;
use shared::ids::{RoomId, SessionId, UserId};
use shared::request::{query_pairs, query_value};
use shared::token::{Bearer, verify_hs256};

use super::{CLOSE_NO_SUCH_ROOM, CLOSE_NOT_MEMBER, CLOSE_UNAUTHORIZED, Exchange, Session};
use crate::error::ChatError;
use crate::realtime::{member_channel, room_channel};
use crate::settings::{SOCKET_RECHECK_INTERVAL_SECONDS_MIN, Settings};

/// The subprotocol the server speaks; clients that offer protocols must offer this one.
const SUBPROTOCOL: &str = "sendinchat.v1";
const TOKEN_SUBPROTOCOL_PREFIX: &str = "bearer.";
/// Pushpin's default `sig_iss`.
const GATEWAY_ISSUER: &str = "pushpin";

#[derive(Deserialize)]
struct GatewayClaims {
    iss: String,
}

/// Refuses requests that Pushpin did not sign with the shared key.
pub fn verify_gateway(settings: &Settings, headers: &http::HeaderMap) -> Result<(), ChatError> {
    let signature = headers.get("grip-sig").and_then(|value| value.to_str().ok()).ok_or(ChatError::NotFromGateway)?;
    let claims: Claims<GatewayClaims> =
        verify_hs256(&settings.grip_key, signature, Utc::now()).map_err(|_| ChatError::NotFromGateway)?;
    if claims.custom.iss == GATEWAY_ISSUER { Ok(()) } else { Err(ChatError::NotFromGateway) }
}

/// Answers OPEN: accept the socket, then either subscribe it to the room or close it with a code
/// that says why (bad token or ended session 4401, not a member 4403, no such room 4404).
pub async fn open(
    settings: &Settings,
    request: &http::request::Parts,
    room: Option<RoomId>,
    exchange: &mut Exchange,
) -> Result<(), ChatError> {
    exchange.events.push(super::protocol::Outgoing::Open);
    exchange.headers.push(("sec-websocket-extensions", "grip".into()));
    let offered = offered_subprotocols(&request.headers);
    if offered.iter().any(|protocol| protocol == SUBPROTOCOL) {
        exchange.headers.push(("sec-websocket-protocol", SUBPROTOCOL.into()));
    }
    let Some(bearer) = presented_bearer(settings, request, &offered) else {
        exchange.close(CLOSE_UNAUTHORIZED, "invalid or missing access token");
        return Ok(());
    };
    let Some(room) = room else {
        exchange.close(CLOSE_NO_SUCH_ROOM, "no such room");
        return Ok(());
    };
    if let Some(session) = check_authority(settings, room, bearer, exchange).await? {
        exchange.subscribe(&room_channel(room));
        // Leaving the room and ending the session publish a close to these, so either closes
        // the socket at once, without waiting for its next re-check.
        exchange.subscribe(&member_channel(room, bearer.user));
        exchange.subscribe(&session_channel(session));
        exchange.headers.push(("set-meta-user", bearer.user.to_string()));
        exchange.headers.push(("set-meta-room", room.to_string()));
        schedule_recheck(settings, &request.headers, bearer, exchange);
    }
    Ok(())
}

/// Asks Pushpin for a request without events (a keep-alive) after the socket has been quiet for
/// its re-check interval, or as soon as its token is refused if that comes first (not before
/// Pushpin's minimum of 20 s), so a socket that never speaks is re-checked too and closes when
/// its token expires. Pushpin takes the interval from every answer, so the last one before the
/// expiry lands on it.
fn schedule_recheck(settings: &Settings, headers: &http::HeaderMap, bearer: Bearer, exchange: &mut Exchange) {
    let interval =
        recheck_interval_seconds(settings.socket_recheck_interval_seconds, headers, bearer.refused_from(), Utc::now());
    exchange.headers.push(("keep-alive-interval", interval.to_string()));
}

/// The socket's keep-alive interval: the configured one stretched by up to half, by an amount
/// drawn from its `Connection-Id`, so sockets opened together (a reconnect storm after a deploy)
/// come back for their re-checks spread over time rather than all in the same second; but no
/// later than the moment `token_refused_from`.
fn recheck_interval_seconds(
    configured_seconds: u32,
    headers: &http::HeaderMap,
    token_refused_from: DateTime<Utc>,
    now: DateTime<Utc>,
) -> u32 {
    let stretched = match headers.get("connection-id").map(|value| value.as_bytes()) {
        Some(connection_id) => {
            // FNV-1a: a stable, well-spread number from the id; nothing here needs to be
            // unpredictable.
            let spread = connection_id.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, &byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
            });
            let stretch_max = u64::from(configured_seconds / 2);
            configured_seconds + (spread % (stretch_max + 1)) as u32
        }
        None => configured_seconds,
    };
    let until_refused = u32::try_from((token_refused_from - now).num_seconds()).unwrap_or(0);
    stretched.min(until_refused.max(SOCKET_RECHECK_INTERVAL_SECONDS_MIN))
}

/// Checks a request of an open socket as OPEN was checked: Pushpin sends the handshake's URI and
/// headers, token included, with every request. Closes the socket with 4401 when the token has
/// expired, names another user or belongs to a session that ended (logout, reuse detection), and
/// with 4403 when the user is no longer a member.
pub async fn recheck(
    settings: &Settings,
    request: &http::request::Parts,
    session: Session,
    exchange: &mut Exchange,
) -> Result<(), ChatError> {
    let offered = offered_subprotocols(&request.headers);
    match presented_bearer(settings, request, &offered) {
        Some(bearer) if bearer.user == session.user => {
            if check_authority(settings, session.room, bearer, exchange).await?.is_some() {
                schedule_recheck(settings, &request.headers, bearer, exchange);
            }
        }
        _ => exchange.close(CLOSE_UNAUTHORIZED, "the access token has expired or is invalid"),
    }
    Ok(())
}

/// The valid access token the request presents, in a subprotocol or in `?token=`.
fn presented_bearer(settings: &Settings, request: &http::request::Parts, offered: &[String]) -> Option<Bearer> {
    let token = offered
        .iter()
        .find_map(|protocol| protocol.strip_prefix(TOKEN_SUBPROTOCOL_PREFIX).map(str::to_owned))
        .or_else(|| query_pairs(&request.uri).ok().and_then(|query| query_value(&query, "token").map(str::to_owned)));
    settings.keys.verify_bearer(&token?, Utc::now()).ok()
}

fn offered_subprotocols(headers: &http::HeaderMap) -> Vec<String> {
    headers
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|protocol| protocol.trim().to_owned())
        .filter(|protocol| !protocol.is_empty())
        .collect()
}

/// The token's session when it is live and its user a member of `room`, in one query; closes the
/// socket (4401, 4403) when not. A token that names no session cannot be checked, so it opens no
/// socket.
async fn check_authority(
    settings: &Settings,
    room: RoomId,
    bearer: Bearer,
    exchange: &mut Exchange,
) -> Result<Option<SessionId>, ChatError> {
    let Some(session) = bearer.session else {
        exchange.close(CLOSE_UNAUTHORIZED, "the access token names no session");
        return Ok(None);
    };
    match standing(settings, session, room, bearer.user).await? {
        Standing::SessionEnded => exchange.close(CLOSE_UNAUTHORIZED, "the session has ended"),
        Standing::NotMember => exchange.close(CLOSE_NOT_MEMBER, "not a member of this room"),
        Standing::Member => {}
    }
    Ok((!exchange.closed).then_some(session))
}

/// Where a session's user stands in a room, as every re-check of a socket or stream asks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Member,
    NotMember,
    SessionEnded,
}

/// Whether `session` is live and `user` a member of `room`, in one query.
pub async fn standing(
    settings: &Settings,
    session: SessionId,
    room: RoomId,
    user: UserId,
) -> Result<Standing, ChatError> {
    let database = shared::db::connect(&settings.database_url).await?;
    let row = shared::db::optional_row(
        &database,
        "SELECT auth_session_is_live($1::int8) AS live, chat_is_member($2::int8, $3::int8) AS member",
        vec![session.get().into(), room.get().into(), user.get().into()],
    )
    .await?;
    let flag = |name: &str| row.as_ref().and_then(|row| row.get(name)).unwrap_or(false);
    Ok(match (flag("live"), flag("member")) {
        (false, _) => Standing::SessionEnded,
        (true, false) => Standing::NotMember,
        (true, true) => Standing::Member,
    })
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration, Utc};

    use super::recheck_interval_seconds;

    fn interval_for(connection_id: &str, token_refused_in: Duration, now: DateTime<Utc>) -> u32 {
        let mut headers = http::HeaderMap::new();
        headers.insert("connection-id", connection_id.parse().unwrap());
        recheck_interval_seconds(60, &headers, now + token_refused_in, now)
    }

    #[test]
    fn recheck_intervals_are_spread_over_half_again_the_configured_one() {
        let (now, later) = (Utc::now(), Duration::hours(1));
        let intervals: Vec<u32> =
            (0..200).map(|index| interval_for(&format!("condure-0-{index}"), later, now)).collect();
        assert!(intervals.iter().all(|seconds| (60..=90).contains(seconds)), "{intervals:?}");
        let distinct: std::collections::BTreeSet<_> = intervals.iter().collect();
        assert!(distinct.len() > 20, "spread over the range: {distinct:?}");
        assert_eq!(
            interval_for("condure-0-7", later, now),
            interval_for("condure-0-7", later, now),
            "stable per connection"
        );
        let no_id = recheck_interval_seconds(60, &http::HeaderMap::new(), now + later, now);
        assert_eq!(no_id, 60, "no id: the configured interval");
    }

    #[test]
    fn the_recheck_comes_no_later_than_the_token_is_refused_and_no_sooner_than_pushpin_allows() {
        let now = Utc::now();
        let spread: Vec<u32> =
            (0..50).map(|index| interval_for(&format!("c-{index}"), Duration::seconds(45), now)).collect();
        assert!(spread.iter().all(|seconds| *seconds == 45), "the expiry comes first: {spread:?}");
        assert_eq!(interval_for("c-1", Duration::seconds(5), now), 20, "Pushpin's minimum");
        assert_eq!(interval_for("c-1", Duration::seconds(-5), now), 20, "already refused: Pushpin's minimum");
    }
}
