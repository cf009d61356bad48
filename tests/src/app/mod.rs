//! The whole app under test: the real `spin.toml` under the local host with a fresh, migrated
//! database, the shared Redis and a private Pushpin, or an app already running elsewhere (real
//! `spin up` behind Pushpin) named by environment variables:
//!
//! | variable                  | meaning                                              |
//! |---------------------------|------------------------------------------------------|
//! | `SENDINCHAT_BASE_URL`     | HTTP base URL of the running app                     |
//! | `SENDINCHAT_WS_URL`       | WebSocket base URL (Pushpin), e.g. `ws://host:7999`  |
//! | `SENDINCHAT_DATABASE_URL` | its database, read to check ledger invariants         |
//! | `SENDINCHAT_ADMIN_TOKEN`  | its operator token (deposits)                        |
//! | `SENDINCHAT_JWT_SECRET`   | its `jwt_secret`, to forge tokens it must refuse      |
//!
//! Tests that must reconfigure the app or stop its services start a private app and are
//! skipped, with a note on stderr, against an external one.
mod client;
mod endpoints;
mod event_stream;
mod pushpin;
mod room_follower;
mod run_command;
mod topology;
mod websocket;

pub use client::{Response, TestUser};
pub use event_stream::{EventStream, StreamItem};
pub use pushpin::PushpinProcess;
pub use room_follower::RoomFollower;
pub use run_command::{RunCommand, RunPorts, scratch_data_folder};
pub use topology::{Topology, TopologyOptions};
pub use websocket::{ChatSocket, RawSocketEvent, SocketEvent};

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;

use crate::processes::build::workspace_root;
use crate::processes::{HostOptions, HostProcess, RedisServer, TestServices};

/// Lower than production's 12 so registering hundreds of test users stays fast; the timing test
/// starts its own app with a realistic cost.
pub const TEST_BCRYPT_COST: &str = "4";

/// Variables a test may override when it starts a private app.
#[derive(Default)]
pub struct AppOptions {
    pub variables: Vec<(String, String)>,
    /// Extra `sendinchat-host up` flags (e.g. `--quiet` for benchmarks).
    pub host_args: Vec<String>,
    /// Another manifest than the workspace's spin.toml (e.g. the HTTP-only variant).
    pub manifest: Option<std::path::PathBuf>,
    /// A private Redis for tests that stop it; the shared one otherwise.
    pub redis: Option<String>,
}

impl AppOptions {
    pub fn variable(mut self, name: &str, value: &str) -> Self {
        self.variables.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn manifest(mut self, manifest: std::path::PathBuf) -> Self {
        self.manifest = Some(manifest);
        self
    }

    pub fn host_arg(mut self, argument: &str) -> Self {
        self.host_args.push(argument.to_owned());
        self
    }
}

pub struct TestApp {
    base_url: String,
    /// The host this process started; `None` for an external app.
    host: Option<HostProcess>,
    ws_base_url: String,
    admin_token: String,
    jwt_secret: String,
    /// `None` for an app whose database the tests were not told about (the run command's).
    database_url: Option<String>,
    agent: ureq::Agent,
    /// The app's WebSocket gateway, kept for the app's lifetime.
    pushpin: Option<PushpinProcess>,
}

impl TestApp {
    /// The app most tests share: started once per test process (or the external one).
    pub fn shared() -> &'static TestApp {
        static APP: OnceLock<TestApp> = OnceLock::new();
        APP.get_or_init(|| match external() {
            Some(app) => app,
            None => Self::start(AppOptions::default()).expect("the app starts"),
        })
    }

    /// Whether tests run against an app this process did not start (and cannot reconfigure).
    pub fn is_external() -> bool {
        std::env::var("SENDINCHAT_BASE_URL").is_ok_and(|url| !url.is_empty())
    }

