//! The HTTP trigger: serves each connection it is handed, routes each request to its component's
//! instances, and turns host-side failures into the JSON error envelope.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpStream;
use wasmtime_wasi_http::handler::{ErrorCode, ExpirationError, InstantiationError};

use crate::coalescing_io::{CoalescingIo, ResponseInProgress};
use crate::error_response::{self, ResponseBody};
use crate::instance_pool::{HttpComponentHandler, HttpInstances, InstanceFailed};
use crate::logging;
use crate::metrics::{self, RequestLabels, RouteLabels};
use crate::routing::{RouteMatch, Router};
use crate::spin_headers;

const WELL_KNOWN_PREFIX: &str = "/.well-known/spin/";

pub struct HttpTrigger {
    pub router: Router,
    /// How to instantiate each routed component; every serving thread keeps its own instances.
    pub components: HashMap<String, HttpInstances>,
    pub max_request_body_bytes: u64,
    pub request_timeout: Duration,
    /// The body of `/.well-known/spin/info`.
    pub app_info: Bytes,
    /// Accepted sockets keep Nagle's algorithm and responses are written in the pieces hyper
    /// makes, as Spin 4.1's HTTP trigger does (`--mimic-spin-sockets`).
    pub mimic_spin_sockets: bool,
}

impl HttpTrigger {
    fn well_known(&self, path: &str) -> Response<ResponseBody> {
        match &path[WELL_KNOWN_PREFIX.len()..] {
            "health" => Response::new(error_response::full_body("OK")),
            "info" => {
                let mut response = Response::new(error_response::full_body(self.app_info.clone()));
                response
                    .headers_mut()
                    .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
                response
            }
            _ => error_response::not_found(format!("no route matches {path}")),
        }
    }

    /// Reads the body (refusing one over the limit, or not all there by the request's deadline)
    /// and applies Spin's URI and header rules.
    async fn prepare_request(
        &self,
        request: Request<Incoming>,
        route: &RouteMatch,
        client: SocketAddr,
        deadline: tokio::time::Instant,
    ) -> Result<wasmtime_wasi_http::handler::Request, Response<ResponseBody>> {
        let too_large = || error_response::payload_too_large(self.max_request_body_bytes);
        if declared_length(&request).is_some_and(|length| length > self.max_request_body_bytes) {
            return Err(too_large());
        }
        let (mut parts, body) = request.into_parts();
        let limit = usize::try_from(self.max_request_body_bytes).unwrap_or(usize::MAX);
        let body = match tokio::time::timeout_at(deadline, read_body(body, limit)).await {
            Ok(Ok(body)) => body,
            Ok(Err(BodyError::TooLarge)) => return Err(too_large()),
            Ok(Err(BodyError::Unreadable(error))) => {
                return Err(error_response::bad_request(format!("cannot read request body: {error}")));
            }
            Err(_) => return Err(error_response::body_timeout()),
        };
        if let Err(error) = spin_headers::prepare(&mut parts.uri, &mut parts.headers, route, client) {
            return Err(error_response::bad_request(format!("{error:#}")));
        }
        let body = Full::new(body).map_err(|never| -> ErrorCode { match never {} }).boxed_unsync();
        Ok(Request::from_parts(parts, body))
    }
}

/// Serves the connections of one serving thread with that thread's own instances of every
/// component, so that a request and the instance answering it stay on one thread.
pub struct ConnectionServer {
    trigger: Arc<HttpTrigger>,
    handlers: HashMap<String, HttpComponentHandler>,
}

impl ConnectionServer {
    pub fn new(trigger: Arc<HttpTrigger>) -> Arc<Self> {
        let handlers = trigger.components.iter().map(|(id, instances)| (id.clone(), instances.handler())).collect();
        Arc::new(Self { trigger, handlers })
    }

