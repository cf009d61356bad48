//! WebSocket-over-HTTP: Pushpin holds each client's socket and turns its events into POSTs to
//! `/chat/ws/{room}`; the answer carries events back (and control messages that subscribe the
//! socket to channels). See docs: <https://pushpin.org/docs/protocols/websocket-over-http/>.
//!
//! The connection's user and room are kept by Pushpin as `Meta-*` headers, set on OPEN. `Grip-Sig`
//! proves a request came through Pushpin, but not that its meta values are Pushpin's own: Pushpin
//! strips clients' `Meta-*` headers on WebSockets, and Debian's 1.36 refuses (403) WebSocket
//! events a client posts to it as plain HTTP, but another gateway or version need not. So neither
//! the meta values nor what authorised them are trusted: every request that carries something
//! from the client re-checks that the token names the meta user and that the user is a member of
//! the meta room (`handshake::recheck`) before any frame is handled. For the same reason a
//! request's work is bounded whatever it holds: one OPEN, and frames up to the sender's budgets
//! (while Redis counts them: without it rate limits fail open, and each frame is a call).
mod frames;
mod handshake;
mod protocol;

use http::{HeaderValue, StatusCode};
use shared::ids::{RoomId, UserId};
use shared::request::read_body;
use shared::response::complete_reply;
use shared::{ApiError, Reply};
use spin_sdk::http::Request;

use crate::error::ChatError;
use crate::settings::Settings;
use protocol::{Incoming, Outgoing};

/// Event streams (SSE) come through the same gateway.
pub use handshake::{Standing, standing, verify_gateway};

const CONTENT_TYPE: &str = "application/websocket-events";
/// Pushpin may batch several client frames into one request.
const EVENTS_BYTES_MAX: usize = 256 * 1024;

/// Close codes a client can tell apart.
pub use shared::grip::CLOSE_UNAUTHORIZED;
pub const CLOSE_NOT_MEMBER: u16 = 4403;
pub const CLOSE_NO_SUCH_ROOM: u16 = 4404;
const CLOSE_UNSUPPORTED_DATA: u16 = 1003;
const CLOSE_INVALID_PAYLOAD: u16 = 1007;
const CLOSE_POLICY_VIOLATION: u16 = 1008;

/// The connection as Pushpin remembers it (`Meta-User`, `Meta-Room`), once OPEN succeeded.
#[derive(Clone, Copy)]
pub struct Session {
    pub user: UserId,
    pub room: RoomId,
}

impl Session {
    fn from_meta(headers: &http::HeaderMap) -> Option<Self> {
        let meta = |name: &str| headers.get(name)?.to_str().ok();
        Some(Self { user: UserId::parse(meta("meta-user")?)?, room: RoomId::parse(meta("meta-room")?)? })
    }
}

/// The events and headers of one answer to Pushpin.
#[derive(Default)]
pub struct Exchange {
    events: Vec<Outgoing>,
    headers: Vec<(&'static str, String)>,
    closed: bool,
    /// Refusals of frames past their sender's budgets (messages, typing notices): the request's
    /// later frames of the same kind get them too, without a Redis or database call each.
    over_budget: frames::OverBudget,
}

impl Exchange {
    fn send(&mut self, event: &str) {
        // With the GRIP extension on, text for the client carries the `m:` prefix.
        self.events.push(Outgoing::Text(format!("m:{event}")));
    }

    fn subscribe(&mut self, channel: &str) {
        let control = serde_json::json!({"type": "subscribe", "channel": channel});
        self.events.push(Outgoing::Text(format!("c:{control}")));
    }

    fn close(&mut self, code: u16, reason: &str) {
        if !self.closed {
            self.events.push(Outgoing::close(code, reason));
            self.closed = true;
        }
    }

    fn error(&mut self, error: &ApiError) {
        self.send(&serde_json::json!({"type": "error", "code": error.code, "message": error.message}).to_string());
    }

    fn into_reply(self) -> Reply {
        let mut reply = complete_reply(StatusCode::OK, protocol::encode(&self.events).into());
        let headers = reply.headers_mut();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        reply
    }
}

pub async fn handle(settings: &Settings, request: Request, raw_room: &str) -> Result<Reply, ChatError> {
    handshake::verify_gateway(settings, request.headers())?;
    let session = Session::from_meta(request.headers());
    let (parts, body) = read_body(request, EVENTS_BYTES_MAX).await?;
    if parts.headers.get(http::header::CONTENT_TYPE).is_none_or(|value| value != CONTENT_TYPE) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Type must be {CONTENT_TYPE}"),
        )
        .into());
    }
    let events = protocol::parse(&body)
        .ok_or_else(|| ApiError::bad_request("malformed_events", "body is not WebSocket-over-HTTP events"))?;

    let mut exchange = Exchange::default();
    // A request without events is Pushpin's keep-alive (`Keep-Alive-Interval`, set at OPEN). Any
    // request resets Pushpin's keep-alive timer, so a client sending only PINGs or (unsolicited,
    // which RFC 6455 allows) PONGs would never see a keep-alive: their requests re-check too.
    let client_speaks =
        events.iter().any(|event| matches!(event, Incoming::Text(_) | Incoming::Ping(_) | Incoming::Pong));
    if let Some(session) = session.filter(|_| client_speaks || events.is_empty()) {
        handshake::recheck(settings, &parts, session, &mut exchange).await?;
    }
    for (index, event) in events.into_iter().enumerate() {
        if exchange.closed {
            break;
        }
        match event {
            // Pushpin sends OPEN once, as the first event of a socket that has no session yet.
            // Any other is a plain POST written to make the handshake's checks run over and over.
            Incoming::Open if index == 0 && session.is_none() => {
                handshake::open(settings, &parts, RoomId::parse(raw_room), &mut exchange).await?;
            }
            Incoming::Open => exchange.close(CLOSE_POLICY_VIOLATION, "OPEN comes once, first"),
            Incoming::Text(bytes) => match session {
                Some(session) => frames::handle(settings, session, &bytes, &mut exchange).await,
                None => exchange.close(CLOSE_UNAUTHORIZED, "not authenticated"),
            },
            Incoming::Binary => exchange.close(CLOSE_UNSUPPORTED_DATA, "frames are JSON text"),
            Incoming::Ping(payload) => exchange.events.push(Outgoing::Pong(payload)),
            Incoming::Close(payload) => {
                exchange.events.push(Outgoing::Close(payload));
                exchange.closed = true;
            }
            Incoming::Pong | Incoming::Disconnect => {}
        }
    }
    Ok(exchange.into_reply())
}

/// Closes for a TEXT frame that is not UTF-8, which RFC 6455 treats as a protocol error.
fn close_invalid_payload(exchange: &mut Exchange) {
    exchange.close(CLOSE_INVALID_PAYLOAD, "text frames must be UTF-8");
}