    /// A private app with its own database, for tests that change configuration or services.
    pub fn start(options: AppOptions) -> anyhow::Result<TestApp> {
        let shared = SharedState::new(&options)?;
        let publish_port = crate::processes::free_port()?;
        // Chosen before the app starts: the web client's page names it (`web_socket_origin`).
        let pushpin_port = crate::processes::free_port()?;
        let host = HostProcess::start(&shared.host_options(&options, &[publish_port], pushpin_port))?;
        let app_port = port_of(host.base_url())?;
        let pushpin = PushpinProcess::start(&[app_port], pushpin_port, publish_port, &shared.grip_sig_key)?;
        let SharedState { admin_token, jwt_secret, database_url, .. } = shared;
        Ok(TestApp {
            ws_base_url: pushpin.ws_base_url(),
            base_url: host.base_url().to_owned(),
            host: Some(host),
            admin_token,
            jwt_secret,
            database_url: Some(database_url),
            agent: crate::processes::http_client(client::REQUEST_TIMEOUT),
            pushpin: Some(pushpin),
        })
    }

    /// An app started by other means (e.g. the run command), reached at the given URLs with its
    /// credentials; tests cannot read its database.
    pub fn attach(base_url: &str, ws_base_url: &str, admin_token: &str, jwt_secret: &str) -> TestApp {
        TestApp {
            base_url: base_url.trim_end_matches('/').to_owned(),
            host: None,
            ws_base_url: ws_base_url.trim_end_matches('/').to_owned(),
            admin_token: admin_token.to_owned(),
            jwt_secret: jwt_secret.to_owned(),
            database_url: None,
            agent: crate::processes::http_client(client::REQUEST_TIMEOUT),
            pushpin: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The same app at the same URLs, without owning its processes.
    pub fn view(&self) -> TestApp {
        TestApp {
            base_url: self.base_url.clone(),
            host: None,
            ws_base_url: self.ws_base_url.clone(),
            admin_token: self.admin_token.clone(),
            jwt_secret: self.jwt_secret.clone(),
            database_url: self.database_url.clone(),
            agent: self.agent.clone(),
            pushpin: None,
        }
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("{}{path}", self.ws_base_url)
    }

    /// `path` on the gateway's HTTP port (Pushpin proxies plain HTTP too): where event streams
    /// are opened.
    pub fn gateway_http_url(&self, path: &str) -> String {
        format!("{}{path}", self.ws_base_url.replacen("ws", "http", 1))
    }

    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// The key access tokens are signed with, to forge tokens the app must refuse.
    pub fn jwt_secret(&self) -> &str {
        &self.jwt_secret
    }

    /// A direct connection to the app's database, to check invariants the API cannot show.
    pub fn database(&self) -> postgres::Client {
        let url = self.database_url.as_deref().expect("the tests know this app's database");
        postgres::Client::connect(url, postgres::NoTls).expect("connect to the app's database")
    }

    /// The resident memory of the host's and Pushpin's processes in KiB, for benchmark reports
    /// (empty for an external app).
    pub fn memory_kib(&self) -> Vec<(String, u64)> {
        let host = self.host.iter().flat_map(HostProcess::memory_kib);
        host.chain(self.pushpin.iter().flat_map(PushpinProcess::memory_kib)).collect()
    }

    /// Pushpin's delivery settings, for benchmark reports.
    pub fn pushpin_settings(&self) -> String {
        self.pushpin.as_ref().map(PushpinProcess::delivery_settings).unwrap_or_else(|| "external".to_owned())
    }

    /// The local host's metrics endpoint, when it was started with `--metrics-listen`.
    pub fn metrics_url(&self) -> Option<&str> {
        self.host.as_ref().map(HostProcess::metrics_url)
    }

    /// The local host's log and Pushpin's (empty for an external app).
    pub fn log(&self) -> String {
        let host = self.host.as_ref().map(HostProcess::log).unwrap_or_default();
        let pushpin = self.pushpin.as_ref().map(PushpinProcess::log).unwrap_or_default();
        format!("--- host ---\n{host}\n--- pushpin ---\n{pushpin}")
    }

    /// The log of Pushpin's requests to the app (empty for an external app), for benchmarks.
    pub fn zurl_log(&self) -> String {
        self.pushpin.as_ref().map(PushpinProcess::zurl_log).unwrap_or_default()
    }

    /// Whether `text` reaches the log within a few seconds. A guest's stderr line can reach the
    /// host's log after the client has read the response, so a test waits rather than reads once.
    pub fn logged(&self, text: &str) -> bool {
        crate::wait::until(std::time::Duration::from_secs(5), || self.log().contains(text).then_some(())).is_some()
    }
}

fn external() -> Option<TestApp> {
    if !TestApp::is_external() {
        return None;
    }
    let variable =
        |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} must be set with SENDINCHAT_BASE_URL"));
    let app = TestApp::attach(
        &variable("SENDINCHAT_BASE_URL"),
        &variable("SENDINCHAT_WS_URL"),
        &variable("SENDINCHAT_ADMIN_TOKEN"),
        &variable("SENDINCHAT_JWT_SECRET"),
    );
    Some(TestApp { database_url: Some(variable("SENDINCHAT_DATABASE_URL")), ..app })
}

/// What every instance of one app shares: its database, Redis, secrets, and names in Redis.
pub(crate) struct SharedState {
    pub(crate) database_url: String,
    /// Where the instances reach the database: `database_url`, or a [`crate::processes::TcpProxy`]
    /// in front of it.
    pub(crate) app_database_url: String,
    pub(crate) redis_url: String,
    pub(crate) admin_token: String,
    pub(crate) jwt_secret: String,
    pub(crate) grip_sig_key: String,
    events_channel: String,
    redis_key_prefix: String,
}

impl SharedState {
    /// A fresh database, new secrets, and the Redis `options` names (the shared one otherwise).
    pub(crate) fn new(options: &AppOptions) -> anyhow::Result<Self> {
        let services = TestServices::from_env();
        let database_url = fresh_database(&services)?;
        Ok(Self {
            app_database_url: database_url.clone(),
            database_url,
            redis_url: options.redis.clone().unwrap_or_else(|| services.redis_url.clone()),
            admin_token: random_secret(),
            jwt_secret: random_secret(),
            grip_sig_key: random_secret(),
            events_channel: format!("sendinchat.test-events.{}", unique_suffix()),
            // Each app gets its own Redis keys: counters must not leak between apps or runs.
            redis_key_prefix: format!("sendinchat-test-{}", unique_suffix()),
        })
    }

