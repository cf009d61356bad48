//! Chat fan-out: latency from `POST /chat/send_message` to receipt on every WebSocket of the room
//! (through Redis, the `chat-fanout` trigger and Pushpin), for rooms of 10, 100 and 1,000
//! subscribers; and how many messages per second are persisted. The 1,000-member room runs twice:
//! at the same send rate as the others, then at a quarter of it, so a run shows whether the
//! percentiles measure one delivery or a queue of them (deliveries offered per second past what
//! the machine sustains).
//!
//! Run with `bench/fanout.sh` (it starts Postgres and Redis and uses the release host).
use std::time::{Duration, Instant};

use sendinchat_bench::{SEND_INTERVAL, SUSTAINED_SEND_INTERVAL, fan_out};
use sendinchat_tests::app::{AppOptions, TestApp, TestUser};
use serde_json::json;

/// Room sizes with the pause between sends.
const RUNS: [(usize, Duration); 4] =
    [(10, SEND_INTERVAL), (100, SEND_INTERVAL), (1_000, SEND_INTERVAL), (1_000, SUSTAINED_SEND_INTERVAL)];
const MESSAGES_PER_ROOM: usize = 40;
const PERSIST_SENDERS: usize = 16;
const PERSIST_DURATION: Duration = Duration::from_secs(10);

fn main() {
    let app = TestApp::start(
        AppOptions::default()
            .variable("room_max_members", "1000")
            .variable("chat_messages_per_minute", "1000000")
            .host_arg("--quiet"),
    )
    .expect("the app starts");
    println!("Pushpin settings: {}", app.pushpin_settings());
    let users: Vec<TestUser> = (0..RUNS.iter().map(|(size, _)| *size).max().unwrap()).map(|_| app.new_user()).collect();

    println!(
        "\n{:>11} {:>12} | {:>9} {:>9} {:>9} | {:>11} | {:>8} {:>8} | {:>7}",
        "subscribers", "deliveries/s", "p50 ms", "p99 ms", "max ms", "delivered", "first ms", "last ms", "retried"
    );
    for (size, send_interval) in RUNS {
        let offered = size as f64 / send_interval.as_secs_f64();
        let run = fan_out(std::slice::from_ref(&app), &app, &users[..size], MESSAGES_PER_ROOM, send_interval);
        println!("{size:>11} {offered:>12.0} | {}", run.summary());
    }
    println!("(first/last ms: the slowest delivery of the first and of the last message sent; retried: sockets");
    println!(" whose opening Pushpin refused with a 502 at first, opened on a later try)");
    let persisted = persist_rate(&app, &users[0]);
    println!(
        "\nmessages persisted: {persisted:.0}/s ({PERSIST_SENDERS} concurrent HTTP senders, {PERSIST_DURATION:?})"
    );
    println!("load average: {}", std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim());
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
