//! The JSON error envelope every component answers with:
//! `{"error": {"code": "insufficient_funds", "message": "..."}}`.
//!
//! `code` is stable and machine-readable; `message` is for humans and may change. Internal
//! failures are logged with their cause (on the request's log line, see `request_log`) and answered with a generic message, so nothing about
//! the database, a token or a password leaks to the client.
use std::borrow::Cow;
use std::fmt::Display;

use http::StatusCode;

use crate::request_log::{self, ErrorCode};
use crate::response::{Reply, json_reply};

/// Seconds a client should wait before retrying after a 503.
const UNAVAILABLE_RETRY_AFTER_SECONDS: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: Cow<'static, str>,
    pub retry_after_seconds: Option<u32>,
    /// The methods a route allows, sent as `Allow` with a 405 (RFC 9110 requires it).
    pub allowed_methods: Option<&'static str>,
    /// A field sent next to `error` (e.g. readiness's `dependencies`), for the few answers whose
    /// contract gives their error more than a code and a message.
    pub detail: Option<(&'static str, serde_json::Value)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self { status, code, message: message.into(), retry_after_seconds: None, allowed_methods: None, detail: None }
    }

    pub fn bad_request(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unprocessable(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unauthorized(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn too_many_requests(retry_after_seconds: u32) -> Self {
        Self {
            retry_after_seconds: Some(retry_after_seconds.max(1)),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many attempts; retry later")
        }
    }

    /// A dependency (Postgres, Redis) is unreachable: the client may retry shortly.
    pub fn unavailable(dependency: &str, cause: impl Display) -> Self {
        Self::retryable(format_args!("{dependency} unavailable: {cause}"))
    }

    /// A failure that left nothing behind and need not recur (an outage, a transaction aborted to
    /// break a deadlock): logged with its cause, answered with a 503 that says when to retry.
    pub fn retryable(cause: impl Display) -> Self {
        request_log::note_cause(cause);
        Self {
            retry_after_seconds: Some(UNAVAILABLE_RETRY_AFTER_SECONDS),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "a service this request needs is unavailable; retry shortly",
            )
        }
    }

    /// A bug or misconfiguration: logged with its cause, answered without it.
    pub fn internal(cause: impl Display) -> Self {
        request_log::note_cause(cause);
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
    }

    pub fn method_not_allowed(allowed: &'static str) -> Self {
        Self {
            allowed_methods: Some(allowed),
            ..Self::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", format!("this route allows {allowed}"))
        }
    }

    pub fn with_detail(self, name: &'static str, value: serde_json::Value) -> Self {
        Self { detail: Some((name, value)), ..self }
    }

    pub fn into_reply(self) -> Reply {
        let mut body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        if let Some((name, value)) = self.detail {
            body[name] = value;
        }
        let mut reply = json_reply(self.status, &body);
        reply.extensions_mut().insert(ErrorCode(self.code));
        let headers = reply.headers_mut();
        if let Some(seconds) = self.retry_after_seconds {
            headers.insert(http::header::RETRY_AFTER, seconds.into());
        }
        if let Some(methods) = self.allowed_methods {
            headers.insert(http::header::ALLOW, http::HeaderValue::from_static(methods));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
        }
        reply
    }
}

impl Display for ApiError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{} {}: {}", self.status.as_u16(), self.code, self.message)
    }
}
