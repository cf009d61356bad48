//! The component's configuration, read once per instance from Spin variables.
use std::sync::OnceLock;

use chrono::Duration;

use shared::ApiError;
use shared::client_address::{AddressRange, parse_trusted_proxies};
use shared::config::{SpinVariables, VariableSource, cached};
use shared::publisher::Publisher;
use shared::token::TokenKeys;

pub struct Settings {
    pub database_url: String,
    pub redis_url: String,
    pub redis_key_prefix: String,
    pub keys: TokenKeys,
    pub access_token_lifetime: Duration,
    pub refresh_token_ttl_seconds: i32,
    /// How long a session lasts however often its refresh token is rotated
    /// (`session_lifetime_seconds`).
    pub session_lifetime_seconds: i32,
    pub bcrypt_cost: u32,
    pub throttle: ThrottleSettings,
    pub registration_limits: RegistrationLimits,
    /// Look-ups of other users per caller per minute.
    pub user_lookups_per_minute: i64,
    /// Token refreshes per client address per minute.
    pub token_refreshes_per_minute: i64,
    /// Proxies whose `X-Forwarded-For` names the client (see `client_network`).
    pub trusted_proxies: Vec<AddressRange>,
    /// Closes the sockets and event streams of a session that ends (logout, refresh-token reuse).
    pub publisher: Publisher,
}

/// How many failed logins are tolerated, per username and per client address, and how many
/// attempts of any outcome per client address, within a window.
pub struct ThrottleSettings {
    pub failures_per_username_max: i64,
    pub failures_per_address_max: i64,
    pub attempts_per_address_max: i64,
    pub window_seconds: u32,
}

/// How many registrations are accepted per client address and in total within a window.
pub struct RegistrationLimits {
    pub per_address_max: i64,
    pub total_max: i64,
    pub window_seconds: u32,
}

/// The costs bcrypt defines (2^4 to 2^31 rounds).
const BCRYPT_COSTS: std::ops::RangeInclusive<u32> = 4..=31;

static SETTINGS: OnceLock<Settings> = OnceLock::new();

pub async fn load() -> Result<&'static Settings, ApiError> {
    cached(&SETTINGS, || read(&SpinVariables)).await
}

/// The settings from `variables`: the one place this component reads variables.
async fn read(variables: &impl VariableSource) -> Result<Settings, ApiError> {
    let bcrypt_cost: u32 = variables.parsed("bcrypt_cost").await?;
    if !BCRYPT_COSTS.contains(&bcrypt_cost) {
        return Err(ApiError::internal(format!("bcrypt_cost {bcrypt_cost} is outside 4..=31")));
    }
    Ok(Settings {
        database_url: variables.text("database_url").await?,
        redis_url: variables.text("redis_url").await?,
        redis_key_prefix: variables.text("redis_key_prefix").await?,
        keys: TokenKeys::new(&variables.secret("jwt_secret").await?, variables.text("jwt_issuer").await?)?,
        access_token_lifetime: Duration::seconds(variables.parsed::<u32>("access_token_ttl_seconds").await?.into()),
        refresh_token_ttl_seconds: variables.parsed("refresh_token_ttl_seconds").await?,
        session_lifetime_seconds: positive(
            variables.parsed("session_lifetime_seconds").await?,
            "session_lifetime_seconds",
        )?,
        bcrypt_cost,
        throttle: ThrottleSettings {
            failures_per_username_max: variables.parsed("login_max_failures").await?,
            failures_per_address_max: variables.parsed("login_max_failures_per_address").await?,
            attempts_per_address_max: variables.parsed("login_max_attempts_per_address").await?,
            window_seconds: variables.parsed("login_failure_window_seconds").await?,
        },
        registration_limits: RegistrationLimits {
            per_address_max: variables.parsed("registrations_per_address_max").await?,
            total_max: variables.parsed("registrations_max").await?,
            window_seconds: variables.parsed("registration_window_seconds").await?,
        },
        user_lookups_per_minute: variables.parsed("user_lookups_per_minute").await?,
        token_refreshes_per_minute: variables.parsed("token_refreshes_per_minute").await?,
        trusted_proxies: parse_trusted_proxies(&variables.text("trusted_proxies").await?)
            .map_err(|error| ApiError::internal(format!("trusted_proxies: {error}")))?,
        publisher: Publisher::read(variables).await?,
    })
}

/// `value`, refused unless positive (a lifetime of nothing would refuse every session).
fn positive(value: i32, name: &str) -> Result<i32, ApiError> {
    if value > 0 { Ok(value) } else { Err(ApiError::internal(format!("{name} must be positive, not {value}"))) }
}

#[cfg(test)]
mod tests {
    use shared::config::recording::{assert_reads_exactly_the_variables_given, run_now};

    use super::read;

    #[test]
    fn reads_exactly_the_variables_spin_toml_gives_it() {
        assert_reads_exactly_the_variables_given("auth", |variables| run_now(read(variables)));
    }
}
