//! Events for WebSocket clients, published after the change they describe has committed.
//!
//! Publishing never fails a request: the change is already stored, and a client that misses an
//! event (Redis or Pushpin down, a dropped connection) sees a gap in `seq` and fills it with
//! `GET /chat/messages/{room}?after=<id>`.
use serde_json::{Value, json};
use shared::grip::{Event, EventBody};
pub use shared::grip::{message_event, room_channel};
use shared::ids::{RoomId, UserId};

use crate::settings::Settings;

/// Close code sent to a member's sockets when they leave the room.
pub const CLOSE_LEFT_ROOM: u16 = 4403;

/// One member's sockets for one room listen here too, so they can be closed when the member
/// leaves without touching anyone else's.
pub fn member_channel(room: RoomId, user: UserId) -> String {
    format!("room:{room}:user:{user}")
}

/// `{"type":"message_edited"|"message_deleted","message":{...}}` for a changed message. The item
/// id names the change, so every change is delivered once. No SSE `id:`: a stream resumes after
/// the last new message, and an older message's id would take it back.
pub fn change_event(room: RoomId, event_type: &str, message_json: &str) -> Event {
    let message: Value = serde_json::from_str(message_json).unwrap_or(Value::Null);
    let id = message["change_seq"].as_i64().map(|change_seq| format!("change-{room}-{change_seq}"));
    let content = json!({"type": event_type, "message": message}).to_string();
    Event::new(room_channel(room), id, EventBody::Text { content })
}

/// `{"type":"read","room_id":..,"user_id":..,"up_to_id":..}` for a moved read marker.
pub fn read_event(room: RoomId, marker_json: &str) -> Event {
    let mut marker: Value = serde_json::from_str(marker_json).unwrap_or_else(|_| json!({}));
    let id = format!("read-{room}-{}-{}", marker["user_id"], marker["up_to_id"]);
    marker["type"] = json!("read");
    Event::new(room_channel(room), Some(id), EventBody::Text { content: marker.to_string() })
}

/// `{"type":"typing","room_id":..,"user_id":..}`: ephemeral, never stored.
pub fn typing_event(room: RoomId, user: UserId) -> Event {
    let content = json!({"type": "typing", "room_id": room.get(), "user_id": user.get()}).to_string();
    // An id of its own, though nothing else names the notice: every app replica forwards every
    // event, and Pushpin delivers repeats of one item id only once.
    let sent_at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let id = format!("typing-{room}-{user}-{}", sent_at.as_micros());
    Event::new(room_channel(room), Some(id), EventBody::Text { content })
}

pub fn left_room_event(room: RoomId, user: UserId) -> Event {
    Event::new(
        member_channel(room, user),
        None,
        EventBody::Close { code: CLOSE_LEFT_ROOM, reason: "left the room".into() },
    )
}

/// Sends `event` towards Pushpin: through Redis (and `chat-fanout`) or directly.
pub async fn publish(settings: &Settings, event: Event) {
    settings.publisher.publish(event).await;
}
