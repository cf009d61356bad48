//! The component's configuration, read once per instance from Spin variables. A failed read (a
//! secret too short) is not kept, so every readiness check reports it.
use std::sync::OnceLock;

use shared::ApiError;
use shared::config::{SpinVariables, VariableSource, cached};

pub struct Settings {
    pub database_url: String,
    pub redis_url: String,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

pub async fn load() -> Result<&'static Settings, ApiError> {
    cached(&SETTINGS, || read(&SpinVariables)).await
}

/// The settings from `variables`: the one place this component reads variables. The secrets the
/// other components refuse to run with when too short are read only to check that; they are
/// neither kept nor logged.
async fn read(variables: &impl VariableSource) -> Result<Settings, ApiError> {
    for secret in ["jwt_secret", "admin_token", "grip_sig_key"] {
        variables.secret(secret).await?;
    }
    Ok(Settings { database_url: variables.text("database_url").await?, redis_url: variables.text("redis_url").await? })
}

#[cfg(test)]
mod tests {
    use shared::config::recording::{RecordingVariables, assert_reads_exactly_the_variables_given, run_now};

    use super::read;

    #[test]
    fn reads_exactly_the_variables_spin_toml_gives_it() {
        assert_reads_exactly_the_variables_given("health", |variables| run_now(read(variables)));
    }

    #[test]
    fn a_short_secret_fails_the_check() {
        let variables = RecordingVariables::for_component("health").with("admin_token", "too-short");
        let error = run_now(read(&variables)).err().expect("a 9-byte admin_token is refused");
        assert_eq!((error.status.as_u16(), error.code), (500, "internal"));
    }
}