    /// How to start one instance: publishing to the Pushpin nodes on `publish_ports`, its web
    /// client opening WebSockets on `web_socket_port`.
    pub(crate) fn host_options(
        &self,
        options: &AppOptions,
        publish_ports: &[u16],
        web_socket_port: u16,
    ) -> HostOptions {
        let manifest = options.manifest.clone().unwrap_or_else(|| workspace_root().join("spin.toml"));
        let publish_urls: Vec<String> = publish_ports.iter().map(|port| format!("http://127.0.0.1:{port}")).collect();
        let (lowest, highest) = (publish_ports.iter().min(), publish_ports.iter().max());
        let publish_hosts = match (lowest, highest) {
            (Some(lowest), Some(highest)) if lowest != highest => {
                format!("http://127.0.0.1:{lowest}..{}", highest.saturating_add(1))
            }
            _ => publish_urls.join(","),
        };
        let variables = [
            ("database_url", self.app_database_url.clone()),
            ("database_host", TestServices::host_and_port(&self.app_database_url)),
            ("redis_url", self.redis_url.clone()),
            ("redis_host", TestServices::host_and_port(&self.redis_url)),
            ("jwt_secret", self.jwt_secret.clone()),
            ("admin_token", self.admin_token.clone()),
            ("grip_sig_key", self.grip_sig_key.clone()),
            ("grip_publish_urls", publish_urls.join(",")),
            ("grip_publish_hosts", publish_hosts),
            ("web_socket_origin", format!("ws://127.0.0.1:{web_socket_port}")),
            ("bcrypt_cost", TEST_BCRYPT_COST.to_owned()),
            // Every test signs its users up from one address; the tests of registration throttling
            // set their own limits.
            ("registrations_per_address_max", "1000000".to_owned()),
            ("login_max_attempts_per_address", "1000000".to_owned()),
            // Tests fail log-ins on purpose, all from one address; the throttling tests set their own.
            ("login_max_failures_per_address", "1000000".to_owned()),
            ("token_refreshes_per_minute", "1000000".to_owned()),
            ("registrations_max", "1000000".to_owned()),
            // Tests move large sums through a few users, often; the daily limits have tests of their own.
            ("daily_outgoing_max", "1000000000".to_owned()),
            ("daily_outgoing_transfers_max", "1000000".to_owned()),
            ("chat_events_channel", self.events_channel.clone()),
            ("redis_key_prefix", self.redis_key_prefix.clone()),
        ];
        let overrides = options.variables.iter().map(|(name, value)| (name.as_str(), value.clone()));
        let mut host_options = HostOptions::new(manifest);
        for (name, value) in variables.iter().map(|(name, value)| (*name, value.clone())).chain(overrides) {
            host_options = host_options.env(format!("SPIN_VARIABLE_{}", name.to_uppercase()), value);
        }
        for argument in &options.host_args {
            host_options = host_options.arg(argument);
        }
        host_options
    }
}

/// The port of `http://127.0.0.1:PORT`.
pub(crate) fn port_of(base_url: &str) -> anyhow::Result<u16> {
    Ok(base_url.rsplit(':').next().context("base URL has a port")?.parse()?)
}

/// `<pid>_<n>`: unique within this test process and across concurrent test processes.
pub fn unique_suffix() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!("{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// 64 hex characters from the kernel's random source.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").expect("/dev/urandom"), &mut bytes)
        .expect("random bytes");
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A new database with every migration applied. Databases left by earlier test processes that
/// have exited are dropped first.
fn fresh_database(services: &TestServices) -> anyhow::Result<String> {
    drop_stale_databases(&services.admin_database_url)?;
    let url = services.database(&format!("sic_app_{}", unique_suffix()))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(sendinchat_migrate::migrate(&url, None, &workspace_root().join("sql")))?;
    Ok(url)
}

