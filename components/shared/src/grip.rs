//! Realtime delivery through a GRIP proxy (Pushpin): the event envelope that travels over Redis
//! from `chat` to `chat-fanout`, and the publish call both of them can make.
//!
//! Each Pushpin node delivers a publish only to the clients connected to it, so every event is
//! published to every node ([`PublishEndpoints`]), each independently: a node that is down or slow
//! costs its own clients their live events (they catch up with `?after=`), never the others'.
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::json;
use spin_sdk::http::FullBody;

use crate::ids::{RoomId, SessionId};

/// Close code for a socket whose token or session is no longer valid.
pub const CLOSE_UNAUTHORIZED: u16 = 4401;

/// One event for the WebSocket clients subscribed to `channel`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub channel: String,
    /// Pushpin's item id: an event published twice with the same id is delivered once.
    pub id: Option<String>,
    /// For message events, the message id: the SSE `id:` an `EventSource` sends back as
    /// `Last-Event-ID` when it reconnects, so it resumes right after this message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<i64>,
    /// What the clients receive: a JSON text frame, or a close with this code.
    pub body: EventBody,
    /// The request that caused the event, so `chat-fanout` can log it: one message can be followed
    /// from `send_message` to its publish. Set when the event is sent towards Pushpin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventBody {
    Text { content: String },
    Close { code: u16, reason: String },
}

impl Event {
    pub fn new(channel: String, id: Option<String>, body: EventBody) -> Self {
        Self { channel, id, stream_id: None, body, request_id: None }
    }

    /// The body of a publish request to Pushpin's `/publish/` endpoint: one item in two formats,
    /// for WebSockets (`ws-message`) and for Server-Sent Events streams (`http-stream`).
    pub fn publish_body(&self) -> String {
        let (ws_message, http_stream) = match &self.body {
            EventBody::Text { content } => {
                (json!({ "content": content }), json!({ "content": sse_event(self.stream_id, content) }))
            }
            EventBody::Close { code, reason } => {
                (json!({ "action": "close", "code": code, "reason": reason }), json!({ "action": "close" }))
            }
        };
        let formats = json!({ "ws-message": ws_message, "http-stream": http_stream });
        let mut item = json!({ "channel": self.channel, "formats": formats });
        if let Some(id) = &self.id {
            item["id"] = json!(id);
        }
        json!({ "items": [item] }).to_string()
    }
}

/// Every socket and event stream of a room listens here.
pub fn room_channel(room: RoomId) -> String {
    format!("room:{room}")
}

/// `{"type":"message","message":{...}}` for a message stored in `room` (its JSON as rendered by
/// SQL), on the room's channel; its id makes repeats (one per app replica) deliver once.
pub fn message_event(room: RoomId, message_json: &str) -> Event {
    let message: serde_json::Value = serde_json::from_str(message_json).unwrap_or(serde_json::Value::Null);
    let content = json!({"type": "message", "message": message}).to_string();
    Event {
        stream_id: message["id"].as_i64(),
        ..Event::new(
            room_channel(room),
            message["id"].as_i64().map(|id| format!("message-{id}")),
            EventBody::Text { content },
        )
    }
}

/// Every socket and event stream opened with one session's tokens listens here, so ending the
/// session (logout, refresh-token reuse) closes them at once: a quiet socket or stream would
/// otherwise stay open until its next re-check (a keep-alive request, a stream's next link).
pub fn session_channel(session: SessionId) -> String {
    format!("session:{session}")
}

/// Closes every socket and event stream of `session`, which has just ended.
pub fn session_ended_event(session: SessionId) -> Event {
    Event::new(
        session_channel(session),
        None,
        EventBody::Close { code: CLOSE_UNAUTHORIZED, reason: "the session has ended".into() },
    )
}

/// One Server-Sent Event carrying `content` (one line of JSON), with an `id:` when it has one.
pub fn sse_event(stream_id: Option<i64>, content: &str) -> String {
    match stream_id {
        Some(id) => format!("id: {id}\ndata: {content}\n\n"),
        None => format!("data: {content}\n\n"),
    }
}

/// The publish endpoint of every Pushpin node (`grip_publish_urls`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishEndpoints(Vec<String>);

