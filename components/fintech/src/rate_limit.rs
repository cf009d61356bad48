//! Per-user budgets, counted in Redis as `chat` counts its own (`shared::rate_limit`): 429 with
//! `Retry-After` past them.
use shared::ApiError;
use shared::ids::UserId;
use shared::rate_limit::{self, CHAT_MESSAGES, STATEMENTS};

use crate::settings::Settings;

/// The refund of a chat payment posts into its room, so every refund spends the refunder's chat
/// budget, as every post does (before the refund, whose room is known only once it is made).
pub async fn allow_refund(settings: &Settings, refunder: UserId) -> Result<(), ApiError> {
    allow(settings, CHAT_MESSAGES, settings.chat_messages_per_minute, refunder).await
}

/// Each statement reads up to `statement_lines_max` lines into memory.
pub async fn allow_statement(settings: &Settings, reader: UserId) -> Result<(), ApiError> {
    allow(settings, STATEMENTS, settings.statements_per_minute, reader).await
}

async fn allow(settings: &Settings, what: &str, per_minute: i64, user: UserId) -> Result<(), ApiError> {
    rate_limit::spend(&settings.redis_url, &settings.redis_key_prefix, what, per_minute, user)
        .await
        .map_err(ApiError::too_many_requests)
}
