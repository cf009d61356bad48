//! A client that follows the delivery protocol (README, "Delivery guarantee"), for the tests that
//! prove it: it shows every message of a room exactly once and in `seq` order, whatever the live
//! connection loses.
//!
//! - A live message with the next `seq` is shown; one with a `seq` already shown is dropped.
//! - A jump in `seq` means missed events: fetch `GET /chat/messages/{room}?after=<last id>` (every
//!   page) and show those first; the live message is among them.
//! - After (re)connecting, the same fetch: events published before the subscription was live
//!   were not delivered.
//! - Optionally the same fetch on a timer, when no message came for a while: a lost event that no
//!   other message follows is otherwise only found at the next reconnect.
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{ChatSocket, SocketEvent, TestApp, TestUser};

pub struct RoomFollower {
    /// The gateways it may connect through, tried in turn when one is down.
    nodes: Vec<TestApp>,
    next_node: usize,
    user: TestUser,
    room: i64,
    socket: Option<ChatSocket>,
    /// The messages shown, in order.
    pub shown: Vec<Value>,
    /// Live events for a message already shown, dropped.
    pub duplicates_dropped: usize,
    /// How many times a jump in `seq` sent it to the history.
    pub gaps_filled: usize,
    /// How many times it had to connect again.
    pub reconnects: usize,
    /// Fetch the history when no message came for this long (see [`RoomFollower::polling_every`]).
    quiet_period: Option<Duration>,
}

impl RoomFollower {
    /// Connects through the first of `nodes` and catches up with the room's history.
    pub fn join(nodes: Vec<TestApp>, room: i64, user: &TestUser) -> Self {
        let mut follower = Self {
            nodes,
            next_node: 0,
            user: user.clone(),
            room,
            socket: None,
            shown: Vec::new(),
            duplicates_dropped: 0,
            gaps_filled: 0,
            reconnects: 0,
            quiet_period: None,
        };
        follower.connect(Duration::from_secs(60));
        follower
    }

    /// Also fetches `?after=` whenever no message arrived for `quiet_period` while it reads.
    pub fn polling_every(mut self, quiet_period: Duration) -> Self {
        self.quiet_period = Some(quiet_period);
        self
    }

    fn last_seq(&self) -> i64 {
        self.shown.last().map_or(0, |message| message["seq"].as_i64().expect("seq"))
    }

    /// Reads live events until `count` messages are shown or `timeout` passes; reconnects when
    /// the socket closes. Returns whether `count` was reached.
    pub fn wait_for(&mut self, count: usize, timeout: Duration) -> bool {
        self.read_until(Instant::now() + timeout, |follower| follower.shown.len() >= count)
    }

    /// Reads live events for `duration` (to see whether anything more arrives).
    pub fn listen(&mut self, duration: Duration) {
        self.read_until(Instant::now() + duration, |_| false);
    }

    /// Reads live events until `done` or the deadline; whether `done` held.
    fn read_until(&mut self, deadline: Instant, done: impl Fn(&Self) -> bool) -> bool {
        let mut quiet_since = Instant::now();
        while !done(self) {
            let Some(remaining) = deadline.checked_duration_since(Instant::now()) else { return false };
            let Some(socket) = self.socket.as_mut() else {
                self.reconnect(remaining);
                continue;
            };
            match socket.next_event(remaining.min(Duration::from_millis(500))) {
                Some(SocketEvent::Text(event)) if event["type"] == "message" => {
                    self.on_message(&event["message"]);
                    quiet_since = Instant::now();
                }
                Some(SocketEvent::Text(_)) | None => {}
                Some(SocketEvent::Closed(_)) => self.reconnect(remaining),
            }
            if self.quiet_period.is_some_and(|period| quiet_since.elapsed() >= period) {
                self.catch_up();
                quiet_since = Instant::now();
            }
        }
        true
    }

    fn on_message(&mut self, message: &Value) {
        let seq = message["seq"].as_i64().expect("messages have a seq");
        if seq <= self.last_seq() {
            self.duplicates_dropped += 1;
        } else if seq == self.last_seq() + 1 {
            self.shown.push(message.clone());
        } else {
            self.gaps_filled += 1;
            self.catch_up();
        }
    }

    /// Every message after the last one shown, from the history, page by page.
    fn catch_up(&mut self) {
        let app = &self.nodes[(self.next_node + self.nodes.len() - 1) % self.nodes.len()];
        loop {
            let after = self.shown.last().map(|message| message["id"].as_i64().expect("id"));
            let query = after.map_or("limit=100".to_owned(), |after| format!("after={after}&limit=100"));
            let page = app.messages(&self.user, self.room, &query);
            assert_eq!(page.status, 200, "history: {}", page.text);
            for message in page.body["items"].as_array().expect("items") {
                assert_eq!(message["seq"].as_i64(), Some(self.last_seq() + 1), "the history has no gaps");
                self.shown.push(message.clone());
            }
            if page.body["has_more"] != true {
                return;
            }
        }
    }

    fn reconnect(&mut self, timeout: Duration) {
        self.socket = None;
        self.reconnects += 1;
        self.connect(timeout);
    }

    /// Connects through the next node that answers, then fills what was missed meanwhile.
    fn connect(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let app = &self.nodes[self.next_node % self.nodes.len()];
            self.next_node += 1;
            if let Ok(socket) = ChatSocket::join(app, self.room, &self.user) {
                self.socket = Some(socket);
                self.catch_up();
                return;
            }
            assert!(Instant::now() < deadline, "could not connect to any node within {timeout:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
