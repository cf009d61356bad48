//! A Server-Sent Events client: `GET /chat/rooms/{id}/events` through Pushpin, as `EventSource`
//! would open it. A thread reads the stream and hands over each event as it is parsed.
use std::io::{BufRead, BufReader};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{ChatSocket, Response, TestApp, TestUser};

/// How long a stream may stay open in a test.
const STREAM_LIFETIME: Duration = Duration::from_secs(600);
/// How long a just-started Pushpin may take to link its proxy to its handler.
const PUSHPIN_HANDLER_START: Duration = Duration::from_secs(10);

/// What the stream delivered: an event (its `id:` and its JSON `data:`), or its end.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamItem {
    Event { id: Option<i64>, data: Value },
    Ended,
}

/// An event as read off the wire, checked against the contract on the test's thread.
enum RawItem {
    Event { id: Option<i64>, data: String },
    Ended,
}

pub struct EventStream {
    /// The answer's status and headers; its body is the events.
    pub head: Response,
    items: Receiver<RawItem>,
}

impl EventStream {
    /// Opens the room's stream with `Authorization: Bearer`, resuming after `last_event_id`.
    pub fn open(app: &TestApp, room: i64, user: &TestUser, last_event_id: Option<i64>) -> anyhow::Result<Self> {
        let mut headers =
            vec![("authorization", format!("Bearer {}", user.token)), ("accept", "text/event-stream".into())];
        if let Some(id) = last_event_id {
            headers.push(("last-event-id", id.to_string()));
        }
        Self::open_path(app, &format!("/chat/rooms/{room}/events"), &headers)
    }

    /// Opens `path` (e.g. with `?token=`) with `headers` on the gateway's HTTP port.
    pub fn open_path(app: &TestApp, path: &str, headers: &[(&str, String)]) -> anyhow::Result<Self> {
        let agent = crate::processes::http_client(STREAM_LIFETIME);
        let deadline = Instant::now() + PUSHPIN_HANDLER_START;
        let response = loop {
            let mut request = http::Request::builder().method("GET").uri(app.gateway_http_url(path));
            for (name, value) in headers {
                request = request.header(*name, value);
            }
            let mut response = agent.run(request.body(())?)?;
            // A just-started Pushpin proxies plain requests before its proxy has reached its
            // handler, which holds streams; until then it answers a hold with this 500 of its own.
            if response.status() == 500 && Instant::now() < deadline {
                let text = response.body_mut().read_to_string().unwrap_or_default();
                if text.trim() == "Accept service unavailable." {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                anyhow::bail!("GET {path} -> 500: {text}");
            }
            break response;
        };
        let (parts, body) = response.into_parts();
        let status = parts.status.as_u16();
        let (sender, items) = mpsc::channel();
        let mut head = Response { status, headers: parts.headers, body: Value::Null, text: String::new() };
        if status != 200 {
            let mut body = body;
            head.text = body.read_to_string().unwrap_or_default();
            head.body = serde_json::from_str(&head.text).unwrap_or(Value::Null);
        } else {
            let reader = BufReader::new(body.into_reader());
            std::thread::spawn(move || parse_events(reader, &sender));
        }
        crate::contract::check_response("GET", path, &head);
        Ok(Self { head, items })
    }

    /// The next event or the end within `timeout`; `None` if nothing came.
    pub fn next_item(&self, timeout: Duration) -> Option<StreamItem> {
        match self.items.recv_timeout(timeout) {
            Ok(RawItem::Event { id, data }) => {
                Some(StreamItem::Event { id, data: crate::contract::check_server_event(&data) })
            }
            Ok(RawItem::Ended) => Some(StreamItem::Ended),
            Err(RecvTimeoutError::Disconnected) => Some(StreamItem::Ended),
            Err(RecvTimeoutError::Timeout) => None,
        }
    }

    /// Waits until the stream's subscription is live: `prober` (a socket in the same room) sends
    /// typing notices until one arrives here. Like a socket's, a stream's subscription becomes
    /// live shortly after its answer, and tests need exact delivery counts.
    pub fn await_subscription(&self, prober: &mut ChatSocket, prober_user: &TestUser) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            prober.send(&json!({"type": "typing"}));
            while let Some(item) = self.next_item(Duration::from_millis(300)) {
                match item {
                    StreamItem::Event { data, .. } if data["type"] == "typing" && data["user_id"] == prober_user.id => {
                        return Ok(());
                    }
                    StreamItem::Event { .. } => continue,
                    StreamItem::Ended => anyhow::bail!("the stream ended while waiting for its subscription"),
                }
            }
        }
        anyhow::bail!("the stream's subscription did not become live")
    }
}

/// Reads SSE lines: `id:` and `data:` fields, a blank line ends an event, `:` lines are comments.
fn parse_events(reader: impl BufRead, sender: &mpsc::Sender<RawItem>) {
    let (mut id, mut data) = (None, String::new());
    for line in reader.lines() {
        let Ok(line) = line else { break };
        if line.is_empty() {
            if !data.is_empty()
                && sender.send(RawItem::Event { id: id.take(), data: std::mem::take(&mut data) }).is_err()
            {
                return;
            }
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push_str(value.trim_start());
        } else if let Some(value) = line.strip_prefix("id:") {
            id = value.trim().parse().ok();
        }
    }
    let _ = sender.send(RawItem::Ended);
}
