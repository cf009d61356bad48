//! Sockets held: many idle WebSockets (10,000 unless `SOCKETS` says otherwise) on Pushpin nodes
//! in front of the app (one node and one app instance unless `NODES` and `INSTANCES` say
//! otherwise; the sockets and the room's members are spread evenly over the nodes); the resident
//! memory of each process (Pushpin's and the app's) before and after; how fast they were opened;
//! and the fan-out latency to a 1,000-member room at 5 messages/s (which meets the goal with no
//! other sockets) while they stay connected, after holding them `HOLD_SECONDS` (35 unless set):
//! past the default re-check interval (20–30 s per socket), so the fan-out meets the held
//! sockets' keep-alive re-checks. `RECHECK_SECONDS` sets the app's
//! `socket_recheck_interval_seconds` (its default otherwise). Before and after the fan-out, one
//! message to the held sockets' room counts those Pushpin has closed.
//!
//! Run with `bench/sockets-held.sh`.
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sendinchat_bench::{SUSTAINED_SEND_INTERVAL, connect, fan_out};
use sendinchat_tests::app::{AppOptions, ChatSocket, RawSocketEvent, TestApp, TestUser, Topology, TopologyOptions};
use serde_json::json;

const ROOM_MEMBERS: usize = 1_000;
const MESSAGES: usize = 40;
/// Idle sockets are opened by this many threads at once, each for one of as many users.
const OPENERS: usize = 8;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

fn main() {
    let sockets = setting("SOCKETS", 10_000);
    let hold_seconds = setting("HOLD_SECONDS", 35) as u64;
    let mut app = AppOptions::default()
        .variable("room_max_members", &ROOM_MEMBERS.to_string())
        .variable("chat_messages_per_minute", "1000000")
        .host_arg("--quiet");
    if let Ok(seconds) = std::env::var("RECHECK_SECONDS") {
        app = app.variable("socket_recheck_interval_seconds", &seconds);
    }
    let options = TopologyOptions {
        instances: setting("INSTANCES", 1),
        nodes: setting("NODES", 1),
        app,
        ..TopologyOptions::default()
    };
    let (instance_count, node_count) = (options.instances, options.nodes);
    let topology = Topology::start(options).expect("not against an external app");
    let nodes: Vec<TestApp> = (0..node_count).map(|index| topology.node(index)).collect();
    println!(
        "{instance_count} app instance(s), {node_count} Pushpin node(s); Pushpin settings: {}",
        topology.pushpin_settings()
    );
    let before = topology.memory_kib();

    // The idle sockets: one room, a few users each holding many sockets, round the nodes.
    let openers: Vec<TestUser> = (0..OPENERS).map(|_| nodes[0].new_user()).collect();
    let ids: Vec<i64> = openers[1..].iter().map(|user| user.id).collect();
    let lobby =
        nodes[0].post("/chat/create_room", Some(&openers[0].token), &json!({"name": "lobby", "member_ids": ids}), &[]);
    assert_eq!(lobby.status, 201, "{}", lobby.text);
    let lobby = lobby.body["id"].as_i64().unwrap();
    // Signed up before the sockets are held: while their re-checks come in bursts, Pushpin may
    // refuse plain requests too (502).
    let members: Vec<TestUser> = (0..ROOM_MEMBERS).map(|_| nodes[0].new_user()).collect();
    let held = Mutex::new(Vec::with_capacity(sockets));
    let retried = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for (opener_index, opener) in openers.iter().enumerate() {
            let (nodes, topology, held, retried) = (&nodes, &topology, &held, &retried);
            scope.spawn(move || {
                for socket_index in 0..sockets / OPENERS {
                    let node = &nodes[(socket_index * OPENERS + opener_index) % nodes.len()];
                    let socket = connect(node, topology, lobby, &opener.token, retried);
                    held.lock().unwrap().push(socket);
                }
            });
        }
    });
    let opened = held.lock().unwrap().len();
    let opening = started.elapsed();
    let after = topology.memory_kib();
    println!(
        "\n{opened} idle sockets opened in {:.1} s ({:.0}/s, {OPENERS} at a time; {} after a 502 at first)",
        opening.as_secs_f64(),
        opened as f64 / opening.as_secs_f64(),
        retried.load(Ordering::Relaxed)
    );
    println!("{:>26} | {:>10} | {:>10}", "process", "RSS before", "RSS held");
    for ((command, resident_before), (_, resident_after)) in before.iter().zip(&after) {
        println!("{command:>26} | {:>7} MiB | {:>7} MiB", resident_before / 1024, resident_after / 1024);
    }
    let total = |memory: &[(String, u64)]| memory.iter().map(|(_, kib)| kib).sum::<u64>() / 1024;
    println!("{:>26} | {:>7} MiB | {:>7} MiB", "all", total(&before), total(&after));

    std::thread::sleep(Duration::from_secs(hold_seconds).saturating_sub(started.elapsed() - opening));
    let held_seconds = (started.elapsed() - opening).as_secs_f64();
    let held = still_open(&nodes[0], &openers[0], lobby, held.into_inner().unwrap());
    println!("\nheld sockets after {held_seconds:.0} s (one message to their room, read on each): {}", held.summary());
    let run = fan_out(&nodes, &topology, &members, MESSAGES, SUSTAINED_SEND_INTERVAL);
    println!(
        "\nfan-out to {ROOM_MEMBERS} members (spread over the nodes) at 5 messages/s: p50 p99 max ms | delivered | first, last message's slowest ms | retried connects"
    );
    println!("{}", run.summary());
    println!("load average: {}", std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim());
    let held = still_open(&nodes[0], &openers[0], lobby, held.open);
    println!("\nof those, after the fan-out and its sockets' closing: {}", held.summary());
}

