//! The component's configuration, read once per instance from Spin variables.
use std::sync::OnceLock;

use rust_decimal::Decimal;
use shared::ApiError;
use shared::config::{cached, parsed, secret, text};
use shared::money::Currency;
use shared::token::TokenKeys;

pub struct Settings {
    pub database_url: String,
    pub keys: TokenKeys,
    /// The operator credential for deposits (`X-Operator-Token`).
    pub admin_token: String,
    pub default_currency: Currency,
    pub max_transfer_amount: Decimal,
    /// Largest `limit` a listing accepts (`max_page_size`).
    pub max_page_size: u32,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

pub async fn load() -> Result<&'static Settings, ApiError> {
    cached(&SETTINGS, read).await
}

async fn read() -> Result<Settings, ApiError> {
    Ok(Settings {
        database_url: text("database_url").await?,
        keys: TokenKeys::new(&secret("jwt_secret").await?, text("jwt_issuer").await?)?,
        admin_token: secret("admin_token").await?,
        default_currency: parsed("default_currency").await?,
        max_transfer_amount: parsed("max_transfer_amount").await?,
        max_page_size: shared::ids::checked_page_size(parsed("max_page_size").await?)?,
    })
}
