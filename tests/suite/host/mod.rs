//! Conformance tests for the local Spin host, run against the probe and recorder components in
//! `tests/components`. Most tests share one host; tests that need their own flags, variables or
//! log start their own.
//!
//! Set `SENDINCHAT_CONFORMANCE_BASE_URL` to run the shared-host tests against an app already
//! running `tests/components/conformance.spin.toml` elsewhere, e.g. under `spin up`; tests that
//! read the host's log or restart it still start this project's host.

mod lifecycle;
mod limits;
mod metrics;
mod outbound_http;
mod postgres;
mod redis;
mod routing;
mod startup;
mod variables;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sendinchat_tests::processes::{AppUnderTest, HostOptions, HostProcess, TestServices, build, http_client};
use serde_json::Value;

/// Components the conformance manifest runs.
const COMPONENTS: [&str; 2] = ["probe", "redis-recorder"];

/// The body every request to the upstream test server gets back.
pub const UPSTREAM_BODY: &str = "hello from upstream";

/// Requests to a healthy host answer well within this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub fn manifest() -> PathBuf {
    build::workspace_root().join("tests/components/conformance.spin.toml")
}

/// Host options for the conformance manifest against the test services; `redis_url`
/// overrides the Redis server (for tests that run a private one). The recorder gets a channel
/// and list of its own, so hosts running side by side never record each other's messages.
pub fn conformance_options(redis_url: Option<&str>) -> anyhow::Result<HostOptions> {
    conformance_options_with(redis_url, &Names::unique())
}

/// As [`conformance_options`], with the recorder's channel and list given.
pub fn conformance_options_with(redis_url: Option<&str>, names: &Names) -> anyhow::Result<HostOptions> {
    build::wasm_components(&COMPONENTS)?;
    let services = TestServices::from_env();
    let database_url = services.database("host_conformance")?;
    let redis_url = redis_url.unwrap_or(&services.redis_url).to_owned();
    Ok(HostOptions::new(manifest())
        .env("SPIN_VARIABLE_DATABASE_URL", &database_url)
        .env("SPIN_VARIABLE_DATABASE_HOST", TestServices::host_and_port(&database_url))
        .env("SPIN_VARIABLE_REDIS_HOST", TestServices::host_and_port(&redis_url))
        .env("SPIN_VARIABLE_REDIS_URL", redis_url)
        .env("SPIN_VARIABLE_HTTP_ORIGIN", upstream_origin())
        .env("SPIN_VARIABLE_EVENTS_CHANNEL", names.events_channel.clone())
        .env("SPIN_VARIABLE_RECORD_KEY", names.record_key.clone()))
}

/// The channel the recorder listens on and the list it records into.
pub struct Names {
    pub events_channel: String,
    pub record_key: String,
}

impl Names {
    /// Names no other host (in this or another test process) uses.
    pub fn unique() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let suffix = format!("{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        Self {
            events_channel: format!("conformance-events-{suffix}"),
            record_key: format!("conformance:received:{suffix}"),
        }
    }
}

/// The names of the shared app: unique when this process runs it, the manifest's defaults
/// for an external app.
pub fn names() -> &'static Names {
    static NAMES: OnceLock<Names> = OnceLock::new();
    NAMES.get_or_init(|| {
        let external = std::env::var("SENDINCHAT_CONFORMANCE_BASE_URL").is_ok_and(|url| !url.is_empty());
        if external {
            Names { events_channel: "conformance-events".to_owned(), record_key: "conformance:received".to_owned() }
        } else {
            Names::unique()
        }
    })
}

/// The app most tests share.
pub fn shared_app() -> &'static AppUnderTest {
    static APP: OnceLock<AppUnderTest> = OnceLock::new();
    APP.get_or_init(|| {
        AppUnderTest::external_or_start("SENDINCHAT_CONFORMANCE_BASE_URL", || conformance_options_with(None, names()))
            .expect("conformance app")
    })
}

/// A host this process runs, for tests that read its log: the shared one when it is local.
pub fn own_host() -> &'static HostProcess {
    static OWN: OnceLock<HostProcess> = OnceLock::new();
    match shared_app().host() {
        Some(host) => host,
        None => OWN.get_or_init(|| {
            let options = conformance_options(None).expect("options");
            HostProcess::start(&options).expect("conformance host")
        }),
    }
}

/// GET `url` and parse the JSON answer.
pub fn get_json(url: &str) -> (u16, Value) {
    let mut response = http_client(REQUEST_TIMEOUT).get(url).call().expect("request");
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().expect("body");
    let json = serde_json::from_str(&body).unwrap_or_else(|error| panic!("{url}: not JSON ({error}): {body}"));
    (status, json)
}

/// `http://127.0.0.1:PORT` of a tiny HTTP server in this process that answers every request
/// with [`UPSTREAM_BODY`]: the target of the outbound HTTP tests.
pub fn upstream_origin() -> String {
    static ORIGIN: OnceLock<String> = OnceLock::new();
    ORIGIN
        .get_or_init(|| {
            let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind upstream");
            let origin = format!("http://{}", listener.local_addr().expect("address"));
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    std::thread::spawn(move || answer_upstream(stream));
                }
            });
            origin
        })
        .clone()
}

fn answer_upstream(mut stream: std::net::TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut line = String::new();
    // Read the request head; the tests send no bodies upstream.
    while reader.read_line(&mut line).is_ok_and(|read| read > 0) && line != "\r\n" {
        line.clear();
    }
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{UPSTREAM_BODY}",
        UPSTREAM_BODY.len()
    );
    let _ = stream.write_all(response.as_bytes());
}