impl PublishEndpoints {
    /// Parses comma-separated base URLs of the nodes' publish ports
    /// (`http://pushpin-0:5561,http://pushpin-1:5561`).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let endpoints: Vec<String> = raw
            .split(',')
            .map(str::trim)
            .filter(|origin| !origin.is_empty())
            .map(|origin| format!("{}/publish/", origin.trim_end_matches('/')))
            .collect();
        if endpoints.is_empty() {
            return Err("grip_publish_urls names no Pushpin publish endpoint".into());
        }
        if let Some(bad) = endpoints.iter().find(|url| !url.starts_with("http://") && !url.starts_with("https://")) {
            return Err(format!("grip_publish_urls entry {bad:?} is not an http(s) URL"));
        }
        Ok(Self(endpoints))
    }

    pub fn urls(&self) -> &[String] {
        &self.0
    }

    /// Publishes `event` to every node at once; reports every node that failed. A failure on one
    /// node neither stops nor delays the others.
    pub async fn publish(&self, event: &Event) -> Result<(), String> {
        let outcomes = futures::future::join_all(self.0.iter().map(|url| publish(url, event))).await;
        let failures: Vec<String> = outcomes.into_iter().filter_map(Result::err).collect();
        if failures.is_empty() { Ok(()) } else { Err(failures.join("; ")) }
    }
}

/// Publishes one event to the GRIP publish endpoint at `publish_url`.
async fn publish(publish_url: &str, event: &Event) -> Result<(), String> {
    let body = event.publish_body();
    // Pushpin's publish endpoint refuses chunked bodies (411): state the length.
    let request = http::Request::post(publish_url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::CONTENT_LENGTH, body.len())
        .body(FullBody::new(Bytes::from(body)))
        .map_err(|error| format!("building the publish request: {error}"))?;
    let response =
        spin_sdk::http::send(request).await.map_err(|error| format!("publishing to {publish_url}: {error:?}"))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("publishing to {publish_url}: status {}", response.status()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_bodies_follow_the_grip_item_format() {
        let text = Event {
            channel: "room:7".into(),
            id: Some("message-42".into()),
            stream_id: Some(42),
            body: EventBody::Text { content: "{\"type\":\"message\"}".into() },
            request_id: None,
        };
        let body: serde_json::Value = serde_json::from_str(&text.publish_body()).unwrap();
        assert_eq!(body["items"][0]["channel"], "room:7");
        assert_eq!(body["items"][0]["id"], "message-42");
        assert_eq!(body["items"][0]["formats"]["ws-message"]["content"], "{\"type\":\"message\"}");
        assert_eq!(body["items"][0]["formats"]["http-stream"]["content"], "id: 42\ndata: {\"type\":\"message\"}\n\n");

        let close = Event {
            channel: "room:7:user:3".into(),
            id: None,
            stream_id: None,
            body: EventBody::Close { code: 4403, reason: "left the room".into() },
            request_id: None,
        };
        let body: serde_json::Value = serde_json::from_str(&close.publish_body()).unwrap();
        assert_eq!(body["items"][0]["formats"]["ws-message"]["action"], "close");
        assert_eq!(body["items"][0]["formats"]["ws-message"]["code"], 4403);
        assert_eq!(body["items"][0]["formats"]["http-stream"]["action"], "close");
        assert!(body["items"][0].get("id").is_none());
    }

    #[test]
    fn publish_endpoints_are_every_listed_node() {
        let endpoints = PublishEndpoints::parse(" http://a:5561/ , http://b:5561").unwrap();
        assert_eq!(endpoints.urls(), ["http://a:5561/publish/", "http://b:5561/publish/"]);
        assert!(PublishEndpoints::parse(" , ").is_err());
        assert!(PublishEndpoints::parse("http://a:5561,b:5561").is_err());
    }

    #[test]
    fn events_survive_the_trip_through_redis() {
        let event = Event {
            channel: "room:1".into(),
            id: None,
            stream_id: Some(3),
            body: EventBody::Text { content: "x".into() },
            request_id: Some("0123abcd".into()),
        };
        let wire = serde_json::to_vec(&event).unwrap();
        assert_eq!(serde_json::from_slice::<Event>(&wire).unwrap(), event);
        // Published by a replica that predates `stream_id`, during a rolling update.
        let older = br#"{"channel":"room:1","id":null,"body":{"kind":"text","content":"x"}}"#;
        assert_eq!(serde_json::from_slice::<Event>(older).unwrap().stream_id, None);
    }
}
