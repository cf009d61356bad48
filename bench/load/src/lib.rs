//! What the benchmarks share: timestamps, percentiles, and one room's fan-out measured from
//! `POST /chat/send_message` to receipt on every member's socket.
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sendinchat_tests::app::{ChatSocket, SocketEvent, TestApp, TestUser};
use serde_json::json;

/// Pause between two sends of one fan-out run.
pub const SEND_INTERVAL: Duration = Duration::from_millis(50);

pub fn now_micros() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros()
}

/// The `fraction` percentile of sorted microseconds, in milliseconds.
pub fn percentile(sorted: &[u128], fraction: f64) -> f64 {
    let index = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index] as f64 / 1000.0
}

/// One room of `members` (the first sends `messages`); every member holds a socket. Returns every
/// send-to-receipt latency in microseconds and how many deliveries were expected.
pub fn fan_out(app: &TestApp, members: &[TestUser], messages: usize) -> (Vec<u128>, usize) {
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
            let mut socket = ChatSocket::connect(app, room, &member.token).expect("connect");
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
                    if seen == messages {
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
    for index in 0..messages {
        let content = format!("bench:{index}:{}", now_micros());
        let sent =
            app.post("/chat/send_message", Some(&owner.token), &json!({"chat_id": room, "content": content}), &[]);
        assert_eq!(sent.status, 201, "{}", sent.text);
        std::thread::sleep(SEND_INTERVAL);
    }
    for reader in readers {
        reader.join().unwrap();
    }
    (received.into_iter().collect(), members.len() * messages)
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
