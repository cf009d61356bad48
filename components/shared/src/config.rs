//! Configuration from Spin variables.
//!
//! A component's settings are read once per instance and kept for its lifetime: variables cannot
//! change while the application runs, and reading them on every request would cost host calls.
//! A missing or malformed variable is a deployment mistake, answered with a logged 500.
use std::fmt::Display;
use std::str::FromStr;
use std::sync::OnceLock;

use crate::ApiError;

/// Reads the variable `name` as text.
pub async fn text(name: &str) -> Result<String, ApiError> {
    spin_sdk::variables::get(name).await.map_err(|error| ApiError::internal(format!("variable {name}: {error:?}")))
}

/// Reads the variable `name` and parses it.
pub async fn parsed<T>(name: &str) -> Result<T, ApiError>
where
    T: FromStr,
    T::Err: Display,
{
    let raw = text(name).await?;
    raw.trim().parse().map_err(|error| ApiError::internal(format!("variable {name} ({raw:?}) is invalid: {error}")))
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
