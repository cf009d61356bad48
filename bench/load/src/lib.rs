//! What the benchmarks share: timestamps, percentiles, and one room's fan-out measured from
//! `POST /chat/send_message` to receipt on every member's socket.
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sendinchat_tests::app::{ChatSocket, RawSocketEvent, TestApp, TestUser, Topology};
use serde_json::json;

/// Pause between two sends of one fan-out run.
pub const SEND_INTERVAL: Duration = Duration::from_millis(50);

/// A quarter of that rate: 5 messages/s, 5,000 deliveries/s to a 1,000-member room, which one
/// Pushpin node here delivers within the 250 ms p99 goal (20 messages/s saturates it).
pub const SUSTAINED_SEND_INTERVAL: Duration = SEND_INTERVAL.saturating_mul(4);

/// How a socket's opening is tried again after a 502, as the web client reconnects
/// (web/src/realtime.ts): after a pause that starts at 250 ms and doubles up to 5 s, each pause
/// drawn between half and all of that so that sockets refused together do not come back
/// together; here at most 12 tries (about 20 to 40 s of pauses) before the benchmark gives up.
const CONNECT_ATTEMPTS_MAX: u32 = 12;
const CONNECT_RETRY_PAUSE_FIRST: Duration = Duration::from_millis(250);
const CONNECT_RETRY_PAUSE_MAX: Duration = Duration::from_secs(5);

/// Opens a member's socket as the web client does: a refused opening (502) is tried again after a
/// backoff. Pushpin 1.36 answers 502 ("Error while proxying to origin.") to an opening it refused
/// unsent because its queue to zurl was full, and never retries one itself; that happens in
/// bursts of requests: a room's 1,000 sockets closing at once, or the keep-alive re-checks of
/// thousands of held sockets coming due in the same second (README, fan-out).
/// Counts in `retried` the sockets that needed more than one try; a failure that is not retried
/// panics with the problems `logs` shows.
pub fn connect(node: &TestApp, logs: &dyn AppLogs, room: i64, token: &str, retried: &AtomicUsize) -> ChatSocket {
    let mut backoff = CONNECT_RETRY_PAUSE_FIRST;
    for attempt in 1..=CONNECT_ATTEMPTS_MAX {
        match ChatSocket::connect(node, room, token) {
            Ok(socket) => return socket,
            Err(error) if attempt < CONNECT_ATTEMPTS_MAX && is_bad_gateway(error.as_ref()) => {
                if attempt == 1 {
                    retried.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(jittered(backoff));
                backoff = (backoff * 2).min(CONNECT_RETRY_PAUSE_MAX);
            }
            Err(error) => {
                // Pushpin and zurl write their logs a moment later.
                std::thread::sleep(Duration::from_secs(1));
                panic!("connect (attempt {attempt}): {error}; problems in the log:\n{}", log_problems(logs))
            }
        }
    }
    unreachable!("the last attempt returns or panics")
}

/// Between half and all of `backoff`. `RandomState` is seeded afresh for each value, which is
/// random enough to spread retries and needs no random-number crate.
fn jittered(backoff: Duration) -> Duration {
    let fraction = RandomState::new().hash_one(0_u8) as f64 / u64::MAX as f64;
    backoff.mul_f64(0.5 + fraction / 2.0)
}

fn is_bad_gateway(error: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    matches!(error.downcast_ref::<tungstenite::Error>(), Some(tungstenite::Error::Http(response)) if response.status() == 502)
}

/// The logs of the processes a benchmark started: one app, or a topology of several.
pub trait AppLogs: Sync {
    /// The app's and Pushpin's logs.
    fn log(&self) -> String;
    /// zurl's log of Pushpin's requests to the app.
    fn zurl_log(&self) -> String;
}

impl AppLogs for TestApp {
    fn log(&self) -> String {
        TestApp::log(self)
    }

    fn zurl_log(&self) -> String {
        TestApp::zurl_log(self)
    }
}

impl AppLogs for Topology {
    fn log(&self) -> String {
        Topology::log(self)
    }

    fn zurl_log(&self) -> String {
        Topology::zurl_log(self)
    }
}

/// Lines of the app's log shown when a socket cannot connect.
const LOG_LINES_ON_FAILURE: usize = 80;

/// What the app's logs (host, Pushpin, zurl) say went wrong: warnings, errors and 5xx answers;
/// then the last lines of zurl's log.
fn log_problems(logs: &dyn AppLogs) -> String {
    let zurl_log = logs.zurl_log();
    let log = format!("{}\n--- zurl ---\n{zurl_log}", logs.log());
    let is_problem = |line: &&str| {
        ["WARN", "ERR", "error", " code=5"].iter().any(|mark| line.contains(mark)) && !line.contains("\"status\":2")
    };
    format!(
        "{}\n--- zurl, last lines ---\n{}",
        last_lines(&log, is_problem, LOG_LINES_ON_FAILURE),
        last_lines(&zurl_log, |_| true, ZURL_LINES_ON_FAILURE)
    )
}

/// The last `count` lines of `text` that `keep` accepts, in their order.
fn last_lines(text: &str, keep: impl FnMut(&&str) -> bool, count: usize) -> String {
    let mut lines: Vec<&str> = text.lines().rev().filter(keep).take(count).collect();
    lines.reverse();
    lines.join("\n")
}

/// Last lines of zurl's log (Pushpin's requests to the app) shown when a socket cannot connect.
const ZURL_LINES_ON_FAILURE: usize = 30;

/// What one fan-out run measured.
pub struct FanOut {
    /// Every send-to-receipt latency, in microseconds.
    pub latencies: Vec<u128>,
    /// How many deliveries were expected.
    pub expected: usize,
    /// Per message, in sending order, the latency of its slowest delivery (microseconds). When
    /// these grow from first to last, deliveries queue up: the room's delivery rate is past what
    /// the machine sustains, and the percentiles measure the queue rather than one delivery.
    pub slowest_by_message: Vec<u128>,
    /// Sockets whose opening Pushpin refused with a 502 at first (see [`connect`]).
    pub retried_connects: usize,
}

impl FanOut {
    /// `p50 p99 max | delivered/expected | first/last message's slowest | retried connects`, times
    /// in milliseconds.
    pub fn summary(&self) -> String {
        let slowest = |latency: Option<&u128>| latency.map_or(f64::NAN, |&micros| micros as f64 / 1000.0);
        format!(
            "{} | {:>8.1} {:>8.1} | {:>7}",
            summary(self.latencies.clone(), self.expected),
            slowest(self.slowest_by_message.first()),
            slowest(self.slowest_by_message.last()),
            self.retried_connects
        )
    }
}

pub fn now_micros() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros()
}

