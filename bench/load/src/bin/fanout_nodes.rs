//! Chat fan-out across two Pushpin nodes: two app instances sharing Postgres and Redis, each node
//! routing to both and receiving every publish (the topology of `tests/suite/topology.rs`). A
//! room of 100 members holds half its sockets on each node; prints the latency from
//! `POST /chat/send_message` (through node 0) to receipt, per node and overall.
//!
//! Run with `bench/fanout-nodes.sh`.
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use sendinchat_bench::{SEND_INTERVAL, now_micros, receive, summary};
use sendinchat_tests::app::{ChatSocket, Topology, TopologyOptions};
use serde_json::json;

const MEMBERS: usize = 100;
const MESSAGES: usize = 40;

fn main() {
    let topology = Topology::start(TopologyOptions::default()).expect("not against an external app");
    let nodes = [topology.node(0), topology.node(1)];
    let members: Vec<_> = (0..MEMBERS).map(|_| nodes[0].new_user()).collect();
    let ids: Vec<i64> = members[1..].iter().map(|member| member.id).collect();
    let room = nodes[0].create_room(&members[0], &json!({"name": "bench", "member_ids": ids}));
    assert_eq!(room.status, 201, "{}", room.text);
    let room = room.body["id"].as_i64().unwrap();

    let (samples, received) = mpsc::channel();
    let connected = Arc::new(Barrier::new(MEMBERS + 1));
    let readers: Vec<_> = members
        .iter()
        .enumerate()
        .map(|(index, member)| {
            let node = index % nodes.len();
            let mut socket = ChatSocket::connect(&nodes[node], room, &member.token).expect("connect");
            let (samples, connected) = (samples.clone(), connected.clone());
            std::thread::spawn(move || {
                connected.wait();
                receive(&mut socket, MESSAGES, Duration::from_secs(10), |_, latency| {
                    samples.send((node, latency)).unwrap();
                });
            })
        })
        .collect();
    drop(samples);
    connected.wait();
    // Pushpin applies subscriptions shortly after the handshake: let them settle.
    std::thread::sleep(Duration::from_secs(2));
    for index in 0..MESSAGES {
        let content = format!("bench:{index}:{}", now_micros());
        let sent = nodes[0].send_message(&members[0], &json!({"chat_id": room, "content": content}));
        assert_eq!(sent.status, 201, "{}", sent.text);
        std::thread::sleep(SEND_INTERVAL);
    }
    for reader in readers {
        reader.join().unwrap();
    }
    let samples: Vec<(usize, u128)> = received.into_iter().collect();
    println!("{MEMBERS} members, half on each of 2 Pushpin nodes; {MESSAGES} messages sent through node 0");
    println!("{:>8} | {:>9} {:>9} {:>9} | {:>10}", "node", "p50 ms", "p99 ms", "max ms", "delivered");
    for (label, node) in [("0", Some(0)), ("1", Some(1)), ("both", None)] {
        let latencies: Vec<u128> = samples
            .iter()
            .filter(|(delivered_on, _)| node.is_none_or(|node| node == *delivered_on))
            .map(|(_, latency)| *latency)
            .collect();
        let expected = MESSAGES * if node.is_some() { MEMBERS / 2 } else { MEMBERS };
        println!("{label:>8} | {}", summary(latencies, expected));
    }
    println!("load average: {}", std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim());
}
