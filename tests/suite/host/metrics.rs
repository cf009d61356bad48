//! `up --metrics-listen`: the host's Prometheus metrics move as requests, pool waits and deadline
//! kills happen.

use std::time::Duration;

use sendinchat_tests::metrics::{sample, try_sample};
use sendinchat_tests::processes::{HostProcess, http_client};

use super::{REQUEST_TIMEOUT, conformance_options, get_json};

/// A host of its own (counts start at zero) with metrics on a free port and `request_timeout`.
fn host_with_metrics(request_timeout: &str) -> HostProcess {
    let options = conformance_options(None)
        .unwrap()
        .arg("--metrics-listen")
        .arg("127.0.0.1:0")
        .arg("--request-timeout")
        .arg(request_timeout);
    HostProcess::start(&options).unwrap()
}

pub(super) fn scrape(host: &HostProcess) -> String {
    let mut response = http_client(REQUEST_TIMEOUT).get(host.metrics_url()).call().expect("metrics");
    assert_eq!(response.status(), 200);
    let content_type = response.headers().get("content-type").unwrap().to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    response.body_mut().read_to_string().unwrap()
}

#[test]
fn requests_instances_and_statements_are_counted() {
    let host = host_with_metrics("30s");
    for _ in 0..3 {
        let (status, _) = get_json(&format!("{}/probe/variable/greeting", host.base_url()));
        assert_eq!(status, 200);
    }
    let (status, _) = get_json(&format!("{}/nowhere", host.base_url()));
    assert_eq!(status, 404);
    for number in 0..2 {
        let (status, _) = get_json(&format!("{}/probe/pg/echo/{number}", host.base_url()));
        assert_eq!(status, 200);
    }
    let text = scrape(&host);
    let probe_ok = ["component=\"probe\"", "route=\"/probe/...\"", "method=\"GET\"", "status=\"200\""];
    assert_eq!(sample(&text, "sendinchat_host_http_requests_total", &probe_ok), 5.0, "{text}");
    assert_eq!(sample(&text, "sendinchat_host_http_requests_total", &["status=\"404\""]), 1.0, "{text}");
    let route = ["component=\"probe\"", "route=\"/probe/...\""];
    assert_eq!(sample(&text, "sendinchat_host_http_request_duration_seconds_count", &route), 5.0, "{text}");
    let created = sample(&text, "sendinchat_host_instances_created_total", &["component=\"probe\""]);
    // A series appears with its first count: none when every request had a new instance.
    let reused = try_sample(&text, "sendinchat_host_instances_reused_total", &["component=\"probe\""]).unwrap_or(0.0);
    assert!(created >= 1.0 && created + reused == 5.0, "created {created}, reused {reused}: {text}");
    // `echo` runs one statement per request on a reused connection: prepared once, then cached.
    assert!(sample(&text, "sendinchat_host_postgres_statement_cache_hits_total", &[]) >= 1.0, "{text}");
    assert_eq!(sample(&text, "sendinchat_host_http_requests_in_flight", &[]), 1.0 - 1.0, "{text}");
}

#[test]
fn a_pool_wait_under_load_shows() {
    let host = host_with_metrics("30s");
    // 70 requests holding a connection each for 400 ms against a pool of 64: some must wait.
    let base_url = host.base_url().to_owned();
    let requests: Vec<_> = (0..70)
        .map(|_| {
            let url = format!("{base_url}/probe/pg/hold/400");
            std::thread::spawn(move || get_json(&url).0)
        })
        .collect();
    for request in requests {
        assert_eq!(request.join().unwrap(), 200);
    }
    let text = scrape(&host);
    assert_eq!(sample(&text, "sendinchat_host_postgres_acquire_duration_seconds_count", &[]), 70.0, "{text}");
    let waited = sample(&text, "sendinchat_host_postgres_acquire_duration_seconds_sum", &[]);
    assert!(waited >= 6.0 * Duration::from_millis(300).as_secs_f64(), "waited {waited} s in all: {text}");
    assert_eq!(sample(&text, "sendinchat_host_postgres_connections_in_use", &[]), 0.0, "{text}");
    assert_eq!(sample(&text, "sendinchat_host_postgres_connections_open", &[]), 64.0, "{text}");
}

#[test]
fn a_deadline_kill_shows() {
    let host = host_with_metrics("1s");
    let (status, _) = get_json(&format!("{}/probe/loop", host.base_url()));
    assert_eq!(status, 504);
    // The client's 504 goes out when the deadline passes; the instance is killed (and counted)
    // as the host unwinds it, which may be a moment later.
    let killed = |text: &String| {
        try_sample(text, "sendinchat_host_instances_killed_by_deadline_total", &["component=\"probe\""]) == Some(1.0)
    };
    let counted = sendinchat_tests::wait::until(Duration::from_secs(5), || Some(scrape(&host)).filter(killed));
    assert!(counted.is_some(), "{}", scrape(&host));
}

/// The components block in Spin's synchronous Postgres calls: a deadline passing during one still
/// answers 504 on time, kills the instance, and cancels the statement it left running (which
/// would otherwise hold its locks, and its connection, until it ended); the pool answers next.
#[test]
fn a_deadline_passing_in_a_synchronous_query_answers_and_frees_the_connection() {
    let services = sendinchat_tests::processes::TestServices::from_env();
    let mut database =
        postgres::Client::connect(&services.database("host_conformance").unwrap(), postgres::NoTls).unwrap();
    let host = host_with_metrics("1s");
    let started = std::time::Instant::now();
    let (status, _) = get_json(&format!("{}/probe/pg/sleep/sync/10000", host.base_url()));
    assert_eq!(status, 504);
    assert!(started.elapsed() < Duration::from_secs(4), "answered after {:?}", started.elapsed());
    let sleeping = "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(10)' AND state = 'active'";
    let cancelled = sendinchat_tests::wait::until(Duration::from_secs(5), || {
        (database.query_one(sleeping, &[]).unwrap().get::<_, i64>(0) == 0).then_some(())
    });
    assert!(cancelled.is_some(), "the statement still ran {:?} after its request began", started.elapsed());
    let freed = |text: &String| {
        let killed = try_sample(text, "sendinchat_host_instances_killed_by_deadline_total", &["component=\"probe\""]);
        killed == Some(1.0) && sample(text, "sendinchat_host_postgres_connections_in_use", &[]) == 0.0
    };
    let scraped = sendinchat_tests::wait::until(Duration::from_secs(10), || Some(scrape(&host)).filter(freed));
    assert!(scraped.is_some(), "{}", scrape(&host));
    let (status, body) = get_json(&format!("{}/probe/pg/echo/7", host.base_url()));
    assert_eq!((status, &body["echo"]), (200, &serde_json::json!("int32:7")), "{body}");
}

/// Clients choose methods freely: each distinct one, kept as a label value, would stay in memory
/// and in every scrape for good.
#[test]
fn unknown_methods_share_one_label() {
    use std::io::{Read, Write};
    let host = host_with_metrics("30s");
    for method in ["BREW", "BREW-42"] {
        let mut stream = std::net::TcpStream::connect(host.base_url().trim_start_matches("http://")).unwrap();
        write!(stream, "{method} /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    }
    let text = scrape(&host);
    assert_eq!(sample(&text, "sendinchat_host_http_requests_total", &["method=\"other\""]), 2.0, "{text}");
    assert!(!text.contains("BREW"), "{text}");
}
