//! Messages (and typing notices, and read markers) per user per minute, counted in Redis. Payments
//! and payment requests in a room, and their resolutions, post messages, so they spend the
//! messages' budget. Room changes (creating rooms, opening direct rooms, adding members) have a
//! budget of their own.
//!
//! When Redis is unreachable the limit is not enforced (fail open): losing the counter must not
//! stop people from talking, and every message is still stored and bounded in size. Login
//! throttling, where a missing counter would help an attacker, fails closed instead (see `auth`).
use shared::ids::UserId;

use crate::error::ChatError;
use crate::settings::Settings;

const WINDOW_SECONDS: u32 = 60;

pub async fn allow_message(settings: &Settings, sender: UserId) -> Result<(), ChatError> {
    allow(settings, "messages", settings.messages_per_minute, sender).await
}

/// Typing notices share the messages' budget size but have their own counter.
pub async fn allow_typing(settings: &Settings, sender: UserId) -> Result<(), ChatError> {
    allow(settings, "typing", settings.messages_per_minute, sender).await
}

/// Read markers share the messages' budget size but have their own counter.
pub async fn allow_read_marker(settings: &Settings, reader: UserId) -> Result<(), ChatError> {
    allow(settings, "read-markers", settings.messages_per_minute, reader).await
}

/// Creating a room, opening a direct room and adding a member each pull other users into a room:
/// without a budget of their own (`chat_room_changes_per_minute`), one account could flood a victim
/// with hundreds of rooms.
pub async fn allow_room_change(settings: &Settings, caller: UserId) -> Result<(), ChatError> {
    allow(settings, "room-changes", settings.room_changes_per_minute, caller).await
}

async fn allow(settings: &Settings, what: &str, per_minute: i64, sender: UserId) -> Result<(), ChatError> {
    let key = format!("{}:chat-{what}:{sender}", settings.redis_key_prefix);
    let counted = match shared::redis::connect(&settings.redis_url).await {
        Ok(connection) => shared::redis::count_in_window(&connection, &key, WINDOW_SECONDS)
            .await
            .map_err(|error| format!("{error:?}")),
        Err(error) => Err(error.to_string()),
    };
    match counted {
        Ok(window) if window.count > per_minute => Err(ChatError::RateLimited {
            retry_after_seconds: u32::try_from(window.seconds_left).unwrap_or(WINDOW_SECONDS),
        }),
        Ok(_) => Ok(()),
        Err(error) => {
            shared::request_log::warn(format_args!("rate limit not enforced for user {sender}: {error}"));
            Ok(())
        }
    }
}
