//! The component's configuration, read once per instance from Spin variables. A failed read (a
//! secret too short) is not kept, so every readiness check reports it.
use std::sync::OnceLock;

use shared::ApiError;
use shared::config::{SpinVariables, VariableSource, cached, is_placeholder};

pub struct Settings {
    pub database_url: String,
    pub redis_url: String,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

pub async fn load() -> Result<&'static Settings, ApiError> {
    cached(&SETTINGS, || read(&SpinVariables)).await
}

/// The secrets the other components use, each a different key.
const SECRETS: [&str; 3] = ["jwt_secret", "admin_token", "grip_sig_key"];

/// The settings from `variables`: the one place this component reads variables. The secrets the
/// other components refuse to run with (too short, a placeholder) are read only to check that,
/// and that no two are the same (one leaked value would then open several doors); they are
/// neither kept nor logged. Connection strings holding a placeholder password are refused too.
async fn read(variables: &impl VariableSource) -> Result<Settings, ApiError> {
    let mut seen: Vec<(&str, String)> = Vec::new();
    for name in SECRETS {
        let value = variables.secret(name).await?;
        if let Some((twin, _)) = seen.iter().find(|(_, other)| *other == value) {
            return Err(ApiError::internal(format!("variables {twin} and {name} hold the same value")));
        }
        seen.push((name, value));
    }
    Ok(Settings {
        database_url: connection_string(variables, "database_url").await?,
        redis_url: connection_string(variables, "redis_url").await?,
    })
}

async fn connection_string(variables: &impl VariableSource, name: &str) -> Result<String, ApiError> {
    let value = variables.text(name).await?;
    if is_placeholder(&value) {
        return Err(ApiError::internal(format!("variable {name} still holds an example's placeholder (CHANGE-ME)")));
    }
    Ok(value)
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
    fn placeholders_and_shared_values_fail_the_check() {
        let placeholder = "CHANGE-ME-to-64-random-hex-characters";
        let refused = |variables: RecordingVariables| run_now(read(&variables)).err().map(|error| error.code);
        let health = || RecordingVariables::for_component("health");
        assert_eq!(refused(health().with("jwt_secret", placeholder)), Some("internal"), "a placeholder secret");
        let url = "postgres://app:CHANGE-ME@db:5432/app";
        assert_eq!(refused(health().with("database_url", url)), Some("internal"), "a placeholder password");
        let shared_value = "the-same-value-for-two-secrets-0123456789";
        let twins = health().with("admin_token", shared_value).with("grip_sig_key", shared_value);
        assert_eq!(refused(twins), Some("internal"), "one value for two secrets");
        assert_eq!(refused(health()), None, "distinct real-looking values pass");
    }

    #[test]
    fn a_short_secret_fails_the_check() {
        let variables = RecordingVariables::for_component("health").with("admin_token", "too-short");
        let error = run_now(read(&variables)).err().expect("a 9-byte admin_token is refused");
        assert_eq!((error.status.as_u16(), error.code), (500, "internal"));
    }
}
