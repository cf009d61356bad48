//! The host's metrics, in Prometheus' text format at `--metrics-listen` (off by default).
//!
//! Counting is always on (atomic increments, a label lookup per request); only the endpoint that
//! serves them is optional. One process-wide set, so that the pools, the HTTP server, the Redis
//! trigger and outbound HTTP record into it without handles threaded through every layer.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use tokio::net::TcpListener;

use crate::logging;
use crate::shutdown::ShutdownSignal;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub component: String,
    /// The manifest's route, e.g. `/fintech/...`, not the raw path.
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub component: String,
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ComponentLabels {
    pub component: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub component: String,
    /// `host:port/database` of the connection string: never its credentials.
    pub pool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RedisMessageLabels {
    pub component: String,
    pub channel: String,
    /// `ok`, `error` or `timeout`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServerLabels {
    pub server: String,
}

/// Histogram buckets in seconds: 0.5 ms to about 33 s, doubling.
#[derive(Clone, Copy)]
pub struct SecondsBuckets;

impl MetricConstructor<Histogram> for SecondsBuckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(exponential_buckets(0.0005, 2.0, 17))
    }
}

pub struct Metrics {
    pub http_requests: Family<RequestLabels, Counter>,
    pub http_request_duration: Family<RouteLabels, Histogram, SecondsBuckets>,
    pub http_requests_in_flight: Gauge,
    pub instances_created: Family<ComponentLabels, Counter>,
    pub instances_reused: Family<ComponentLabels, Counter>,
    pub instances_killed_by_deadline: Family<ComponentLabels, Counter>,
    pub postgres_connections_open: Family<PoolLabels, Gauge>,
    pub postgres_connections_idle: Family<PoolLabels, Gauge>,
    pub postgres_connections_in_use: Family<PoolLabels, Gauge>,
    pub postgres_acquire_duration: Family<PoolLabels, Histogram, SecondsBuckets>,
    pub postgres_acquire_timeouts: Family<PoolLabels, Counter>,
    pub postgres_statement_cache_hits: Family<PoolLabels, Counter>,
    pub postgres_statement_cache_misses: Family<PoolLabels, Counter>,
    pub redis_messages: Family<RedisMessageLabels, Counter>,
    pub redis_message_duration: Family<ComponentLabels, Histogram, SecondsBuckets>,
    pub redis_reconnects: Family<ServerLabels, Counter>,
    pub outbound_http_errors: Family<ServerLabels, Counter>,
    registry: Registry,
}

/// The process's metrics.
pub fn get() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

impl Metrics {
    fn new() -> Self {
        let metrics = Self {
            http_requests: Family::default(),
            http_request_duration: Family::new_with_constructor(SecondsBuckets),
            http_requests_in_flight: Gauge::default(),
            instances_created: Family::default(),
            instances_reused: Family::default(),
            instances_killed_by_deadline: Family::default(),
            postgres_connections_open: Family::default(),
            postgres_connections_idle: Family::default(),
            postgres_connections_in_use: Family::default(),
            postgres_acquire_duration: Family::new_with_constructor(SecondsBuckets),
            postgres_acquire_timeouts: Family::default(),
            postgres_statement_cache_hits: Family::default(),
            postgres_statement_cache_misses: Family::default(),
            redis_messages: Family::default(),
            redis_message_duration: Family::new_with_constructor(SecondsBuckets),
            redis_reconnects: Family::default(),
            outbound_http_errors: Family::default(),
            registry: Registry::with_prefix("sendinchat_host"),
        };
        metrics.registered()
    }

    fn registered(mut self) -> Self {
        let registry = &mut self.registry;
        registry.register("http_requests", "HTTP requests answered", self.http_requests.clone());
        registry.register_with_unit(
            "http_request_duration",
            "Time from a request's arrival to its response head",
            Unit::Seconds,
            self.http_request_duration.clone(),
        );
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being answered",
            self.http_requests_in_flight.clone(),
        );
        registry.register("instances_created", "Component instances created", self.instances_created.clone());
        registry.register(
            "instances_reused",
            "Requests served by an instance that had served one before",
            self.instances_reused.clone(),
        );
        registry.register(
            "instances_killed_by_deadline",
            "Instances stopped because a request overran --request-timeout",
            self.instances_killed_by_deadline.clone(),
        );
        registry.register(
            "postgres_connections_open",
            "Open connections of a pool",
            self.postgres_connections_open.clone(),
        );
        registry.register(
            "postgres_connections_idle",
            "Connections waiting in a pool",
            self.postgres_connections_idle.clone(),
        );
        registry.register(
            "postgres_connections_in_use",
            "Connections held by component instances",
            self.postgres_connections_in_use.clone(),
        );
        registry.register_with_unit(
            "postgres_acquire_duration",
            "Time a component waited for a pooled connection (opening one included)",
            Unit::Seconds,
            self.postgres_acquire_duration.clone(),
        );
        registry.register(
            "postgres_acquire_timeouts",
            "Waits for a pooled connection that gave up",
            self.postgres_acquire_timeouts.clone(),
        );
        registry.register(
            "postgres_statement_cache_hits",
            "Statements run from a connection's prepared-statement cache",
            self.postgres_statement_cache_hits.clone(),
        );
        registry.register(
            "postgres_statement_cache_misses",
            "Statements prepared because the connection had not cached them",
            self.postgres_statement_cache_misses.clone(),
        );
        registry.register("redis_messages", "Redis trigger messages handled", self.redis_messages.clone());
        registry.register_with_unit(
            "redis_message_duration",
            "Time a component took to handle a Redis message",
            Unit::Seconds,
            self.redis_message_duration.clone(),
        );
        registry.register(
            "redis_reconnects",
            "Times the Redis trigger reconnected after losing its connection",
            self.redis_reconnects.clone(),
        );
        registry.register(
            "outbound_http_errors",
            "Outbound HTTP requests of components that failed",
            self.outbound_http_errors.clone(),
        );
        self
    }

    fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

/// Observes `duration` in seconds.
pub fn observe(histogram: &Histogram, duration: Duration) {
    histogram.observe(duration.as_secs_f64());
}

/// Binds `address` for the metrics endpoint; failing here fails start-up, before `ready`.
pub async fn bind(address: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).await.with_context(|| format!("cannot listen for metrics on {address}"))
}

/// Serves the metrics (any path) until shutdown.
pub async fn serve(listener: TcpListener, shutdown: ShutdownSignal) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.requested() => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            // Out of file descriptors: retrying at once would spin on the error.
            Err(error) => {
                logging::warn(format_args!("metrics: accept failed: {error}"));
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(|_request| async {
                let body = Full::new(Bytes::from(get().encode()));
                let response = Response::builder()
                    .status(StatusCode::OK)
                    .header(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")
                    .body(body)
                    .expect("static response");
                Ok::<_, std::convert::Infallible>(response)
            });
            // The timer lets hyper enforce its header read timeout: a scraper that never finishes
            // its request head does not hold its connection forever.
            let connection =
                http1::Builder::new().timer(TokioTimer::new()).serve_connection(TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                logging::warn(format_args!("metrics connection failed: {error}"));
            }
        });
    }
}
