//! The production topology on one machine (issue 16): two app instances sharing one database and
//! one Redis, behind two Pushpin nodes that each route to both instances (each its own first)
//! and each receive every publish, with clients on both nodes; then the faults it meets, one at
//! a time. Each test starts its own processes, so against an external app (SENDINCHAT_BASE_URL)
//! they are skipped with a note.
use std::time::{Duration, Instant};

use sendinchat_tests::app::{
    ChatSocket, EventStream, RoomFollower, StreamItem, TestApp, TestUser, Topology, TopologyOptions,
};
use sendinchat_tests::wait;
use serde_json::{Value, json};

/// Generous: two hosts, two Pushpins and the test share a loaded 2-core machine.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);
/// After everything expected arrived, how long nothing more may arrive (a duplicate would).
const QUIET_PERIOD: Duration = Duration::from_secs(2);

fn room_with(app: &TestApp, owner: &TestUser, members: &[&TestUser]) -> i64 {
    let ids: Vec<i64> = members.iter().map(|member| member.id).collect();
    let created = app.create_room(owner, &json!({"name": "Topology", "member_ids": ids}));
    assert_eq!(created.status, 201, "{}", created.text);
    created.body["id"].as_i64().unwrap()
}

fn send(app: &TestApp, user: &TestUser, room: i64, content: &str) -> Value {
    let sent = app.send_message(user, &json!({"chat_id": room, "content": content}));
    assert_eq!(sent.status, 201, "{}", sent.text);
    sent.body.clone()
}

/// The seqs of the next `count` message events on `socket`, then of any that follow within the
/// quiet period.
fn socket_seqs(socket: &mut ChatSocket, count: usize, topology: &Topology) -> Vec<i64> {
    let mut seqs = Vec::new();
    while seqs.len() < count {
        let event = socket
            .next_of_type("message", DELIVERY_TIMEOUT)
            .unwrap_or_else(|| panic!("got {} of {count} messages ({seqs:?}); log:\n{}", seqs.len(), topology.log()));
        seqs.push(event["message"]["seq"].as_i64().unwrap());
    }
    while let Some(event) = socket.next_of_type("message", QUIET_PERIOD) {
        seqs.push(event["message"]["seq"].as_i64().unwrap());
    }
    seqs
}

/// The same from an event stream, with each message event's SSE id.
fn stream_seqs(stream: &EventStream, count: usize, topology: &Topology) -> Vec<(i64, Option<i64>)> {
    let mut seqs = Vec::new();
    let mut deadline = Instant::now() + DELIVERY_TIMEOUT;
    loop {
        let timeout = deadline.saturating_duration_since(Instant::now());
        match stream.next_item(timeout) {
            Some(StreamItem::Event { id, data }) if data["type"] == "message" => {
                seqs.push((data["message"]["seq"].as_i64().unwrap(), id));
                if seqs.len() == count {
                    deadline = Instant::now() + QUIET_PERIOD;
                }
            }
            Some(StreamItem::Event { .. }) => {}
            Some(StreamItem::Ended) => panic!("the stream ended; log:\n{}", topology.log()),
            None if seqs.len() >= count => return seqs,
            None => panic!("got {} of {count} messages on the stream; log:\n{}", seqs.len(), topology.log()),
        }
    }
}

