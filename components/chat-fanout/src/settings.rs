//! The component's configuration, read once per instance from Spin variables.
use std::sync::OnceLock;

use shared::ApiError;
use shared::config::{SpinVariables, VariableSource, cached};

pub struct Settings {
    /// Pushpin's publish endpoint.
    pub grip_publish_url: String,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

pub async fn load() -> Result<&'static Settings, ApiError> {
    cached(&SETTINGS, || read(&SpinVariables)).await
}

/// The settings from `variables`: the one place this component reads variables.
async fn read(variables: &impl VariableSource) -> Result<Settings, ApiError> {
    let origin = variables.text("grip_origin").await?;
    Ok(Settings { grip_publish_url: format!("{}/publish/", origin.trim_end_matches('/')) })
}

#[cfg(test)]
mod tests {
    use shared::config::recording::{assert_reads_exactly_the_variables_given, run_now};

    use super::read;

    #[test]
    fn reads_exactly_the_variables_spin_toml_gives_it() {
        assert_reads_exactly_the_variables_given("chat-fanout", |variables| run_now(read(variables)));
    }
}
