//! Building successful responses.
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use spin_sdk::http::FullBody;

pub type Reply = http::Response<FullBody<Bytes>>;

const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// A JSON response from a serialisable value.
pub fn json_reply(status: StatusCode, value: &impl Serialize) -> Reply {
    let body = serde_json::to_vec(value).expect("API values serialise to JSON");
    raw_json_reply(status, body)
}

/// A JSON response whose body is already JSON text (rendered by a SQL function).
pub fn raw_json_reply(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    api_reply(status, JSON, body.into())
}

/// An API response with its whole body, of the given media type.
pub fn api_reply(status: StatusCode, content_type: HeaderValue, body: Bytes) -> Reply {
    let mut reply = complete_reply(status, body);
    reply.headers_mut().insert(header::CONTENT_TYPE, content_type);
    // Every API response is specific to its caller: keep it out of shared caches.
    reply.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Bodies carry text other users wrote: a browser must never guess they are a page.
    reply.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    reply
}

/// A response whose body is complete, stating its length. The HTTP server then ends the response
/// on its last byte, where a chunked body needs one more write for its terminator; under Spin,
/// whose sockets keep Nagle's algorithm, that write waits ~40 ms for the client's delayed ACK on
/// every kept-alive connection (bench/keepalive-stall.sh).
pub fn complete_reply(status: StatusCode, body: Bytes) -> Reply {
    let length = body.len();
    let mut reply = http::Response::new(FullBody::new(body));
    *reply.status_mut() = status;
    reply.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    reply
}

pub fn no_content() -> Reply {
    let mut reply = http::Response::new(FullBody::new(Bytes::new()));
    *reply.status_mut() = StatusCode::NO_CONTENT;
    reply
}
