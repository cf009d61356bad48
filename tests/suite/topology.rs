//! The production topology on one machine (issue 16): two app instances sharing one database and
//! one Redis, behind two Pushpin nodes that each route to both instances and each receive every
//! publish, with clients on both nodes; then the faults it meets, one at a time. Each test
//! starts its own processes, so against an external app (SENDINCHAT_BASE_URL) they are skipped
//! with a note.
use std::collections::HashSet;
use std::time::{Duration, Instant};

use sendinchat_tests::app::{ChatSocket, EventStream, RoomFollower, StreamItem, TestApp, TestUser, Topology};
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
            .unwrap_or_else(|| panic!("got {} of {count} messages; log:\n{}", seqs.len(), topology.log()));
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
    let Some(topology) = Topology::start(false) else { return };
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
}

#[test]
fn an_event_stream_resumes_after_last_event_id_and_follows_the_socket_rules() {
    let Some(topology) = Topology::start(false) else { return };
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
    let bad_cursor = EventStream::open_path(&node, &by_query.replace(&format!("after={last_seen}"), "after=x"), &[])
        .expect("answer");
    assert_eq!((bad_cursor.head.status, bad_cursor.head.code()), (400, "invalid_cursor"));
    let direct = TestApp::shared().get(&format!("/chat/rooms/{room}/events"), Some(&bob.token));
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
    assert_eq!(shown.iter().collect::<HashSet<_>>().len(), shown.len());
}

#[test]
fn with_redis_stopped_messages_are_stored_and_a_following_client_ends_with_all_exactly_once() {
    let Some(mut topology) = Topology::start(true) else { return };
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
    let Some(mut topology) = Topology::start(false) else { return };
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
        send(&first, &alice, room, &format!("after node 0 is back {index}"));
    }
    let expected: Vec<i64> = (1..=11).collect();
    assert_eq!(socket_seqs(&mut carol_socket, 11, &topology), expected, "node 1's client saw every message live");
    assert!(bob_follower.wait_for(11, DELIVERY_TIMEOUT), "node 0's client caught up; log:\n{}", topology.log());
    assert!(bob_follower.reconnects >= 1, "node 0's client had to reconnect");
    bob_follower.listen(QUIET_PERIOD);
    assert_follower_saw_everything(&bob_follower, &topology, room);
}
