//! Talking to the app's HTTP API: any request (for malformed input), the response, and the users
//! tests act as. One method per endpoint is in `endpoints`.
use std::time::Duration;

use serde_json::Value;

use super::TestApp;

pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A response with its body parsed as JSON (`Value::Null` when it is not JSON).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Response {
    /// The error envelope's `code`, or "" for a success.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// A registered, logged-in user.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: i64,
    pub username: String,
    pub password: String,
    pub token: String,
    pub refresh_token: String,
}

impl TestApp {
    /// Sends a request; `body` is sent with `content_type` when given.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Response {
        self.try_request(method, path, headers, body).unwrap_or_else(|error| panic!("{error}"))
    }

    /// Like [`Self::request`], for tests that break the app on purpose: a request that gets no
    /// answer, or the gateway's own 502/503 (no app instance answered), is an `Err` to retry.
    /// Answers from the app are still checked against the contract.
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Response, String> {
        crate::secrets_seen::note_request(headers, body.as_ref().map(|(_, bytes)| bytes.as_slice()));
        let mut request = http::Request::builder().method(method).uri(self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let result = match body {
            Some((content_type, bytes)) => {
                self.agent.run(request.header("content-type", content_type).body(bytes).expect("valid request"))
            }
            None => self.agent.run(request.body(()).expect("valid request")),
        };
        let mut response = result.map_err(|error| format!("{method} {path}: {error}"))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        crate::secrets_seen::note_response(&body);
        let response = Response { status, headers, body, text };
        if matches!(status, 502 | 503) && !is_json(&response.headers) {
            return Err(format!("{method} {path}: the gateway answered {status}: {}", response.text.trim()));
        }
        crate::contract::check_response(method, path, &response);
        check_framing(method, path, &response);
        Ok(response)
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Response {
        let authorization = token.map(|token| format!("Bearer {token}"));
        let headers: Vec<(&str, &str)> = authorization.iter().map(|value| ("authorization", value.as_str())).collect();
        self.request("GET", path, &headers, None)
    }

    /// POSTs JSON with an optional bearer token and extra headers.
    pub fn post(&self, path: &str, token: Option<&str>, body: &Value, extra_headers: &[(&str, &str)]) -> Response {
        let authorization = token.map(|token| format!("Bearer {token}"));
        let mut headers: Vec<(&str, &str)> = extra_headers.to_vec();
        headers.extend(authorization.iter().map(|value| ("authorization", value.as_str())));
        self.request("POST", path, &headers, Some(("application/json", body.to_string().into_bytes())))
    }

    /// [`Self::post`], returning transport failures and gateway errors instead of panicking.
    pub fn try_post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
        extra_headers: &[(&str, &str)],
    ) -> Result<Response, String> {
        let authorization = token.map(|token| format!("Bearer {token}"));
        let mut headers: Vec<(&str, &str)> = extra_headers.to_vec();
        headers.extend(authorization.iter().map(|value| ("authorization", value.as_str())));
        self.try_request("POST", path, &headers, Some(("application/json", body.to_string().into_bytes())))
    }

    pub fn delete(&self, path: &str, token: &str) -> Response {
        self.request("DELETE", path, &[("authorization", &format!("Bearer {token}"))], None)
    }
}

/// The largest body the app must send with its length stated: one chunk of a streamed statement
/// (components/fintech/src/statement.rs).
const STATED_LENGTH_BYTES_MAX: usize = 16 * 1024;

/// Panics unless a response with a short body states its length. Spin's HTTP server keeps
/// Nagle's algorithm on its sockets, so a chunked body's terminator, written after the rest, waits
/// ~40 ms for the client's delayed ACK on a kept-alive connection (bench/keepalive-stall.sh); with
/// its `Content-Length` a response ends on its last byte. A long statement is streamed, and the
/// client acknowledges its full packets at once.
fn check_framing(method: &str, path: &str, response: &Response) {
    let has_body = !(response.status == 204 || response.status == 304 || method == "HEAD");
    if has_body && response.text.len() <= STATED_LENGTH_BYTES_MAX {
        assert!(
            response.headers.contains_key("content-length"),
            "{method} {path} -> {}: a response of {} bytes without Content-Length (headers {:?})",
            response.status,
            response.text.len(),
            response.headers
        );
    }
}

/// Whether a response is JSON: the app's answers are, the gateway's own errors are not.
fn is_json(headers: &http::HeaderMap) -> bool {
    headers
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"))
}
