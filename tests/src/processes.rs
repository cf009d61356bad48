//! The processes tests run and the services they use: the local host running the app (or any
//! spin.toml), a private Redis, and the builds they need.
//!
//! - [`HostProcess`]: starts `sendinchat-host up` on a free port, waits until it is ready, keeps
//!   its log, and guarantees the host dies with the test process.
//! - [`AppUnderTest`]: that, or an app already running elsewhere (e.g. real `spin up`) named by
//!   an environment variable, so the same tests can run against Spin.
//! - [`RedisServer`]: a private `redis-server` on its own port, for tests that stop Redis.
//! - [`TcpProxy`]: a forwarder to the shared Postgres that a test can cut, for database outages.
//! - [`TestServices`]: where the shared Postgres and Redis are, from the environment.
//! - [`build`]: building the host binary and wasm components once per test run.

pub mod build;
mod ports;
pub(crate) mod process;
mod redis_server;
mod services;
mod tcp_proxy;

pub use ports::free_port;
pub use process::{AppUnderTest, HostOptions, HostProcess, StartOutcome};
pub use redis_server::RedisServer;
pub use services::TestServices;
pub use tcp_proxy::TcpProxy;

use std::time::Duration;

/// An HTTP client for tests: statuses are returned rather than raised, and every request is
/// bounded so a hung host fails the test instead of stalling it.
pub fn http_client(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(timeout)).build().into()
}
