//! The component's configuration, read once per instance from Spin variables.
use std::sync::OnceLock;

use jwt_compact::alg::Hs256Key;
use rust_decimal::Decimal;
use shared::ApiError;
use shared::config::{cached, parsed, secret, text};
use shared::money::Currency;
use shared::token::{TokenKeys, hs256_key};

pub struct Settings {
    pub database_url: String,
    pub redis_url: String,
    pub redis_key_prefix: String,
    pub keys: TokenKeys,
    /// Verifies `Grip-Sig`: only Pushpin, which shares this key, may speak WebSocket-over-HTTP.
    pub grip_key: Hs256Key,
    pub publish_mode: PublishMode,
    pub grip_publish_url: String,
    pub events_channel: String,
    pub message_bytes_max: usize,
    pub messages_per_minute: i64,
    pub room_members_max: i32,
    pub payment_request_ttl_seconds: i32,
    pub default_currency: Currency,
    pub max_transfer_amount: Decimal,
    /// Largest `limit` a listing accepts (`max_page_size`).
    pub max_page_size: u32,
}

/// How events reach Pushpin after a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishMode {
    /// Through Redis and the `chat-fanout` trigger.
    Redis,
    /// Straight to Pushpin's publish endpoint, for platforms without a Redis trigger.
    Direct,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

pub async fn load() -> Result<&'static Settings, ApiError> {
    cached(&SETTINGS, read).await
}

async fn read() -> Result<Settings, ApiError> {
    let grip_sig_key = secret("grip_sig_key").await?;
    let publish_mode = match text("chat_publish_mode").await?.as_str() {
        "redis" => PublishMode::Redis,
        "direct" => PublishMode::Direct,
        other => {
            return Err(ApiError::internal(format!("chat_publish_mode {other:?} is neither redis nor direct")));
        }
    };
    Ok(Settings {
        database_url: text("database_url").await?,
        redis_url: text("redis_url").await?,
        redis_key_prefix: text("redis_key_prefix").await?,
        keys: TokenKeys::new(&secret("jwt_secret").await?, text("jwt_issuer").await?)?,
        grip_key: hs256_key(&grip_sig_key),
        publish_mode,
        grip_publish_url: format!("{}/publish/", text("grip_origin").await?.trim_end_matches('/')),
        events_channel: text("chat_events_channel").await?,
        message_bytes_max: parsed("chat_message_max_bytes").await?,
        messages_per_minute: parsed("chat_messages_per_minute").await?,
        room_members_max: parsed("room_max_members").await?,
        payment_request_ttl_seconds: parsed("payment_request_ttl_seconds").await?,
        default_currency: parsed("default_currency").await?,
        max_transfer_amount: parsed("max_transfer_amount").await?,
        max_page_size: shared::ids::checked_page_size(parsed("max_page_size").await?)?,
    })
}
