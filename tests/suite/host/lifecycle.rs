//! The host's log and its shutdown.

use std::time::Duration;

use sendinchat_tests::processes::HostProcess;

use super::{conformance_options, get_json, own_host};

#[test]
fn component_output_and_one_line_per_request_reach_the_host_log() {
    let host = own_host();
    let (status, _) = get_json(&format!("{}/probe/log", host.base_url()));
    assert_eq!(status, 200);
    let timeout = Duration::from_secs(5);
    host.wait_for_log("[probe] stdout: probe says hello on stdout", timeout).unwrap();
    host.wait_for_log("[probe] stderr: probe says hello on stderr", timeout).unwrap();
    host.wait_for_log("GET /probe/log component=probe status=200 duration_ms=", timeout).unwrap();
}

#[test]
fn sigterm_lets_requests_in_flight_finish_then_exits_cleanly() {
    let host = HostProcess::start(&conformance_options(None).unwrap()).unwrap();
    let url = format!("{}/probe/sleep/1500", host.base_url());
    let in_flight = std::thread::spawn(move || get_json(&url));
    host.wait_for_log("[probe] stdout: sleeping for 1500 ms", Duration::from_secs(10)).unwrap();
    let (status, log) = host.terminate(Duration::from_secs(20)).unwrap();
    let (request_status, body) = in_flight.join().unwrap();
    assert_eq!(request_status, 200, "{body}");
    assert_eq!(body["slept_ms"], 1500);
    assert!(status.success(), "{status}: {log}");
    assert!(log.contains("SIGTERM received"), "{log}");
    assert!(log.contains("no longer accepting connections"), "{log}");
}
