//! Per-user budgets counted in Redis, in windows of a minute. Chat's message budget is spent by
//! every post into a room, including a refund's in `fintech`, so both count under one key; a
//! statement, the heaviest read, has a budget of its own.
//!
//! When Redis is unreachable a budget is not enforced (fail open): losing the counter must not stop
//! people from talking or paying, and every post is still stored and bounded in size. Login
//! throttling, where a missing counter would help an attacker, fails closed instead (see `auth`).
use crate::ids::UserId;

const WINDOW_SECONDS: u32 = 60;

/// The budget of posts into rooms (messages, payments, requests, refunds), `chat_messages_per_minute`.
pub const CHAT_MESSAGES: &str = "chat-messages";

/// The budget of account statements, `statements_per_minute`.
pub const STATEMENTS: &str = "statements";

/// Spends one unit of `user`'s budget `what` (`per_minute` in each window). `Err` holds the seconds
/// until the window ends, when the budget is spent.
pub async fn spend(redis_url: &str, key_prefix: &str, what: &str, per_minute: i64, user: UserId) -> Result<(), u32> {
    let key = format!("{key_prefix}:{what}:{user}");
    let counted = match crate::redis::connect(redis_url).await {
        Ok(connection) => {
            crate::redis::count_in_window(&connection, &key, WINDOW_SECONDS).await.map_err(|error| format!("{error:?}"))
        }
        Err(error) => Err(error.to_string()),
    };
    match counted {
        Ok(window) if window.count > per_minute => Err(u32::try_from(window.seconds_left).unwrap_or(WINDOW_SECONDS)),
        Ok(_) => Ok(()),
        Err(error) => {
            crate::request_log::warn(format_args!("rate limit not enforced for user {user}: {error}"));
            Ok(())
        }
    }
}