#[test]
fn clients_on_different_pushpin_nodes_each_get_every_message_once_in_order() {
    let Some(topology) = Topology::start(TopologyOptions::default()) else { return };
    let (first, second) = (topology.node(0), topology.node(1));
    let (alice, bob, carol) = (first.new_user(), first.new_user(), first.new_user());
    let room = room_with(&first, &alice, &[&bob, &carol]);
    let mut alice_socket = ChatSocket::join(&first, room, &alice).expect("alice joins on node 0");
    let mut bob_socket = ChatSocket::join(&second, room, &bob).expect("bob joins on node 1");
    let carol_stream = EventStream::open(&second, room, &carol, None).expect("carol's stream on node 1");
    assert_eq!(carol_stream.head.status, 200);
    carol_stream.await_subscription(&mut bob_socket, &bob).expect("carol's stream is live");

    // Sent through both nodes, so both instances store and publish.
    const COUNT: usize = 30;
    for index in 0..COUNT {
        let (node, sender) = if index % 2 == 0 { (&first, &alice) } else { (&second, &bob) };
        send(node, sender, room, &format!("message {index}"));
    }
    let expected: Vec<i64> = (1..=COUNT as i64).collect();
    assert_eq!(socket_seqs(&mut alice_socket, COUNT, &topology), expected, "node 0, WebSocket");
    assert_eq!(socket_seqs(&mut bob_socket, COUNT, &topology), expected, "node 1, WebSocket");
    let streamed = stream_seqs(&carol_stream, COUNT, &topology);
    assert_eq!(streamed.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), expected, "node 1, event stream");
    assert!(streamed.iter().all(|(_, id)| id.is_some()), "every message event carries its id");
    // Pushpin sends a request to the first of its targets that accepts it; each node lists its
    // own instance first (deploy/pushpin/routes.in), so both instances took sends.
    for instance in 0..2 {
        let served = wait::until(Duration::from_secs(5), || {
            topology.instance_log(instance).contains("\"route\":\"/chat/send_message\"").then_some(())
        });
        assert!(served.is_some(), "instance {instance} served no send; log:\n{}", topology.instance_log(instance));
    }
}

#[test]
fn an_event_stream_resumes_after_last_event_id_and_follows_the_socket_rules() {
    let Some(topology) = Topology::start(TopologyOptions::default()) else { return };
    let node = topology.node(0);
    let (alice, bob, stranger) = (node.new_user(), node.new_user(), node.new_user());
    let room = room_with(&node, &alice, &[&bob]);
    let sent: Vec<Value> = (0..5).map(|index| send(&node, &alice, room, &format!("missed {index}"))).collect();

    // Reconnecting after the second message: the three after it come first, with their ids.
    let last_seen = sent[1]["id"].as_i64().unwrap();
    let stream = EventStream::open(&node, room, &bob, Some(last_seen)).expect("stream");
    assert_eq!(stream.head.status, 200);
    assert_eq!(stream.head.header("content-type"), Some("text/event-stream"));
    let resumed = stream_seqs(&stream, 3, &topology);
    let expected: Vec<(i64, Option<i64>)> =
        sent[2..].iter().map(|message| (message["seq"].as_i64().unwrap(), message["id"].as_i64())).collect();
    assert_eq!(resumed, expected);

    // Same authorisation as the socket: a token, membership, a real cursor, and the gateway.
    let no_token = EventStream::open_path(&node, &format!("/chat/rooms/{room}/events"), &[]).expect("answer");
    assert_eq!(no_token.head.status, 401);
    let outsider = EventStream::open(&node, room, &stranger, None).expect("answer");
    assert_eq!((outsider.head.status, outsider.head.code()), (404, "room_not_found"));
    let by_query = format!("/chat/rooms/{room}/events?token={}&after={last_seen}", bob.token);
    let query_token = EventStream::open_path(&node, &by_query, &[]).expect("answer");
    assert_eq!(query_token.head.status, 200, "EventSource passes the token in the query");
    assert_eq!(stream_seqs(&query_token, 3, &topology), expected, "and resumes with ?after=");
    let bad_cursor = EventStream::open_path(&node, &by_query.replace(&format!("after={last_seen}"), "after=x"), &[])
        .expect("answer");
    assert_eq!((bad_cursor.head.status, bad_cursor.head.code()), (400, "invalid_cursor"));
    let direct = topology.instance(0).get(&format!("/chat/rooms/{room}/events"), Some(&bob.token));
    assert_eq!((direct.status, direct.code()), (426, "use_realtime_gateway"), "only the gateway can hold a stream");

    // Leaving the room ends the member's stream.
    let left = node.leave_room(&bob, room);
    assert_eq!(left.status, 204, "{}", left.text);
    let ended = (0..20).find_map(|_| match stream.next_item(DELIVERY_TIMEOUT) {
        Some(StreamItem::Ended) => Some(true),
        Some(StreamItem::Event { .. }) => None,
        None => Some(false),
    });
    assert_eq!(ended, Some(true), "the stream ended after leaving; log:\n{}", topology.log());
}