fn drop_stale_databases(admin_url: &str) -> anyhow::Result<()> {
    let mut admin = postgres::Client::connect(admin_url, postgres::NoTls)?;
    let rows = admin.query("SELECT datname FROM pg_database WHERE datname LIKE 'sic\\_app\\_%'", &[])?;
    for row in rows {
        let name: String = row.get(0);
        let owner_pid = name.split('_').nth(2).unwrap_or_default();
        if !std::path::Path::new(&format!("/proc/{owner_pid}")).exists() {
            admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
        }
    }
    Ok(())
}

/// A private app with `options`, or `None` (with a note) when the suite targets an external app
/// this process cannot reconfigure.
pub fn private_app(options: AppOptions) -> Option<TestApp> {
    if TestApp::is_external() {
        eprintln!("skipped: needs a private app, and SENDINCHAT_BASE_URL points at an external one");
        return None;
    }
    Some(TestApp::start(options).expect("private app starts"))
}

/// A private app with one variable set, and two of its users, the first funded with `funds`
/// (in the app's currency); `None` (with a note) against an external app.
pub fn funded_pair_on_app_with(variable: &str, value: &str, funds: &str) -> Option<(TestApp, TestUser, TestUser)> {
    let app = private_app(AppOptions::default().variable(variable, value))?;
    let (funded, other) = (app.new_user(), app.new_user());
    app.fund(&funded, funds);
    Some((app, funded, other))
}

/// A private app on its own Redis server, for tests that stop and restart Redis; `None` (with a
/// note) against an external app.
pub fn app_with_private_redis(options: AppOptions) -> Option<(TestApp, RedisServer)> {
    if TestApp::is_external() {
        eprintln!("skipped: stops Redis, which only a private app allows");
        return None;
    }
    let redis = RedisServer::start().expect("private redis");
    let options = AppOptions { redis: Some(redis.url()), ..options };
    Some((TestApp::start(options).expect("private app starts"), redis))
}
