//! Configuration from Spin variables.
//!
//! A component's settings are read once per instance and kept for its lifetime: variables cannot
//! change while the application runs, and reading them on every request would cost host calls.
//! A missing or malformed variable is a deployment mistake, answered with a logged 500.
use std::fmt::Display;
use std::str::FromStr;
use std::sync::OnceLock;

use crate::ApiError;
use crate::token::SECRET_BYTES_MIN;

/// Reads the variable `name` as text.
pub async fn text(name: &str) -> Result<String, ApiError> {
    spin_sdk::variables::get(name).await.map_err(|error| ApiError::internal(format!("variable {name}: {error:?}")))
}

/// Reads the secret variable `name`, refusing one shorter than [`SECRET_BYTES_MIN`]: a short
/// key or operator token is guessable, and better no service than a forgeable one.
pub async fn secret(name: &str) -> Result<String, ApiError> {
    let value = text(name).await?;
    if value.len() < SECRET_BYTES_MIN {
        return Err(ApiError::internal(format!(
            "variable {name} is {} bytes; at least {SECRET_BYTES_MIN} are required",
            value.len()
        )));
    }
    Ok(value)
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
