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
use chrono::Utc;
use jwt_compact::Claims;
use serde::Deserialize;
use shared::ids::RoomId;
use shared::request::{query_pairs, query_value};
use shared::token::{Bearer, verify_hs256};

use super::{CLOSE_NO_SUCH_ROOM, CLOSE_NOT_MEMBER, CLOSE_UNAUTHORIZED, Exchange, Session};
use crate::error::ChatError;
use crate::realtime::{member_channel, room_channel};
use crate::settings::Settings;

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
    if check_authority(settings, room, bearer, exchange).await? {
        exchange.subscribe(&room_channel(room));
        exchange.subscribe(&member_channel(room, bearer.user));
        exchange.headers.push(("set-meta-user", bearer.user.to_string()));
        exchange.headers.push(("set-meta-room", room.to_string()));
        // Pushpin asks again (a request without events) whenever the socket has been quiet this
        // long, so a socket that never speaks is re-checked too.
        let interval = recheck_interval_seconds(settings.socket_recheck_interval_seconds, &request.headers);
        exchange.headers.push(("keep-alive-interval", interval.to_string()));
    }
    Ok(())
}

/// The socket's keep-alive interval: the configured one stretched by up to half, by an amount
/// drawn from its `Connection-Id`. Sockets opened together (a reconnect storm after a deploy)
/// then come back for their re-checks spread over time rather than all in the same second.
fn recheck_interval_seconds(configured_seconds: u32, headers: &http::HeaderMap) -> u32 {
    let Some(connection_id) = headers.get("connection-id").map(|value| value.as_bytes()) else {
        return configured_seconds;
    };
    // FNV-1a: a stable, well-spread number from the id; nothing here needs to be unpredictable.
    let spread = connection_id
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3));
    let stretch_max = u64::from(configured_seconds / 2);
    configured_seconds + (spread % (stretch_max + 1)) as u32
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
            check_authority(settings, session.room, bearer, exchange).await?;
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

/// Whether the token's session is live and its user a member of `room`, in one query; closes the
/// socket (4401, 4403) when not. A token that names no session cannot be checked, so it opens no
/// socket.
async fn check_authority(
    settings: &Settings,
    room: RoomId,
    bearer: Bearer,
    exchange: &mut Exchange,
) -> Result<bool, ChatError> {
    let Some(session) = bearer.session else {
        exchange.close(CLOSE_UNAUTHORIZED, "the access token names no session");
        return Ok(false);
    };
    let database = shared::db::connect(&settings.database_url).await?;
    let row = shared::db::optional_row(
        &database,
        "SELECT auth_session_is_live($1::int8) AS live, chat_is_member($2::int8, $3::int8) AS member",
        vec![session.get().into(), room.get().into(), bearer.user.get().into()],
    )
    .await?;
    let flag = |name: &str| row.as_ref().and_then(|row| row.get(name)).unwrap_or(false);
    if !flag("live") {
        exchange.close(CLOSE_UNAUTHORIZED, "the session has ended");
    } else if !flag("member") {
        exchange.close(CLOSE_NOT_MEMBER, "not a member of this room");
    }
    Ok(!exchange.closed)
}

#[cfg(test)]
mod tests {
    use super::recheck_interval_seconds;

    fn interval_for(connection_id: &str) -> u32 {
        let mut headers = http::HeaderMap::new();
        headers.insert("connection-id", connection_id.parse().unwrap());
        recheck_interval_seconds(60, &headers)
    }

    #[test]
    fn recheck_intervals_are_spread_over_half_again_the_configured_one() {
        let intervals: Vec<u32> = (0..200).map(|index| interval_for(&format!("condure-0-{index}"))).collect();
        assert!(intervals.iter().all(|seconds| (60..=90).contains(seconds)), "{intervals:?}");
        let distinct: std::collections::BTreeSet<_> = intervals.iter().collect();
        assert!(distinct.len() > 20, "spread over the range: {distinct:?}");
        assert_eq!(interval_for("condure-0-7"), interval_for("condure-0-7"), "stable per connection");
        assert_eq!(recheck_interval_seconds(60, &http::HeaderMap::new()), 60, "no id: the configured interval");
    }
}