/// A member's history as the follower showed it must equal the database's, exactly once each.
fn assert_follower_saw_everything(follower: &RoomFollower, topology: &Topology, room: i64) {
    let stored: Vec<i64> = topology
        .database()
        .query("SELECT id FROM messages WHERE room_id = $1 ORDER BY seq", &[&room])
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let shown: Vec<i64> = follower.shown.iter().map(|message| message["id"].as_i64().unwrap()).collect();
    assert_eq!(shown, stored, "the client shows every stored message once, in seq order");
}

#[test]
fn with_redis_stopped_messages_are_stored_and_a_following_client_ends_with_all_exactly_once() {
    let Some(mut topology) = Topology::start(TopologyOptions { private_redis: true, ..TopologyOptions::default() })
    else {
        return;
    };
    let (first, second) = (topology.node(0), topology.node(1));
    let (alice, bob) = (first.new_user(), first.new_user());
    let room = room_with(&first, &alice, &[&bob]);
    let mut follower = RoomFollower::join(vec![second.view(), first.view()], room, &bob);
    send(&first, &alice, room, "before");
    assert!(follower.wait_for(1, DELIVERY_TIMEOUT), "live before the fault; log:\n{}", topology.log());

    topology.redis().stop().expect("stop redis");
    for index in 0..10 {
        let node = if index % 2 == 0 { &first } else { &second };
        send(node, &alice, room, &format!("while redis is down {index}"));
    }
    topology.redis().restart().expect("restart redis");

    // Live delivery resumes once both instances' triggers have reconnected: keep sending until a
    // message arrives live on a fresh socket.
    let mut watcher = ChatSocket::join(&first, room, &alice).expect("watcher joins");
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    let mut resumed = false;
    while !resumed && Instant::now() < deadline {
        send(&second, &alice, room, "after redis is back");
        resumed = watcher.next_of_type("message", Duration::from_secs(1)).is_some();
    }
    assert!(resumed, "live delivery did not resume; log:\n{}", topology.log());
    let stored: i64 =
        topology.database().query_one("SELECT count(*) FROM messages WHERE room_id = $1", &[&room]).unwrap().get(0);
    assert!(follower.wait_for(stored as usize, DELIVERY_TIMEOUT), "the follower caught up; log:\n{}", topology.log());
    assert!(follower.gaps_filled >= 1, "the messages sent while Redis was down came from the history");
    follower.listen(QUIET_PERIOD);
    assert_follower_saw_everything(&follower, &topology, room);
}

#[test]
fn a_restarted_pushpin_node_loses_nothing_and_the_other_node_is_not_interrupted() {
    let Some(mut topology) = Topology::start(TopologyOptions::default()) else { return };
    let (first, second) = (topology.node(0), topology.node(1));
    let (alice, bob, carol) = (first.new_user(), first.new_user(), first.new_user());
    let room = room_with(&first, &alice, &[&bob, &carol]);
    // Bob's client prefers node 0, which will restart; Carol stays on node 1 throughout.
    let mut bob_follower = RoomFollower::join(vec![first.view(), second.view()], room, &bob);
    let mut carol_socket = ChatSocket::join(&second, room, &carol).expect("carol joins on node 1");

    send(&second, &alice, room, "before the restart");
    topology.stop_pushpin(0);
    for index in 0..5 {
        send(&second, &alice, room, &format!("while node 0 is down {index}"));
    }
    topology.start_pushpin(0);
    for index in 0..5 {
        // A connection the client kept alive to node 0 died with it, and a request sent on it
        // fails ("Peer disconnected"): the client retries, its client_msg_id keeping the message
        // single.
        let content = format!("after node 0 is back {index}");
        let body = json!({"chat_id": room, "content": content, "client_msg_id": format!("after-{index}")});
        post_until_answered(&first, &alice, "/chat/send_message", &body, &format!("after-{index}"));
    }
    let expected: Vec<i64> = (1..=11).collect();
    assert_eq!(socket_seqs(&mut carol_socket, 11, &topology), expected, "node 1's client saw every message live");
    assert!(bob_follower.wait_for(11, DELIVERY_TIMEOUT), "node 0's client caught up; log:\n{}", topology.log());
    assert!(bob_follower.reconnects >= 1, "node 0's client had to reconnect");
    bob_follower.listen(QUIET_PERIOD);
    assert_follower_saw_everything(&bob_follower, &topology, room);
}

