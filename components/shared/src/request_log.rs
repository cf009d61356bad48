//! One JSON line on stderr per request, and the request id that ties it to the client.
//!
//! [`serve`] wraps a component's handler: it takes the client's `x-request-id` when it is a
//! well-formed id (or makes one), returns it on the response, and writes the request's line when
//! the handler is done. What only the handler knows (the user, the database time, an internal
//! error's cause) is noted on the request's [`Record`] through free functions ([`note_user`],
//! [`note_database_time`], [`note_cause`]) so no handler formats a log line or threads a context.
//!
//! A component instance may serve several requests at once (Spin reuses WASIp3 instances
//! concurrently), so the record is not kept in a plain static: it is installed for the duration of
//! each poll of the request's future, the way a task-local works, and only code running inside
//! that poll can see it.
//!
//! Never logged: tokens, passwords, secrets, `Authorization` or `Cookie` headers, or a full
//! `Idempotency-Key`. The line carries only the fields below; a cause is the error's own text,
//! which is written by this project's code and never includes a request's credentials.
use std::cell::{Cell, RefCell};
use std::fmt::Display;
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::rc::Rc;
use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue, Method};
use serde_json::{Map, Value, json};
use spin_sdk::http::Request;

use crate::ApiError;
use crate::config::{self, SpinVariables, VariableSource};
use crate::ids::UserId;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Longest client-supplied request id accepted; a longer one is replaced, not truncated.
const REQUEST_ID_BYTES_MAX: usize = 64;

/// A request id: 1 to 64 characters from `A-Z a-z 0-9 . _ -`, safe in a header, a log line and a
/// Redis message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// The client's `x-request-id` if it is well-formed, otherwise a new one.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        headers
            .get(REQUEST_ID_HEADER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(Self::generate)
    }

    /// 16 random bytes as 32 hex digits.
    pub fn generate() -> Self {
        let mut bytes = [0_u8; 16];
        // A request id needs uniqueness, not secrecy: if the random source fails, the clock
        // still gives a usable id, and a request is never refused for want of one.
        if getrandom::fill(&mut bytes).is_err() {
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            bytes = nanos.as_nanos().to_le_bytes();
        }
        Self(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for RequestId {
    type Err = ();

    fn from_str(raw: &str) -> Result<Self, ()> {
        let well_formed = !raw.is_empty()
            && raw.len() <= REQUEST_ID_BYTES_MAX
            && raw.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'));
        if well_formed { Ok(Self(raw.to_owned())) } else { Err(()) }
    }
}

/// How much is logged (`log_level`): `error` < `warn` < `info` < `debug`. Request lines are
/// `info` (`warn` for 5xx), so `log_level = "warn"` switches them off, e.g. for benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum LogLevel {
    Error = 0,
    Warn = 1,
    Info = 2,
    Debug = 3,
}

impl LogLevel {
    fn name(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
        }
    }
}

impl FromStr for LogLevel {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        match raw.to_ascii_lowercase().as_str() {
            "error" => Ok(Self::Error),
            "warn" => Ok(Self::Warn),
            "info" => Ok(Self::Info),
            "debug" => Ok(Self::Debug),
            _ => Err("expected error, warn, info or debug".into()),
        }
    }
}

/// The level in force, an atomic so the synchronous [`event`] can read it: configuration, not
/// per-request state, so a static is right. `info` until [`load_level`] has read `log_level`.
static LEVEL: AtomicU8 = AtomicU8::new(LogLevel::Info as u8);

/// `log_level`, read once per instance like every component's settings.
static CONFIGURED_LEVEL: OnceLock<LogLevel> = OnceLock::new();

/// The variables this module reads on every component's behalf (each component is given them in
/// spin.toml; the settings-loader tests check that too).
pub async fn read_level(variables: &impl VariableSource) -> Result<LogLevel, ApiError> {
    variables.parsed("log_level").await
}

/// Installs the configured level. An unusable `log_level` keeps `info` (its cause is logged):
/// logging must not be what makes a request fail.
pub async fn load_level() {
    if let Ok(level) = config::cached(&CONFIGURED_LEVEL, || read_level(&SpinVariables)).await {
        LEVEL.store(*level as u8, Ordering::Relaxed);
    }
}

