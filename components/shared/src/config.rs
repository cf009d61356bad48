//! Configuration from Spin variables.
//!
//! Each component reads its settings in one typed loader (`settings::read`) from a
//! [`VariableSource`]: Spin's variables in production ([`SpinVariables`]); in native unit tests, a
//! source that records the names asked ([`recording`]), so a test can compare what the loader
//! reads with what spin.toml gives the component. Clippy refuses any other way of reading a
//! variable (`disallowed-methods` in clippy.toml), so that comparison sees every read.
//!
//! A component's settings are read once per instance and kept for its lifetime: variables cannot
//! change while the application runs, and reading them on every request would cost host calls.
//! A missing or malformed variable is a deployment mistake, answered with a logged 500.
use std::fmt::Display;
use std::str::FromStr;
use std::sync::OnceLock;

use crate::ApiError;
use crate::token::SECRET_BYTES_MIN;

#[cfg(feature = "test-support")]
pub mod recording;

/// Where variables come from, and the typed ways of reading one.
// Components run single-threaded in their wasm instance: no caller needs the futures to be Send.
#[allow(async_fn_in_trait)]
pub trait VariableSource {
    /// The value of the variable `name`.
    async fn get(&self, name: &str) -> Result<String, ApiError>;

    /// Reads the variable `name` as text.
    async fn text(&self, name: &str) -> Result<String, ApiError> {
        self.get(name).await
    }

    /// Reads the secret variable `name`, refusing one shorter than [`SECRET_BYTES_MIN`] or one
    /// that is an example's placeholder ([`is_placeholder`]): a short key or operator token is
    /// guessable, a placeholder is public, and better no service than a forgeable one.
    async fn secret(&self, name: &str) -> Result<String, ApiError> {
        let value = self.get(name).await?;
        if value.len() < SECRET_BYTES_MIN {
            return Err(ApiError::internal(format!(
                "variable {name} is {} bytes; at least {SECRET_BYTES_MIN} are required",
                value.len()
            )));
        }
        if is_placeholder(&value) {
            return Err(ApiError::internal(format!("variable {name} is still an example's placeholder (CHANGE-ME)")));
        }
        Ok(value)
    }

    /// Reads the variable `name` and parses it.
    async fn parsed<T>(&self, name: &str) -> Result<T, ApiError>
    where
        T: FromStr,
        T::Err: Display,
    {
        let raw = self.get(name).await?;
        raw.trim().parse().map_err(|error| ApiError::internal(format!("variable {name} ({raw:?}) is invalid: {error}")))
    }
}

/// Whether `value` is a placeholder from an example file (`CHANGE-ME-to-...`): it contains
/// "change" in any letter case, which 32 random bytes in hex or base64 practically never do.
pub fn is_placeholder(value: &str) -> bool {
    value.to_ascii_lowercase().contains("change")
}

/// The variables Spin gives the running component.
pub struct SpinVariables;

impl VariableSource for SpinVariables {
    // The one place a variable is read from Spin; clippy.toml forbids it everywhere else.
    #[allow(clippy::disallowed_methods)]
    async fn get(&self, name: &str) -> Result<String, ApiError> {
        spin_sdk::variables::get(name).await.map_err(|error| ApiError::internal(format!("variable {name}: {error:?}")))
    }
}

/// Returns the settings held in `cell`, loading them on first use.
pub async fn cached<T>(
    cell: &'static OnceLock<T>,
    load: impl AsyncFnOnce() -> Result<T, ApiError>,
) -> Result<&'static T, ApiError> {
    if let Some(settings) = cell.get() {
        return Ok(settings);
    }
    let settings = load().await?;
    Ok(cell.get_or_init(|| settings))
}
