//! Realtime delivery through a GRIP proxy (Pushpin): the event envelope that travels over Redis
//! from `chat` to `chat-fanout`, and the publish call both of them can make.
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::json;
use spin_sdk::http::FullBody;

/// One event for the WebSocket clients subscribed to `channel`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub channel: String,
    /// Pushpin's item id: an event published twice with the same id is delivered once.
    pub id: Option<String>,
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
        Self { channel, id, body, request_id: None }
    }

    /// The body of a publish request to Pushpin's `/publish/` endpoint.
    pub fn publish_body(&self) -> String {
        let ws_message = match &self.body {
            EventBody::Text { content } => json!({ "content": content }),
            EventBody::Close { code, reason } => {
                json!({ "action": "close", "code": code, "reason": reason })
            }
        };
        let mut item = json!({ "channel": self.channel, "formats": { "ws-message": ws_message } });
        if let Some(id) = &self.id {
            item["id"] = json!(id);
        }
        json!({ "items": [item] }).to_string()
    }
}

/// Publishes one event to the GRIP publish endpoint at `publish_url`.
pub async fn publish(publish_url: &str, event: &Event) -> Result<(), String> {
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
            body: EventBody::Text { content: "{\"type\":\"message\"}".into() },
            request_id: None,
        };
        let body: serde_json::Value = serde_json::from_str(&text.publish_body()).unwrap();
        assert_eq!(body["items"][0]["channel"], "room:7");
        assert_eq!(body["items"][0]["id"], "message-42");
        assert_eq!(body["items"][0]["formats"]["ws-message"]["content"], "{\"type\":\"message\"}");

        let close = Event {
            channel: "room:7:user:3".into(),
            id: None,
            body: EventBody::Close { code: 4403, reason: "left the room".into() },
            request_id: None,
        };
        let body: serde_json::Value = serde_json::from_str(&close.publish_body()).unwrap();
        assert_eq!(body["items"][0]["formats"]["ws-message"]["action"], "close");
        assert_eq!(body["items"][0]["formats"]["ws-message"]["code"], 4403);
        assert!(body["items"][0].get("id").is_none());
    }

    #[test]
    fn events_survive_the_trip_through_redis() {
        let event = Event {
            channel: "room:1".into(),
            id: None,
            body: EventBody::Text { content: "x".into() },
            request_id: Some("0123abcd".into()),
        };
        let wire = serde_json::to_vec(&event).unwrap();
        assert_eq!(serde_json::from_slice::<Event>(&wire).unwrap(), event);
    }
}