fn enabled(level: LogLevel) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// What the handler learns about its request, for the request's log line.
#[derive(Default)]
struct Record {
    request_id: String,
    user_id: Cell<Option<i64>>,
    database_time: Cell<Duration>,
    causes: RefCell<Vec<String>>,
}

thread_local! {
    /// The record of the request whose future is being polled right now, if any.
    static CURRENT: RefCell<Option<Rc<Record>>> = const { RefCell::new(None) };
}

fn with_current(note: impl FnOnce(&Record)) -> bool {
    CURRENT.with(|current| current.borrow().as_deref().map(note).is_some())
}

/// The current request's id, to carry along with what it causes elsewhere (a chat event).
pub fn current_request_id() -> Option<String> {
    let mut id = None;
    with_current(|record| id = Some(record.request_id.clone()));
    id
}

/// Something went wrong that the client is not told about (an event that could not be
/// published): logged at once, with the current request's id.
pub fn warn(message: impl Display) {
    let mut fields = vec![("message", json!(message.to_string()))];
    fields.extend(current_request_id().map(|id| ("request_id", json!(id))));
    event(LogLevel::Warn, &fields);
}

/// The authenticated user of the current request.
pub fn note_user(user: UserId) {
    with_current(|record| record.user_id.set(Some(user.get())));
}

/// Time the current request spent waiting for Postgres.
pub fn note_database_time(elapsed: Duration) {
    with_current(|record| record.database_time.set(record.database_time.get() + elapsed));
}

/// The cause of an internal error, logged with the request's line. Outside a request (the Redis
/// trigger) it is logged on its own line at once.
pub fn note_cause(cause: impl Display) {
    let cause = cause.to_string();
    let mut pending = Some(cause);
    with_current(|record| record.causes.borrow_mut().extend(pending.take()));
    if let Some(cause) = pending {
        event(LogLevel::Error, &[("message", Value::String(cause))]);
    }
}

/// A future with its request's record installed while it is polled.
struct Scoped<F> {
    record: Rc<Record>,
    inner: Pin<Box<F>>,
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<F::Output> {
        let record = self.record.clone();
        let outer = CURRENT.with(|current| current.replace(Some(record)));
        let poll = self.inner.as_mut().poll(context);
        CURRENT.with(|current| *current.borrow_mut() = outer);
        poll
    }
}

/// The error code of a response, attached by [`crate::ApiError::into_reply`] as a response
/// extension (never sent) so the log line can carry it without parsing the body.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

/// Runs `handle` for `request` and logs it: the one place a component's requests are logged.
/// Generic over the body, so a streamed response (`crate::streaming`) is logged like any other;
/// its line is written once its head is ready, before the body is sent.
pub async fn serve<B, F>(
    component: &'static str,
    request: Request,
    handle: impl FnOnce(Request) -> F,
) -> http::Response<B>
where
    F: Future<Output = http::Response<B>>,
{
    let started = Instant::now();
    load_level().await;
    let request_id = RequestId::from_headers(request.headers());
    let method = request.method().clone();
    let route = route_template(request.uri().path());
    let record = Rc::new(Record { request_id: request_id.as_str().to_owned(), ..Record::default() });
    let mut reply = Scoped { record: record.clone(), inner: Box::pin(handle(request)) }.await;
    let header = HeaderValue::from_str(request_id.as_str()).expect("a request id is a valid header value");
    reply.headers_mut().insert(REQUEST_ID_HEADER, header);
    let line =
        RequestLine { component, request_id: &request_id, method: &method, route: &route, started, record: &record };
    line.write(&reply);
    reply
}

struct RequestLine<'a> {
    component: &'static str,
    request_id: &'a RequestId,
    method: &'a Method,
    route: &'a str,
    started: Instant,
    record: &'a Record,
}