    /// Serves `stream` on the current runtime; `release` is dropped once the connection closes.
    pub fn serve(
        self: &Arc<Self>,
        stream: TcpStream,
        client: SocketAddr,
        release: impl Send + 'static,
        graceful: &GracefulShutdown,
    ) {
        let like_spin = self.trigger.mimic_spin_sockets;
        // Nagle's algorithm meeting the client's delayed ACK adds ~40 ms to every small
        // response written in pieces on a kept-alive connection (measured under Spin, which
        // does not set this).
        if !like_spin && let Err(error) = stream.set_nodelay(true) {
            logging::warn(format_args!("cannot set TCP_NODELAY: {error}"));
        }
        // Lets the socket hold a response's first pieces until its body ends (see coalescing_io).
        let in_progress = ResponseInProgress::new(!like_spin);
        let server = self.clone();
        let tracker = in_progress.clone();
        let service = service_fn(move |request| {
            let server = server.clone();
            let tracker = tracker.clone();
            async move {
                let response = server.handle(request, client).await;
                Ok::<_, std::convert::Infallible>(response.map(|body| tracker.track(body)))
            }
        });
        let io = TokioIo::new(CoalescingIo::new(stream, in_progress));
        // The timer lets hyper enforce its header read timeout (30 s), so a client that never
        // finishes its request head cannot hold its connection forever.
        let connection = http1::Builder::new().timer(TokioTimer::new()).serve_connection(io, service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // Errors here are clients going away mid-request; nothing to do about them.
            let _ = connection.await;
            drop(release);
        });
    }

    async fn handle(&self, request: Request<Incoming>, client: SocketAddr) -> Response<ResponseBody> {
        let started = Instant::now();
        let _in_flight = InFlight::start();
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let trigger = &self.trigger;
        let route = trigger.router.route(&path);
        let component = route.as_ref().map_or("-", |route| route.component.as_str());
        let response = match &route {
            _ if path.starts_with(WELL_KNOWN_PREFIX) => trigger.well_known(&path),
            None => error_response::not_found(format!("no route matches {path}")),
            Some(route) => self.run_component(request, route, client, started).await,
        };
        let status = response.status().as_u16();
        logging::request(method.as_str(), &path, component, status, started.elapsed());
        let route = route.as_ref().map_or("-", |route| route.raw_route.as_str());
        record_request(component, route, method_label(&method), status, started.elapsed());
        response
    }

    async fn run_component(
        &self,
        request: Request<Incoming>,
        route: &RouteMatch,
        client: SocketAddr,
        started: Instant,
    ) -> Response<ResponseBody> {
        let trigger = &self.trigger;
        let handler = &self.handlers[&route.component];
        // One deadline for the whole request: the body's arrival and the component's answer.
        let deadline = tokio::time::Instant::from_std(started + trigger.request_timeout);
        let request = match trigger.prepare_request(request, route, client, deadline).await {
            Ok(request) => request,
            Err(response) => return response,
        };
        let failed = Arc::new(InstanceFailed::default());
        let outcome = tokio::time::timeout_at(deadline, handler.handle(failed.clone(), request)).await;
        match outcome {
            Ok(Ok(response)) => response.map(|body| CutOffAware { body, failed }.boxed_unsync()),
            Err(_) => error_response::timeout(),
            Ok(Err(error)) if error.is::<ExpirationError>() || started.elapsed() >= trigger.request_timeout => {
                error_response::timeout()
            }
            Ok(Err(error)) if error.is::<InstantiationError<()>>() => {
                logging::error(format_args!("component {:?} cannot be instantiated: {error:?}", route.component));
                error_response::unavailable("the component cannot be started")
            }
            Ok(Err(error)) => {
                logging::error(format_args!("component {:?} failed: {error:?}", route.component));
                error_response::internal_error()
            }
        }
    }
}

/// A response body whose end is an error when the instance streaming it failed: the client must
/// see a broken response (hyper aborts the connection, with no final chunk), never a truncated
/// one that looks complete.
struct CutOffAware {
    body: ResponseBody,
    failed: Arc<InstanceFailed>,
}

impl Body for CutOffAware {
    type Data = Bytes;
    type Error = wasmtime::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(None) if self.failed.is_set() => {
                Poll::Ready(Some(Err(wasmtime::format_err!("the instance stopped before the response was complete"))))
            }
            polled => polled,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream() && !self.failed.is_set()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Counts a request in flight until dropped, also when the client goes away mid-request.
struct InFlight;

impl InFlight {
    fn start() -> Self {
        metrics::get().http_requests_in_flight.inc();
        Self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::get().http_requests_in_flight.dec();
    }
}

fn record_request(component: &str, route: &str, method: &str, status: u16, duration: Duration) {
    let metrics = metrics::get();
    let labels =
        RequestLabels { component: component.to_owned(), route: route.to_owned(), method: method.to_owned(), status };
    metrics.http_requests.get_or_create(&labels).inc();
    let route = RouteLabels { component: labels.component, route: labels.route };
    metrics::observe(&metrics.http_request_duration.get_or_create(&route), duration);
}

enum BodyError {
    TooLarge,
    Unreadable(hyper::Error),
}

/// The request's body in one buffer, refused past `limit` bytes. Each frame is copied out as it
/// comes: hyper hands out slices of its read buffers, and a body sent in one-byte chunks would
/// otherwise keep a buffer of several KiB alive per byte.
async fn read_body(mut body: Incoming, limit: usize) -> Result<Bytes, BodyError> {
    let mut buffer = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(BodyError::Unreadable)?.into_data() else { continue };
        if data.len() > limit - buffer.len() {
            return Err(BodyError::TooLarge);
        }
        buffer.extend_from_slice(&data);
    }
    Ok(buffer.freeze())
}

/// The method as a metrics label: clients may send any token as a method, and every distinct
/// label value would be kept (and exported) for good.
fn method_label(method: &http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "TRACE" => "TRACE",
        "CONNECT" => "CONNECT",
        _ => "other",
    }
}

fn declared_length<B>(request: &Request<B>) -> Option<u64> {
    request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
}