/// How long the held sockets' message may take to reach them all.
const LOBBY_DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// What became of held sockets.
struct Survivors {
    /// Those that received the message.
    open: Vec<ChatSocket>,
    /// Closed by Pushpin instead (it closes a socket whose request, e.g. a keep-alive re-check,
    /// it could not hand to the app; see `connect`).
    closed: usize,
    /// Neither, within the timeout.
    silent: usize,
}

impl Survivors {
    fn summary(&self) -> String {
        format!("{} open, {} closed by Pushpin, {} silent", self.open.len(), self.closed, self.silent)
    }
}

/// Sends one message to the held sockets' room and reads it on each.
fn still_open(node: &TestApp, sender: &TestUser, lobby: i64, held: Vec<ChatSocket>) -> Survivors {
    let marker = format!("still-open:{}", sendinchat_bench::now_micros());
    let sent = node.send_message(sender, &json!({"chat_id": lobby, "content": marker}));
    assert_eq!(sent.status, 201, "{}", sent.text);
    let deadline = Instant::now() + LOBBY_DELIVERY_TIMEOUT;
    let mut survivors = Survivors { open: Vec::with_capacity(held.len()), closed: 0, silent: 0 };
    for mut socket in held {
        match marked_or_closed(&mut socket, &marker, deadline) {
            Some(RawSocketEvent::Text(_)) => survivors.open.push(socket),
            Some(RawSocketEvent::Closed(_)) => survivors.closed += 1,
            None => survivors.silent += 1,
        }
    }
    survivors
}

/// A message already received is still read once the deadline has passed, within this.
const READ_AFTER_DEADLINE: Duration = Duration::from_millis(10);

/// The first event on `socket` that is not some other message: the one carrying `marker`, a
/// close, or none by `deadline`.
fn marked_or_closed(socket: &mut ChatSocket, marker: &str, deadline: Instant) -> Option<RawSocketEvent> {
    loop {
        match socket.next_raw_event(deadline.saturating_duration_since(Instant::now()).max(READ_AFTER_DEADLINE)) {
            Some(RawSocketEvent::Text(text)) if !text.contains(marker) => {}
            event => return event,
        }
    }
}