/// The `fraction` percentile of sorted microseconds, in milliseconds.
pub fn percentile(sorted: &[u128], fraction: f64) -> f64 {
    let index = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index] as f64 / 1000.0
}

/// One room of `members` (the first sends `messages` through the first of `nodes`, one per
/// `send_interval`); every member holds a socket, member `i` on node `i % nodes.len()`.
pub fn fan_out(
    nodes: &[TestApp],
    logs: &dyn AppLogs,
    members: &[TestUser],
    messages: usize,
    send_interval: Duration,
) -> FanOut {
    let (app, owner) = (&nodes[0], &members[0]);
    let ids: Vec<i64> = members[1..].iter().map(|member| member.id).collect();
    let room = app.post("/chat/create_room", Some(&owner.token), &json!({"name": "bench", "member_ids": ids}), &[]);
    assert_eq!(room.status, 201, "{}", room.text);
    let room = room.body["id"].as_i64().unwrap();

    let (samples, received) = mpsc::channel();
    let connected = Arc::new(Barrier::new(members.len() + 1));
    let retried_connects = AtomicUsize::new(0);
    let readers: Vec<_> = members
        .iter()
        .enumerate()
        .map(|(index, member)| {
            let node = &nodes[index % nodes.len()];
            let mut socket = connect(node, logs, room, &member.token, &retried_connects);
            let (samples, connected) = (samples.clone(), connected.clone());
            std::thread::spawn(move || {
                connected.wait();
                receive(&mut socket, messages, Duration::from_secs(5), |index, latency| {
                    samples.send((index, latency)).unwrap();
                });
            })
        })
        .collect();
    drop(samples);
    connected.wait();
    // Pushpin applies subscriptions shortly after the handshake: let them settle.
    std::thread::sleep(Duration::from_secs(2));
    for index in 0..messages {
        let content = format!("bench:{index}:{}", now_micros());
        let sent =
            app.post("/chat/send_message", Some(&owner.token), &json!({"chat_id": room, "content": content}), &[]);
        assert_eq!(sent.status, 201, "{}", sent.text);
        std::thread::sleep(send_interval);
    }
    for reader in readers {
        reader.join().unwrap();
    }
    let mut slowest_by_message = vec![0; messages];
    let latencies = received
        .into_iter()
        .map(|(index, latency)| {
            slowest_by_message[index] = slowest_by_message[index].max(latency);
            latency
        })
        .collect();
    FanOut {
        latencies,
        expected: members.len() * messages,
        slowest_by_message,
        retried_connects: retried_connects.into_inner(),
    }
}

/// Reads `socket` until `messages` benchmark messages have arrived (or none for `timeout`), and
/// calls `sample` with each one's index and send-to-receipt latency in microseconds.
pub fn receive(socket: &mut ChatSocket, messages: usize, timeout: Duration, mut sample: impl FnMut(usize, u128)) {
    let mut seen = 0;
    // Unchecked frames: checking each against the contract made this client the machine's
    // largest consumer of CPU in a 1,000-member run (perf, 2026-12-03).
    while seen < messages {
        let Some(RawSocketEvent::Text(text)) = socket.next_raw_event(timeout) else {
            return;
        };
        let event: serde_json::Value = serde_json::from_str(&text).expect("a JSON event");
        let content = event["message"]["content"].as_str().unwrap_or_default();
        if let Some((index, sent_at)) = content.strip_prefix("bench:").and_then(|rest| rest.split_once(':')) {
            sample(index.parse().unwrap(), now_micros() - sent_at.parse::<u128>().unwrap());
            seen += 1;
        }
    }
}

/// `p50 p99 max | delivered/expected` for one run's latencies.
pub fn summary(mut latencies: Vec<u128>, expected: usize) -> String {
    latencies.sort_unstable();
    if latencies.is_empty() {
        return format!("nothing delivered (of {expected})");
    }
    format!(
        "{:>9.2} {:>9.2} {:>9.2} | {:>5}/{expected}",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
        latencies.len()
    )
}
