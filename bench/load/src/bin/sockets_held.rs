//! Sockets held: many idle WebSockets (10,000 unless `SOCKETS` says otherwise) on one Pushpin
//! node with the app; the resident memory of each process (Pushpin's and the app's) before and
//! after; how fast they were opened; and the fan-out latency to a 1,000-member room at 5 messages/s
//! (which meets the goal with no other sockets) while they stay connected, after holding them
//! `HOLD_SECONDS` (35 unless set): past the default re-check interval (20–30 s per socket), so the
//! fan-out meets the held sockets' keep-alive re-checks.
//!
//! Run with `bench/sockets-held.sh`.
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sendinchat_bench::{SUSTAINED_SEND_INTERVAL, connect, fan_out};
use sendinchat_tests::app::{AppOptions, TestApp, TestUser};
use serde_json::json;

const ROOM_MEMBERS: usize = 1_000;
const MESSAGES: usize = 40;
/// Idle sockets are opened by this many threads at once, each for one of as many users.
const OPENERS: usize = 8;

fn main() {
    let sockets: usize = std::env::var("SOCKETS").ok().and_then(|value| value.parse().ok()).unwrap_or(10_000);
    let hold_seconds: u64 = std::env::var("HOLD_SECONDS").ok().and_then(|value| value.parse().ok()).unwrap_or(35);
    let app = TestApp::start(
        AppOptions::default()
            .variable("room_max_members", &ROOM_MEMBERS.to_string())
            .variable("chat_messages_per_minute", "1000000")
            .host_arg("--quiet"),
    )
    .expect("the app starts");
    println!("Pushpin settings: {}", app.pushpin_settings());
    let before = app.memory_kib();

    // The idle sockets: one room, a few users each holding many sockets.
    let openers: Vec<TestUser> = (0..OPENERS).map(|_| app.new_user()).collect();
    let ids: Vec<i64> = openers[1..].iter().map(|user| user.id).collect();
    let lobby =
        app.post("/chat/create_room", Some(&openers[0].token), &json!({"name": "lobby", "member_ids": ids}), &[]);
    assert_eq!(lobby.status, 201, "{}", lobby.text);
    let lobby = lobby.body["id"].as_i64().unwrap();
    let held = Mutex::new(Vec::with_capacity(sockets));
    let retried = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for opener in &openers {
            let (app, held, retried) = (&app, &held, &retried);
            scope.spawn(move || {
                for _ in 0..sockets / OPENERS {
                    let socket = connect(app, lobby, &opener.token, retried);
                    held.lock().unwrap().push(socket);
                }
            });
        }
    });
    let opened = held.lock().unwrap().len();
    let opening = started.elapsed();
    let after = app.memory_kib();
    println!(
        "\n{opened} idle sockets opened in {:.1} s ({:.0}/s, {OPENERS} at a time; {} after a 502 at first)",
        opening.as_secs_f64(),
        opened as f64 / opening.as_secs_f64(),
        retried.load(Ordering::Relaxed)
    );
    println!("{:>18} | {:>10} | {:>10}", "process", "RSS before", "RSS held");
    for ((command, resident_before), (_, resident_after)) in before.iter().zip(&after) {
        println!("{command:>18} | {:>7} MiB | {:>7} MiB", resident_before / 1024, resident_after / 1024);
    }

    let members: Vec<TestUser> = (0..ROOM_MEMBERS).map(|_| app.new_user()).collect();
    std::thread::sleep(Duration::from_secs(hold_seconds).saturating_sub(started.elapsed() - opening));
    let held_seconds = (started.elapsed() - opening).as_secs_f64();
    let run = fan_out(&app, &members, MESSAGES, SUSTAINED_SEND_INTERVAL);
    println!(
        "\nfan-out to {ROOM_MEMBERS} members at 5 messages/s, the idle sockets held {held_seconds:.0} s before it: p50 p99 max ms | delivered | first, last message's slowest ms | retried connects"
    );
    println!("{}", run.summary());
    println!("load average: {}", std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim());
    drop(held);
}
