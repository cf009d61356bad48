//! The live event for a refund's message in a chat room, published after the refund has committed,
//! the way `chat` publishes its messages (`chat/src/realtime.rs`): to the room's channel, through
//! Redis and `chat-fanout` or straight to every Pushpin node. A copy of chat's few lines until
//! publishing is shared; it reads the same variables.
//!
//! Publishing never fails a request: the refund and its message are stored, and a client that
//! misses the event sees a gap in `seq` and fills it with `GET /chat/messages/{room}?after=<id>`.
use serde_json::{Value, json};
use shared::grip::{Event, EventBody};

use crate::settings::{PublishMode, Settings};

/// `{"type":"message","message":{...}}` for a stored message (its JSON as rendered by SQL), on
/// the channel every socket of its room listens to.
fn message_event(message_json: &str) -> Event {
    let message: Value = serde_json::from_str(message_json).unwrap_or(Value::Null);
    let content = json!({"type": "message", "message": message}).to_string();
    Event {
        stream_id: message["id"].as_i64(),
        ..Event::new(
            format!("room:{}", message["room_id"]),
            message["id"].as_i64().map(|id| format!("message-{id}")),
            EventBody::Text { content },
        )
    }
}

/// Announces a message appended to a room.
pub async fn publish_message(settings: &Settings, message_json: &str) {
    let mut event = message_event(message_json);
    event.request_id = shared::request_log::current_request_id();
    let outcome = match settings.publish_mode {
        PublishMode::Redis => publish_to_redis(settings, &event).await,
        PublishMode::Direct => settings.publish_endpoints.publish(&event).await,
    };
    if let Err(error) = outcome {
        shared::request_log::warn(format_args!("event for {} not published: {error}", event.channel));
    }
}

async fn publish_to_redis(settings: &Settings, event: &Event) -> Result<(), String> {
    let payload = serde_json::to_vec(event).map_err(|error| error.to_string())?;
    let connection = spin_sdk::redis::Connection::open(&settings.redis_url)
        .await
        .map_err(|error| format!("connecting to Redis: {error:?}"))?;
    connection
        .publish(&settings.events_channel, &payload)
        .await
        .map_err(|error| format!("publishing to Redis: {error:?}"))
}
