//! Responses the host itself generates, in the app's JSON error envelope:
//! `{"error":{"code":"...","message":"..."}}`.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};

/// The body type of every response the server sends, guest-produced or not.
pub type ResponseBody = UnsyncBoxBody<Bytes, wasmtime::Error>;

pub fn full_body(bytes: impl Into<Bytes>) -> ResponseBody {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

pub fn not_found(message: impl Into<String>) -> Response<ResponseBody> {
    envelope(StatusCode::NOT_FOUND, "not_found", message)
}

pub fn payload_too_large(limit_bytes: u64) -> Response<ResponseBody> {
    envelope(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", format!("request body exceeds {limit_bytes} bytes"))
}

pub fn bad_request(message: impl Into<String>) -> Response<ResponseBody> {
    envelope(StatusCode::BAD_REQUEST, "bad_request", message)
}

pub fn internal_error() -> Response<ResponseBody> {
    // Details stay in the host log; clients learn only that the request failed.
    // The same code the components use for their own internal errors.
    envelope(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the component failed to handle the request")
}

/// Seconds a client should wait before retrying a 503, as the components answer theirs.
const UNAVAILABLE_RETRY_AFTER_SECONDS: u32 = 1;

pub fn unavailable(message: impl Into<String>) -> Response<ResponseBody> {
    let mut response = envelope(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message);
    response.headers_mut().insert(header::RETRY_AFTER, UNAVAILABLE_RETRY_AFTER_SECONDS.into());
    response
}

pub fn body_timeout() -> Response<ResponseBody> {
    envelope(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        "the request body did not arrive before the request deadline",
    )
}

pub fn timeout() -> Response<ResponseBody> {
    envelope(StatusCode::GATEWAY_TIMEOUT, "timeout", "the component did not respond before the request deadline")
}

fn envelope(status: StatusCode, code: &str, message: impl Into<String>) -> Response<ResponseBody> {
    let body = serde_json::json!({ "error": { "code": code, "message": message.into() } });
    let mut response = Response::new(full_body(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}
