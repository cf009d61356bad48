//! The host conformance probe. Each path under `/probe/` exercises one host feature and answers
//! with JSON describing exactly what the component observed; any other path (the routing tests
//! mount the probe on several routes) echoes the `spin-*` request headers.

// A conformance component exercises the host's variables interface itself, not an app's settings.
#![allow(clippy::disallowed_methods)]

mod describe;
mod postgres;
mod redis;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::StatusCode;
use http_body::{Body, Frame};
use http_body_util::Either;
use serde_json::{Value, json};
use spin_sdk::http::body::IncomingBodyExt;
use spin_sdk::http::{FullBody, IntoResponse, Request};
use spin_sdk::variables;

type Reply = (StatusCode, Value);

#[spin_sdk::http_service]
async fn handle(request: Request) -> impl IntoResponse {
    let path = request.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if let ["probe", "drip", lines, interval_ms] = segments.as_slice() {
        let drip = Drip::new(lines.parse().unwrap_or(0), interval_ms.parse().unwrap_or(0));
        return http::Response::new(Either::Right(drip));
    }
    let (status, body) = match segments.as_slice() {
        ["probe", "variable", name] => variable(name).await,
        ["probe", "pg", rest @ ..] => postgres::handle(rest).await,
        ["probe", "redis", rest @ ..] => redis::handle(rest).await,
        ["probe", "http"] => outbound_http(query_value(&request, "url")).await,
        ["probe", "body"] => body_length(request).await,
        ["probe", "log"] => log(),
        ["probe", "loop"] => busy_loop(),
        ["probe", "sleep", milliseconds] => sleep(milliseconds).await,
        _ => spin_headers(&request),
    };
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Either::Left(FullBody::new(Bytes::from(body.to_string()))))
        .expect("valid response")
}

/// `/probe/drip/{lines}/{interval_ms}`: a body of `lines` lines, one every `interval_ms`, for
/// tests of a response still streaming at its deadline.
struct Drip {
    lines_left: u32,
    interval_ns: u64,
    wait: Option<Pin<Box<dyn Future<Output = ()>>>>,
}

impl Drip {
    fn new(lines: u32, interval_ms: u64) -> Self {
        Self { lines_left: lines, interval_ns: interval_ms.saturating_mul(1_000_000), wait: None }
    }
}

impl Body for Drip {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.lines_left == 0 {
            return Poll::Ready(None);
        }
        let interval_ns = self.interval_ns;
        let wait =
            self.wait.get_or_insert_with(|| Box::pin(spin_sdk::wasip3::clocks::monotonic_clock::wait_for(interval_ns)));
        if wait.as_mut().poll(context).is_pending() {
            return Poll::Pending;
        }
        self.wait = None;
        self.lines_left -= 1;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"drip\n")))))
    }
}

fn spin_headers(request: &Request) -> Reply {
    let headers: serde_json::Map<String, Value> = request
        .headers()
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("spin-"))
        .map(|(name, value)| (name.to_string(), json!(value.to_str().unwrap_or("<not utf-8>"))))
        .collect();
    (StatusCode::OK, json!({ "path": request.uri().path(), "headers": headers }))
}

async fn variable(name: &str) -> Reply {
    match variables::get(name).await {
        Ok(value) => (StatusCode::OK, json!({ "value": value })),
        Err(error) => (StatusCode::OK, json!({ "error": format!("{error:?}") })),
    }
}

fn query_value(request: &Request, name: &str) -> String {
    let query = request.uri().query().unwrap_or_default();
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
        .unwrap_or_default()
}

async fn outbound_http(url: String) -> Reply {
    match spin_sdk::http::get(&url).await {
        Ok(response) => {
            let status = response.status().as_u16();
            match response.into_body().bytes().await {
                Ok(bytes) => (StatusCode::OK, json!({ "status": status, "body": String::from_utf8_lossy(&bytes) })),
                Err(error) => (StatusCode::OK, json!({ "status": status, "error": format!("{error:?}") })),
            }
        }
        Err(error) => (StatusCode::OK, json!({ "error": format!("{error:?}") })),
    }
}

async fn body_length(request: Request) -> Reply {
    match request.into_body().bytes().await {
        Ok(bytes) => (StatusCode::OK, json!({ "length": bytes.len() })),
        Err(error) => (StatusCode::OK, json!({ "error": format!("{error:?}") })),
    }
}

fn log() -> Reply {
    println!("probe says hello on stdout");
    eprintln!("probe says hello on stderr");
    (StatusCode::OK, json!({ "logged": true }))
}

/// Answers after `milliseconds`, for tests that need a request in flight.
async fn sleep(milliseconds: &str) -> Reply {
    let milliseconds: u64 = milliseconds.parse().unwrap_or(0);
    let nanoseconds = milliseconds.saturating_mul(1_000_000);
    // Tells a test watching the host log that the request has reached the component.
    println!("sleeping for {milliseconds} ms");
    spin_sdk::wasip3::clocks::monotonic_clock::wait_for(nanoseconds as _).await;
    (StatusCode::OK, json!({ "slept_ms": milliseconds }))
}

/// Spins forever without yielding: only the host's epoch interruption can stop it.
fn busy_loop() -> Reply {
    let mut counter: u64 = 0;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}
