//! The component's configuration, read once per instance from Spin variables.
use std::sync::OnceLock;

use jwt_compact::alg::Hs256Key;
use rust_decimal::Decimal;
use shared::ApiError;
use shared::config::{SpinVariables, VariableSource, cached};
use shared::money::Currency;
use shared::publisher::Publisher;
use shared::token::{TokenKeys, hs256_key};

pub struct Settings {
    pub database_url: String,
    pub redis_url: String,
    pub redis_key_prefix: String,
    pub keys: TokenKeys,
    /// Verifies `Grip-Sig`: only Pushpin, which shares this key, may speak WebSocket-over-HTTP.
    pub grip_key: Hs256Key,
    pub publisher: Publisher,
    /// Keep-alive interval of a quiet socket, at which it is re-checked
    /// (`socket_recheck_interval_seconds`).
    pub socket_recheck_interval_seconds: u32,
    pub message_bytes_max: usize,
    pub messages_per_minute: i64,
    /// Rooms created, direct rooms opened and members added per user per minute
    /// (`chat_room_changes_per_minute`).
    pub room_changes_per_minute: i64,
    pub room_members_max: i32,
    pub payment_request_ttl_seconds: i32,
    /// How long after sending its author may edit a text message (`message_edit_window_seconds`).
    pub message_edit_window_seconds: u32,
    pub default_currency: Currency,
    pub max_transfer_amount: Decimal,
    /// Most a user may send in one UTC day, per currency (`daily_outgoing_max`).
    pub daily_outgoing_max: Decimal,
    /// Most transfers a user may make in one UTC day, per currency (`daily_outgoing_transfers_max`).
    pub daily_outgoing_transfers_max: i32,
    /// Largest `limit` a listing accepts (`max_page_size`).
    pub max_page_size: u32,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

pub async fn load() -> Result<&'static Settings, ApiError> {
    cached(&SETTINGS, || read(&SpinVariables)).await
}

/// The settings from `variables`: the one place this component reads variables.
async fn read(variables: &impl VariableSource) -> Result<Settings, ApiError> {
    let grip_sig_key = variables.secret("grip_sig_key").await?;
    Ok(Settings {
        database_url: variables.text("database_url").await?,
        redis_url: variables.text("redis_url").await?,
        redis_key_prefix: variables.text("redis_key_prefix").await?,
        keys: TokenKeys::new(&variables.secret("jwt_secret").await?, variables.text("jwt_issuer").await?)?,
        grip_key: hs256_key(&grip_sig_key),
        publisher: Publisher::read(variables).await?,
        socket_recheck_interval_seconds: recheck_interval(variables).await?,
        message_bytes_max: variables.parsed("chat_message_max_bytes").await?,
        messages_per_minute: variables.parsed("chat_messages_per_minute").await?,
        room_changes_per_minute: variables.parsed("chat_room_changes_per_minute").await?,
        room_members_max: variables.parsed("room_max_members").await?,
        payment_request_ttl_seconds: variables.parsed("payment_request_ttl_seconds").await?,
        message_edit_window_seconds: variables.parsed("message_edit_window_seconds").await?,
        default_currency: variables.parsed("default_currency").await?,
        max_transfer_amount: variables.parsed("max_transfer_amount").await?,
        daily_outgoing_max: variables.parsed("daily_outgoing_max").await?,
        daily_outgoing_transfers_max: variables.parsed("daily_outgoing_transfers_max").await?,
        max_page_size: shared::ids::checked_page_size(variables.parsed("max_page_size").await?)?,
    })
}

/// Pushpin refuses a `Keep-Alive-Interval` below 20 s.
pub const SOCKET_RECHECK_INTERVAL_SECONDS_MIN: u32 = 20;

async fn recheck_interval(variables: &impl VariableSource) -> Result<u32, ApiError> {
    let seconds: u32 = variables.parsed("socket_recheck_interval_seconds").await?;
    if seconds < SOCKET_RECHECK_INTERVAL_SECONDS_MIN {
        return Err(ApiError::internal(format!(
            "socket_recheck_interval_seconds {seconds} is below Pushpin's minimum of {SOCKET_RECHECK_INTERVAL_SECONDS_MIN}"
        )));
    }
    Ok(seconds)
}

#[cfg(test)]
mod tests {
    use shared::config::recording::{RecordingVariables, assert_reads_exactly_the_variables_given, run_now};
    use shared::publisher::PublishMode;

    use super::read;

    #[test]
    fn reads_exactly_the_variables_spin_toml_gives_it() {
        assert_reads_exactly_the_variables_given("chat", |variables| run_now(read(variables)));
    }

    #[test]
    fn direct_publishing_reads_the_same_variables() {
        let variables = RecordingVariables::for_component("chat").with("chat_publish_mode", "direct");
        let settings = run_now(read(&variables)).expect("valid settings");
        assert_eq!(settings.publisher.mode, PublishMode::Direct);
        run_now(shared::request_log::read_level(&variables)).expect("valid log level");
        assert_eq!(variables.names_read(), variables.names_given());
    }

    #[test]
    fn a_recheck_interval_below_pushpins_minimum_is_refused() {
        let variables = RecordingVariables::for_component("chat").with("socket_recheck_interval_seconds", "19");
        assert!(run_now(read(&variables)).is_err());
        let variables = RecordingVariables::for_component("chat").with("socket_recheck_interval_seconds", "20");
        assert_eq!(run_now(read(&variables)).expect("valid settings").socket_recheck_interval_seconds, 20);
    }

    #[test]
    fn an_unknown_publish_mode_is_refused() {
        let variables = RecordingVariables::for_component("chat").with("chat_publish_mode", "carrier-pigeon");
        assert!(run_now(read(&variables)).is_err());
    }
}
