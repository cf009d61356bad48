//! A pool's handles into the host's metrics, labelled with its component, server and database.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use tokio_postgres::Config;
use tokio_postgres::config::Host;

use crate::metrics::{self, PoolLabels};

pub struct PoolMetrics {
    pub open: Gauge,
    pub idle: Gauge,
    pub in_use: Gauge,
    pub acquire_duration: Histogram,
    pub acquire_timeouts: Counter,
    pub statement_cache_hits: Counter,
    pub statement_cache_misses: Counter,
}

impl PoolMetrics {
    pub fn new(component: &str, config: &Config) -> Self {
        let labels = PoolLabels { component: component.to_owned(), pool: pool_label(config) };
        let metrics = metrics::get();
        Self {
            open: metrics.postgres_connections_open.get_or_create_owned(&labels),
            idle: metrics.postgres_connections_idle.get_or_create_owned(&labels),
            in_use: metrics.postgres_connections_in_use.get_or_create_owned(&labels),
            acquire_duration: metrics.postgres_acquire_duration.get_or_create_owned(&labels),
            acquire_timeouts: metrics.postgres_acquire_timeouts.get_or_create_owned(&labels),
            statement_cache_hits: metrics.postgres_statement_cache_hits.get_or_create_owned(&labels),
            statement_cache_misses: metrics.postgres_statement_cache_misses.get_or_create_owned(&labels),
        }
    }
}

/// `host:port/database`: what tells pools apart, without the connection string's credentials.
fn pool_label(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        _ => "-".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", config.get_dbname().unwrap_or("-"))
}
