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
        let mut response = result.unwrap_or_else(|error| panic!("{method} {path}: {error}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        crate::secrets_seen::note_response(&body);
        let response = Response { status, headers, body, text };
        crate::contract::check_response(method, path, &response);
        response
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

    pub fn delete(&self, path: &str, token: &str) -> Response {
        self.request("DELETE", path, &[("authorization", &format!("Bearer {token}"))], None)
    }
}
