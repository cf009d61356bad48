//! The component's configuration, read once per instance from Spin variables.
use std::sync::OnceLock;

use rust_decimal::Decimal;
use shared::ApiError;
use shared::config::{SpinVariables, VariableSource, cached};
use shared::money::Currency;
use shared::publisher::Publisher;
use shared::token::TokenKeys;

pub struct Settings {
    pub database_url: String,
    pub keys: TokenKeys,
    /// The operator credential for deposits (`X-Operator-Token`).
    pub admin_token: String,
    pub default_currency: Currency,
    pub max_transfer_amount: Decimal,
    /// Most a user may send in one UTC day, per currency (`daily_outgoing_max`).
    pub daily_outgoing_max: Decimal,
    /// Most transfers a user may make in one UTC day, per currency (`daily_outgoing_transfers_max`).
    pub daily_outgoing_transfers_max: i32,
    /// Largest `limit` a listing accepts (`max_page_size`).
    pub max_page_size: u32,
    /// Most lines one statement holds (`statement_lines_max`): they are read into memory whole.
    pub statement_lines_max: usize,
    /// How the refund of a chat payment is announced in its room, as `chat` announces messages.
    pub publisher: Publisher,
    /// Where the refunder's chat budget is counted, as `chat` counts it.
    pub redis_url: String,
    pub redis_key_prefix: String,
    /// A refund may post into a room, so it spends the chat budget (`chat_messages_per_minute`).
    pub chat_messages_per_minute: i64,
    /// Statements per user per minute (`statements_per_minute`): each reads up to
    /// `statement_lines_max` lines into memory.
    pub statements_per_minute: i64,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

pub async fn load() -> Result<&'static Settings, ApiError> {
    cached(&SETTINGS, || read(&SpinVariables)).await
}

/// The settings from `variables`: the one place this component reads variables.
async fn read(variables: &impl VariableSource) -> Result<Settings, ApiError> {
    Ok(Settings {
        database_url: variables.text("database_url").await?,
        keys: TokenKeys::new(&variables.secret("jwt_secret").await?, variables.text("jwt_issuer").await?)?,
        admin_token: variables.secret("admin_token").await?,
        default_currency: variables.parsed("default_currency").await?,
        max_transfer_amount: variables.parsed("max_transfer_amount").await?,
        daily_outgoing_max: variables.parsed("daily_outgoing_max").await?,
        daily_outgoing_transfers_max: variables.parsed("daily_outgoing_transfers_max").await?,
        max_page_size: shared::ids::checked_page_size(variables.parsed("max_page_size").await?)?,
        statement_lines_max: variables.parsed("statement_lines_max").await?,
        publisher: Publisher::read(variables).await?,
        redis_url: variables.text("redis_url").await?,
        redis_key_prefix: variables.text("redis_key_prefix").await?,
        chat_messages_per_minute: variables.parsed("chat_messages_per_minute").await?,
        statements_per_minute: variables.parsed("statements_per_minute").await?,
    })
}

#[cfg(test)]
mod tests {
    use shared::config::recording::{RecordingVariables, assert_reads_exactly_the_variables_given, run_now};

    use shared::publisher::PublishMode;

    use super::read;

    #[test]
    fn reads_exactly_the_variables_spin_toml_gives_it() {
        assert_reads_exactly_the_variables_given("fintech", |variables| run_now(read(variables)));
    }

    #[test]
    fn publishes_like_chat() {
        let variables = RecordingVariables::for_component("fintech").with("chat_publish_mode", "direct");
        assert_eq!(run_now(read(&variables)).expect("valid settings").publisher.mode, PublishMode::Direct);
        let variables = RecordingVariables::for_component("fintech").with("chat_publish_mode", "carrier-pigeon");
        assert!(run_now(read(&variables)).is_err());
    }
}