impl RequestLine<'_> {
    fn write<B>(&self, reply: &http::Response<B>) {
        let status = reply.status();
        let level = if status.is_server_error() { LogLevel::Warn } else { LogLevel::Info };
        if !enabled(level) {
            return;
        }
        let mut fields = vec![
            ("request_id", json!(self.request_id.as_str())),
            ("component", json!(self.component)),
            ("method", json!(self.method.as_str())),
            ("route", json!(self.route)),
            ("status", json!(status.as_u16())),
            ("duration_ms", json!(milliseconds(self.started.elapsed()))),
            ("db_ms", json!(milliseconds(self.record.database_time.get()))),
        ];
        if let Some(user_id) = self.record.user_id.get() {
            fields.push(("user_id", json!(user_id)));
        }
        if let Some(ErrorCode(code)) = reply.extensions().get::<ErrorCode>() {
            fields.push(("error", json!(code)));
        }
        let causes = self.record.causes.borrow();
        if !causes.is_empty() {
            fields.push(("causes", json!(*causes)));
        }
        event(level, &fields);
    }
}

/// Writes one JSON line (time, level, then `fields`) if `level` is enabled.
pub fn event(level: LogLevel, fields: &[(&str, Value)]) {
    if !enabled(level) {
        return;
    }
    let mut line = Map::new();
    line.insert("time".into(), json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)));
    line.insert("level".into(), json!(level.name()));
    for (name, value) in fields {
        line.insert((*name).into(), value.clone());
    }
    let mut text = Value::Object(line).to_string();
    text.push('\n');
    // One write per line, so lines of concurrent requests never interleave.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

fn milliseconds(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// The route a path belongs to, with its parameters named rather than given: an id becomes
/// `{id}` and any other segment that is not a plain lower-case word becomes `{param}`, so
/// `/fintech/transactions/42` logs as `/fintech/transactions/{id}` and a log search by route
/// finds every request to it. (Fixed words such as `transactions` or `payment_requests` stay.)
pub fn route_template(path: &str) -> String {
    let mut template = String::with_capacity(path.len());
    for segment in path.trim_end_matches('/').split('/').skip(1) {
        template.push('/');
        let is_word = !segment.is_empty()
            && segment.len() <= 32
            && segment.bytes().all(|byte| byte.is_ascii_lowercase() || byte == b'_')
            || segment == "openapi.yaml";
        if !segment.is_empty() && segment.bytes().all(|byte| byte.is_ascii_digit()) {
            template.push_str("{id}");
        } else if is_word {
            template.push_str(segment);
        } else {
            template.push_str("{param}");
        }
    }
    if template.is_empty() {
        template.push('/');
    }
    template
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_well_formed_client_id_is_kept_and_anything_else_replaced() {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID_HEADER, HeaderValue::from_static("client-id_1.2"));
        assert_eq!(RequestId::from_headers(&headers).as_str(), "client-id_1.2");
        for bad in ["", "has space", "quote\"", &"x".repeat(REQUEST_ID_BYTES_MAX + 1)] {
            headers.insert(REQUEST_ID_HEADER, HeaderValue::from_str(bad).unwrap());
            let replaced = RequestId::from_headers(&headers);
            assert_ne!(replaced.as_str(), bad);
            assert_eq!(replaced.as_str().len(), 32, "a generated id is 32 hex digits");
        }
    }

    #[test]
    fn routes_name_their_parameters() {
        assert_eq!(route_template("/fintech/transactions/42"), "/fintech/transactions/{id}");
        assert_eq!(
            route_template("/chat/rooms/7/payment_requests/9/accept"),
            "/chat/rooms/{id}/payment_requests/{id}/accept"
        );
        assert_eq!(route_template("/users/me/"), "/users/me");
        assert_eq!(route_template("/docs/swagger-ui.css"), "/docs/{param}");
        assert_eq!(route_template("/openapi.yaml"), "/openapi.yaml");
        assert_eq!(route_template("/"), "/");
    }

    #[test]
    fn notes_reach_only_the_request_being_polled() {
        let record = Rc::new(Record::default());
        let mut scoped =
            Scoped { record: record.clone(), inner: Box::pin(async { note_database_time(Duration::from_millis(3)) }) };
        let waker = std::task::Waker::noop();
        assert!(Pin::new(&mut scoped).poll(&mut Context::from_waker(waker)).is_ready());
        assert_eq!(record.database_time.get(), Duration::from_millis(3));
        // Outside any poll nothing is installed: a note made now reaches no request.
        assert!(!with_current(|_| ()));
    }
}
