//! Chat fan-out: latency from `POST /chat/send_message` to receipt on every WebSocket of the room
//! (through Redis, the `chat-fanout` trigger and Pushpin), for rooms of 10, 100 and 1,000
//! subscribers; and how many messages per second are persisted.
//!
//! Run with `bench/fanout.sh` (it starts Postgres and Redis and uses the release host).
use std::time::{Duration, Instant};

use sendinchat_bench::{fan_out, summary};
use sendinchat_tests::app::{AppOptions, TestApp, TestUser};
use serde_json::json;

const ROOM_SIZES: [usize; 3] = [10, 100, 1_000];
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
    let users: Vec<TestUser> = (0..*ROOM_SIZES.iter().max().unwrap()).map(|_| app.new_user()).collect();

    println!("\n{:>10} | {:>9} {:>9} {:>9} | {:>10}", "subscribers", "p50 ms", "p99 ms", "max ms", "delivered");
    for size in ROOM_SIZES {
        let (latencies, expected) = fan_out(&app, &users[..size], MESSAGES_PER_ROOM);
        println!("{size:>10} | {}", summary(latencies, expected));
    }
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
