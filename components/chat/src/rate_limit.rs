//! Messages (and typing notices, and read markers) per user per minute, counted in Redis
//! (`shared::rate_limit`). Payments and payment requests in a room, and their resolutions, post
//! messages, so they spend the messages' budget. Room changes (creating rooms, opening direct
//! rooms, adding members) have a budget of their own.
use shared::ids::UserId;
use shared::rate_limit::{self, CHAT_MESSAGES};

use crate::error::ChatError;
use crate::settings::Settings;

pub async fn allow_message(settings: &Settings, sender: UserId) -> Result<(), ChatError> {
    allow(settings, CHAT_MESSAGES, settings.messages_per_minute, sender).await
}

/// Typing notices share the messages' budget size but have their own counter.
pub async fn allow_typing(settings: &Settings, sender: UserId) -> Result<(), ChatError> {
    allow(settings, "chat-typing", settings.messages_per_minute, sender).await
}

/// Read markers share the messages' budget size but have their own counter.
pub async fn allow_read_marker(settings: &Settings, reader: UserId) -> Result<(), ChatError> {
    allow(settings, "chat-read-markers", settings.messages_per_minute, reader).await
}

/// Creating a room, opening a direct room and adding a member each pull other users into a room:
/// without a budget of their own (`chat_room_changes_per_minute`), one account could flood a victim
/// with hundreds of rooms.
pub async fn allow_room_change(settings: &Settings, caller: UserId) -> Result<(), ChatError> {
    allow(settings, "chat-room-changes", settings.room_changes_per_minute, caller).await
}

async fn allow(settings: &Settings, what: &str, per_minute: i64, sender: UserId) -> Result<(), ChatError> {
    rate_limit::spend(&settings.redis_url, &settings.redis_key_prefix, what, per_minute, sender)
        .await
        .map_err(|retry_after_seconds| ChatError::RateLimited { retry_after_seconds })
}
