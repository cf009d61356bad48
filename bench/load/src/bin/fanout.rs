//! Chat fan-out: latency from `POST /chat/send_message` to receipt on every WebSocket of the room
//! (through Redis, the `chat-fanout` trigger and Pushpin), for rooms of 10, 100 and 1,000
//! subscribers; and how many messages per second are persisted.
//!
//! Run with `bench/fanout.sh` (it starts Postgres and Redis and uses the release host).
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sendinchat_tests::app::{AppOptions, SocketEvent, TestApp, TestUser};
use serde_json::json;

const ROOM_SIZES: [usize; 3] = [10, 100, 1_000];
const MESSAGES_PER_ROOM: usize = 40;
const SEND_INTERVAL: Duration = Duration::from_millis(50);
const PERSIST_SENDERS: usize = 16;
const PERSIST_DURATION: Duration = Duration::from_secs(10);

fn now_micros() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros()
}

fn percentile(sorted: &[u128], fraction: f64) -> f64 {
    let index = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index] as f64 / 1000.0
}

fn main() {
    let app = TestApp::start(
        AppOptions::default()
            .variable("room_max_members", "1000")
            .variable("chat_messages_per_minute", "1000000")
            .host_arg("--quiet"),
    )
    .expect("the app starts");
    println!("Pushpin settings: {}", app.pushpin_settings());
    let users: Vec<TestUser> = (0..*ROOM_SIZES.iter().max().unwrap()).map(|_| app.new_user()).collect();

    println!("\n{:>10} | {:>9} {:>9} {:>9} | {:>10}", "subscribers", "p50 ms", "p99 ms", "max ms", "delivered");
    for size in ROOM_SIZES {
        let (latencies, expected) = fan_out(&app, &users[..size]);
        let mut sorted = latencies;
        sorted.sort_unstable();
        println!(
            "{size:>10} | {:>9.2} {:>9.2} {:>9.2} | {:>5}/{expected}",
            percentile(&sorted, 0.50),
            percentile(&sorted, 0.99),
            percentile(&sorted, 1.0),
            sorted.len()
        );
    }
    let persisted = persist_rate(&app, &users[0]);
    println!(
        "\nmessages persisted: {persisted:.0}/s ({PERSIST_SENDERS} concurrent HTTP senders, {PERSIST_DURATION:?})"
    );
    println!("load average: {}", std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim());
}

/// One room of `members` (the first sends); every member holds a socket. Returns every
/// send-to-receipt latency in microseconds and how many deliveries were expected.
fn fan_out(app: &TestApp, members: &[TestUser]) -> (Vec<u128>, usize) {
    let owner = &members[0];
    let ids: Vec<i64> = members[1..].iter().map(|member| member.id).collect();
    let room = app.post("/chat/create_room", Some(&owner.token), &json!({"name": "bench", "member_ids": ids}), &[]);
    assert_eq!(room.status, 201, "{}", room.text);
    let room = room.body["id"].as_i64().unwrap();

    let (samples, received) = mpsc::channel();
    let connected = Arc::new(Barrier::new(members.len() + 1));
    let readers: Vec<_> = members
        .iter()
        .map(|member| {
            let mut socket = sendinchat_tests::app::ChatSocket::connect(app, room, &member.token).expect("connect");
            let (samples, connected) = (samples.clone(), connected.clone());
            std::thread::spawn(move || {
                connected.wait();
                let mut seen = 0;
                while let Some(SocketEvent::Text(event)) = socket.next_event(Duration::from_secs(5)) {
                    let content = event["message"]["content"].as_str().unwrap_or_default();
                    if let Some(sent_at) = content.strip_prefix("bench:").and_then(|rest| rest.split(':').nth(1)) {
                        samples.send(now_micros() - sent_at.parse::<u128>().unwrap()).unwrap();
                        seen += 1;
                    }
                    if seen == MESSAGES_PER_ROOM {
                        break;
                    }
                }
            })
        })
        .collect();
    drop(samples);
    connected.wait();
    // Pushpin applies subscriptions shortly after the handshake: let them settle.
    std::thread::sleep(Duration::from_secs(2));
    for index in 0..MESSAGES_PER_ROOM {
        let content = format!("bench:{index}:{}", now_micros());
        let sent =
            app.post("/chat/send_message", Some(&owner.token), &json!({"chat_id": room, "content": content}), &[]);
        assert_eq!(sent.status, 201, "{}", sent.text);
        std::thread::sleep(SEND_INTERVAL);
    }
    for reader in readers {
        reader.join().unwrap();
    }
    (received.into_iter().collect(), members.len() * MESSAGES_PER_ROOM)
}

/// Messages per second that `PERSIST_SENDERS` concurrent senders get stored (201) in one room.
fn persist_rate(app: &TestApp, owner: &TestUser) -> f64 {
    let room = app.post("/chat/create_room", Some(&owner.token), &json!({"name": "persist"}), &[]);
    let room = room.body["id"].as_i64().unwrap();
    let started = Instant::now();
    let stored: usize = std::thread::scope(|scope| {
        let senders: Vec<_> = (0..PERSIST_SENDERS)
            .map(|_| {
                scope.spawn(|| {
                    let mut stored = 0;
                    while started.elapsed() < PERSIST_DURATION {
                        let body = json!({"chat_id": room, "content": "persist"});
                        if app.post("/chat/send_message", Some(&owner.token), &body, &[]).status == 201 {
                            stored += 1;
                        }
                    }
                    stored
                })
            })
            .collect();
        senders.into_iter().map(|sender| sender.join().unwrap()).sum()
    });
    stored as f64 / started.elapsed().as_secs_f64()
}
