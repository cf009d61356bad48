//! The component's configuration, read once per instance from Spin variables.
use std::sync::OnceLock;

use shared::ApiError;
use shared::config::{SpinVariables, VariableSource, cached};
use shared::grip::PublishEndpoints;

pub struct Settings {
    /// Every Pushpin node's publish endpoint.
    pub publish_endpoints: PublishEndpoints,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

pub async fn load() -> Result<&'static Settings, ApiError> {
    cached(&SETTINGS, || read(&SpinVariables)).await
}

/// The settings from `variables`: the one place this component reads variables.
async fn read(variables: &impl VariableSource) -> Result<Settings, ApiError> {
    let publish_endpoints =
        PublishEndpoints::parse(&variables.text("grip_publish_urls").await?).map_err(ApiError::internal)?;
    Ok(Settings { publish_endpoints })
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
