//! Request deadlines and body limits: a stuck guest costs one 504, not the host.

use std::io::{Read, Write};
use std::net::TcpStream;
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

/// Sends `head` and `body_pieces` (each in its own write) to the strict host; its answer's first
/// line.
fn raw_request(head: &str, body_pieces: &[&[u8]]) -> String {
    let address = strict_host().base_url().trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(REQUEST_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    for piece in body_pieces {
        stream.write_all(piece).unwrap();
    }
    let mut answer = Vec::new();
    let mut buffer = [0; 4096];
    while !answer.windows(4).any(|window| window == b"\r\n\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => answer.extend_from_slice(&buffer[..read]),
        }
    }
    String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_owned()
}

#[test]
fn a_body_that_stops_arriving_gets_a_408_at_the_deadline() {
    let started = Instant::now();
    let status = raw_request("POST /probe/body HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", &[b"x"]);
    assert!(status.starts_with("HTTP/1.1 408"), "{status}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

#[test]
fn a_body_in_one_byte_chunks_arrives_whole() {
    let chunks: Vec<&[u8]> =
        std::iter::repeat_n(b"1\r\nx\r\n".as_slice(), 300).chain([b"0\r\n\r\n".as_slice()]).collect();
    let head = "POST /probe/body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    assert!(raw_request(head, &chunks).starts_with("HTTP/1.1 200"));
    let over: Vec<&[u8]> =
        std::iter::repeat_n(b"1\r\nx\r\n".as_slice(), BODY_LIMIT_BYTES + 1).chain([b"0\r\n\r\n".as_slice()]).collect();
    assert!(raw_request(head, &over).starts_with("HTTP/1.1 413"), "one byte over the limit");
}

/// A response still streaming when its instance is stopped at the deadline must read as broken:
/// wasmtime ends such a body as if it were complete, and a client would take a truncated answer
/// (a statement missing its last rows) for the whole of it.
#[test]
fn a_response_cut_off_at_the_deadline_never_ends_cleanly() {
    let client = http_client(REQUEST_TIMEOUT);
    let mut response = client.get(&format!("{}/probe/drip/3/10", strict_host().base_url())).call().expect("request");
    assert_eq!(response.body_mut().read_to_string().expect("a complete body"), "drip\n".repeat(3));

    let mut response = client.get(&format!("{}/probe/drip/40/100", strict_host().base_url())).call().expect("request");
    assert_eq!(response.status().as_u16(), 200, "the head went out before the deadline");
    let read = response.body_mut().read_to_string();
    assert!(read.is_err(), "a body cut off after {:?} read as complete", read.map(|body| body.lines().count()));
}

/// Idle connections past the old cap of 1,024 do not keep a new client waiting: the host, as
/// Spin, keeps no count of its own (only the descriptor limit, raised at start, bounds them).
#[test]
fn idle_connections_do_not_keep_new_clients_waiting() {
    const IDLE_CONNECTIONS: usize = 1_100;
    // The test holds the sockets too: past a 1,024 soft limit (the host raises its own).
    assert!(allow_open_files(IDLE_CONNECTIONS as u64 + 256), "this process may not hold {IDLE_CONNECTIONS} sockets");
    let host = HostProcess::start(&conformance_options(None).unwrap()).unwrap();
    let address = host.base_url().trim_start_matches("http://").to_owned();
    let idle: Vec<TcpStream> = (0..IDLE_CONNECTIONS)
        .map(|index| TcpStream::connect(&address).unwrap_or_else(|error| panic!("idle connection {index}: {error}")))
        .collect();
    let started = Instant::now();
    let response =
        http_client(Duration::from_secs(5)).get(&format!("{}/.well-known/spin/health", host.base_url())).call();
    let status = response.map(|response| response.status().as_u16());
    assert_eq!(status.ok(), Some(200), "with {} idle connections, after {:?}", idle.len(), started.elapsed());
}

/// Raises this process's open-file soft limit to `wanted`, if its hard limit allows; whether the
/// soft limit is now at least that.
fn allow_open_files(wanted: u64) -> bool {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return false;
    }
    if limit.rlim_cur < wanted && wanted <= limit.rlim_max {
        let raised = libc::rlimit { rlim_cur: wanted, rlim_max: limit.rlim_max };
        // SAFETY: `raised` is a valid rlimit; the call only reads it.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    limit.rlim_cur >= wanted
}
