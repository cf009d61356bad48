//! The component's configuration, read once per instance from Spin variables.
use std::sync::OnceLock;

use shared::ApiError;
use shared::config::{SpinVariables, VariableSource, cached};

use crate::page::WebSocketOrigin;

pub struct Settings {
    /// Where browsers open chat WebSockets (`web_socket_origin`).
    pub web_socket_origin: WebSocketOrigin,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

pub async fn load() -> Result<&'static Settings, ApiError> {
    cached(&SETTINGS, || read(&SpinVariables)).await
}

/// The settings from `variables`: the one place this component reads variables.
async fn read(variables: &impl VariableSource) -> Result<Settings, ApiError> {
    Ok(Settings { web_socket_origin: variables.parsed("web_socket_origin").await? })
}

#[cfg(test)]
mod tests {
    use shared::config::recording::{assert_reads_exactly_the_variables_given, run_now};

    use super::read;

    #[test]
    fn reads_exactly_the_variables_spin_toml_gives_it() {
        assert_reads_exactly_the_variables_given("web", |variables| run_now(read(variables)));
    }
}
