//! Request deadlines and body limits: a stuck guest costs one 504, not the host.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sendinchat_tests::processes::{HostProcess, http_client};

use super::{REQUEST_TIMEOUT, conformance_options, get_json};

/// Body limit of the strict host, in bytes.
const BODY_LIMIT_BYTES: usize = 1024;

/// A host with a 1 s deadline and a 1 KiB body limit.
fn strict_host() -> &'static HostProcess {
    static HOST: OnceLock<HostProcess> = OnceLock::new();
    HOST.get_or_init(|| {
        let options = conformance_options(None)
            .unwrap()
            .arg("--request-timeout")
            .arg("1s")
            .arg("--max-request-body-bytes")
            .arg(BODY_LIMIT_BYTES.to_string());
        HostProcess::start(&options).unwrap()
    })
}

fn assert_times_out(path: &str) {
    let started = Instant::now();
    let (status, body) = get_json(&format!("{}{path}", strict_host().base_url()));
    assert_eq!(status, 504, "{path}: {body}");
    assert_eq!(body["error"]["code"], "timeout");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

#[test]
fn a_guest_that_loops_is_stopped_and_the_host_keeps_serving() {
    assert_times_out("/probe/loop");
    let (status, body) = get_json(&format!("{}/probe/variable/greeting", strict_host().base_url()));
    assert_eq!((status, body["value"].as_str()), (200, Some("hello, world")));
}

#[test]
fn a_guest_still_waiting_at_the_deadline_gets_a_504() {
    assert_times_out("/probe/sleep/60000");
    let (status, _) = get_json(&format!("{}/probe/sleep/10", strict_host().base_url()));
    assert_eq!(status, 200);
}

#[test]
fn a_body_over_the_limit_gets_a_413() {
    let url = format!("{}/probe/body", strict_host().base_url());
    let client = http_client(REQUEST_TIMEOUT);
    let mut response = client.post(&url).send(vec![b'x'; BODY_LIMIT_BYTES + 1]).expect("request");
    assert_eq!(response.status().as_u16(), 413);
    let body: serde_json::Value = serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");

    let mut response = client.post(&url).send(vec![b'x'; BODY_LIMIT_BYTES]).expect("request");
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(body["length"], BODY_LIMIT_BYTES);
}