/// How a client retries a request the platform failed: same request, same `Idempotency-Key`,
/// while the answer is retryable (no answer, the gateway's 502/503, the app's 503).
fn post_until_answered(node: &TestApp, user: &TestUser, path: &str, body: &Value, key: &str) -> (Value, usize) {
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    let mut retries = 0;
    loop {
        match node.try_post(path, Some(&user.token), body, &[("idempotency-key", key)]) {
            Ok(answer) if answer.status == 503 => {
                assert!(answer.header("retry-after").is_some(), "a 503 says when to retry: {}", answer.text);
            }
            Ok(answer) => {
                assert_eq!(answer.status, 201, "{path} with key {key}: {}", answer.text);
                return (answer.body, retries);
            }
            Err(_) => {}
        }
        retries += 1;
        assert!(Instant::now() < deadline, "{path} with key {key} never completed");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn killing_an_app_instance_mid_storm_loses_and_duplicates_no_transfer() {
    let Some(mut topology) = Topology::start(TopologyOptions::default()) else { return };
    let nodes = [topology.node(0), topology.node(1)];
    let users: Vec<TestUser> = (0..4).map(|_| nodes[0].new_user()).collect();
    for user in &users {
        nodes[0].fund(user, "100.00");
    }
    const PER_SENDER: usize = 15;
    let completed = std::sync::atomic::AtomicUsize::new(0);
    let run = sendinchat_tests::app::unique_suffix();
    let outcomes: Vec<(String, i64, usize)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..users.len())
            .map(|sender| {
                let (nodes, users, completed, run) = (&nodes, &users, &completed, &run);
                scope.spawn(move || {
                    let receiver = &users[(sender + 1) % users.len()];
                    (0..PER_SENDER)
                        .map(|index| {
                            let key = format!("storm-{run}-{sender}-{index}");
                            let body = json!({"receiver_id": receiver.id, "amount": "1.00"});
                            let node = &nodes[index % nodes.len()];
                            let (transfer, retries) =
                                post_until_answered(node, &users[sender], "/fintech/transfer", &body, &key);
                            completed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            (key, transfer["id"].as_i64().unwrap(), retries)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let quarter = users.len() * PER_SENDER / 4;
        let started = wait::until(DELIVERY_TIMEOUT, || {
            (completed.load(std::sync::atomic::Ordering::SeqCst) >= quarter).then_some(())
        });
        assert!(started.is_some(), "the storm did not get going");
        topology.kill_instance(0);
        workers.into_iter().flat_map(|worker| worker.join().expect("worker")).collect()
    });

    // Every intended transfer happened once: one row per key, and no other.
    let mut database = topology.database();
    let stored: i64 = database.query_one("SELECT count(*) FROM transfers WHERE kind = 'payment'", &[]).unwrap().get(0);
    assert_eq!(stored as usize, users.len() * PER_SENDER, "transfers stored");
    for (key, id, _) in &outcomes {
        let row = database.query_one("SELECT id FROM transfers WHERE idempotency_key = $1", &[key]).unwrap();
        assert_eq!(row.get::<_, i64>(0), *id, "the answer names the one stored transfer for {key}");
    }
    // Each sent and received the same amount.
    for user in &users {
        assert_eq!(nodes[1].balance(user), "100.00", "balance of {}", user.username);
    }
    sendinchat_tests::ledger::assert_ledger_invariants(&mut database);
    eprintln!(
        "storm: {} transfers, {} retries after the kill",
        outcomes.len(),
        outcomes.iter().map(|(_, _, retries)| retries).sum::<usize>()
    );

    // Both nodes keep routing to the live instance, for HTTP and for sockets.
    let room = room_with(&nodes[0], &users[0], &[&users[1]]);
    let mut sockets: Vec<ChatSocket> =
        nodes.iter().map(|node| ChatSocket::join(node, room, &users[1]).expect("a socket through each node")).collect();
    send(&nodes[1], &users[0], room, "after the kill");
    for socket in &mut sockets {
        let event = socket.next_of_type("message", DELIVERY_TIMEOUT).expect("delivered after the kill");
        assert_eq!(event["message"]["content"], "after the kill");
    }
}

#[test]
fn with_postgres_unreachable_requests_get_503_with_retry_after_then_everything_recovers() {
    let Some(topology) = Topology::start(TopologyOptions { database_proxy: true, ..TopologyOptions::default() }) else {
        return;
    };
    let node = topology.node(0);
    let (alice, bob) = (node.new_user(), node.new_user());
    node.fund(&alice, "10.00");
    let room = room_with(&node, &alice, &[&bob]);
    send(&node, &alice, room, "before the outage");

    topology.database_proxy().cut();
    let transfer = json!({"receiver_id": bob.id, "amount": "2.50"});
    for attempt in 0..3 {
        let node = topology.node(attempt % 2);
        let chat = node.send_message(&alice, &json!({"chat_id": room, "content": "during the outage"}));
        let money = node.transfer_with_key(&alice, &transfer, "outage-transfer");
        let me = node.me(&bob);
        let login = node.login(&bob.username, &bob.password);
        for answer in [&chat, &money, &me, &login] {
            assert_eq!(answer.status, 503, "unreachable database: {}", answer.text);
            assert_eq!(answer.code(), "unavailable");
            assert!(answer.header("retry-after").is_some(), "says when to retry");
        }
    }
    let ready = topology.node(0).readiness();
    assert_eq!((ready.status, ready.code()), (503, "unavailable"), "{}", ready.text);
    assert_eq!(ready.body["dependencies"]["postgres"]["state"], "unavailable", "{}", ready.text);
    assert_eq!(ready.body["dependencies"]["redis"]["state"], "ok", "{}", ready.text);

    topology.database_proxy().restore();
    // The same payment retried with its key, as a client would, completes once.
    let (paid, _) = post_until_answered(&node, &alice, "/fintech/transfer", &transfer, "outage-transfer");
    let (again, _) = post_until_answered(&node, &alice, "/fintech/transfer", &transfer, "outage-transfer");
    assert_eq!(paid["id"], again["id"], "a retry after success replays it");
    assert_eq!(node.balance(&alice), "7.50");
    send(&node, &alice, room, "after the outage");
    let history = node.messages(&bob, room, "");
    let contents: Vec<&str> =
        history.body["items"].as_array().unwrap().iter().map(|item| item["content"].as_str().unwrap()).collect();
    assert_eq!(contents, ["before the outage", "after the outage"], "nothing half-written during the outage");
    sendinchat_tests::ledger::assert_ledger_invariants(&mut topology.database());
}

/// A small deterministic generator (xorshift64*), so a failing run can be replayed from its seed.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % bound
    }
}

/// The faults of the tests above, applied at random points of a run.
#[derive(Debug, Clone, Copy)]
enum Fault {
    RedisStopped,
    PushpinRestarted(usize),
    PostgresUnreachable,
    InstanceKilled,
}

#[test]
fn under_random_faults_every_members_history_equals_the_database() {
    let options = TopologyOptions { private_redis: true, database_proxy: true, ..TopologyOptions::default() };
    let Some(mut topology) = Topology::start(options) else { return };
    let seed = std::env::var("SENDINCHAT_PROPERTY_SEED").ok().and_then(|seed| seed.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    eprintln!("property run seed {seed} (replay with SENDINCHAT_PROPERTY_SEED={seed})");
    let mut random = Random(seed);
    let nodes = [topology.node(0), topology.node(1)];
    let users: Vec<TestUser> = (0..3).map(|_| nodes[0].new_user()).collect();
    const ROOMS: usize = 3;
    const MESSAGES: usize = 60;
    let rooms: Vec<i64> = (0..ROOMS).map(|_| room_with(&nodes[0], &users[0], &[&users[1], &users[2]])).collect();
    // Every member follows every room, starting on alternating nodes.
    let mut followers: Vec<(i64, RoomFollower)> = Vec::new();
    for (index, user) in users.iter().enumerate() {
        for &room in &rooms {
            let preferred = (index + room as usize) % 2;
            let order = vec![nodes[preferred].view(), nodes[1 - preferred].view()];
            // Polling: the run may end with a room's last messages sent while Redis was down,
            // and no later message to reveal the gap.
            followers.push((room, RoomFollower::join(order, room, user).polling_every(QUIET_PERIOD)));
        }
    }

    let mut killed = false;
    let mut faults = Vec::new();
    let mut active = None;
    for step in 0..MESSAGES {
        if step % 10 == 5 {
            let fault = match random.below(4) {
                0 => Fault::RedisStopped,
                2 => Fault::PostgresUnreachable,
                3 if !killed => Fault::InstanceKilled,
                _ => Fault::PushpinRestarted(random.below(2)),
            };
            match fault {
                Fault::RedisStopped => topology.redis().stop().expect("stop redis"),
                Fault::PushpinRestarted(node) => topology.stop_pushpin(node),
                Fault::PostgresUnreachable => topology.database_proxy().cut(),
                Fault::InstanceKilled => {
                    topology.kill_instance(random.below(2));
                    killed = true;
                }
            }
            faults.push(fault);
            active = Some(fault);
        }
        let room = rooms[random.below(ROOMS)];
        let sender = &users[random.below(users.len())];
        // Through a node that is up; a retry after a failure reuses the client_msg_id.
        let up: Vec<usize> = (0..2).filter(|node| topology.is_pushpin_up(*node)).collect();
        let node = &nodes[up[random.below(up.len())]];
        let body = json!({"chat_id": room, "content": format!("step {step}"), "client_msg_id": format!("step-{step}")});
        if matches!(active, Some(Fault::PostgresUnreachable)) {
            active = None;
            let refused = node.try_post("/chat/send_message", Some(&sender.token), &body, &[]).expect("an answer");
            assert_eq!(refused.status, 503, "seed {seed}: {}", refused.text);
            topology.database_proxy().restore();
        }
        post_until_answered(node, sender, "/chat/send_message", &body, &format!("step-{step}"));
        if step % 10 == 8 {
            match active.take() {
                Some(Fault::RedisStopped) => topology.redis().restart().expect("restart redis"),
                Some(Fault::PushpinRestarted(node)) => topology.start_pushpin(node),
                _ => {}
            }
        }
    }
    eprintln!("faults: {faults:?}");

    let mut database = topology.database();
    for (room, follower) in &mut followers {
        let stored: i64 =
            database.query_one("SELECT count(*) FROM messages WHERE room_id = $1", &[&*room]).unwrap().get(0);
        assert!(
            follower.wait_for(stored as usize, DELIVERY_TIMEOUT),
            "seed {seed}: a member of room {room} caught up; log:\n{}",
            topology.log()
        );
    }
    let total: i64 = database.query_one("SELECT count(*) FROM messages", &[]).unwrap().get(0);
    assert_eq!(total as usize, MESSAGES, "seed {seed}: every message stored once");
    for (room, follower) in &mut followers {
        follower.listen(Duration::from_millis(200));
        assert_follower_saw_everything(follower, &topology, *room);
    }
}
