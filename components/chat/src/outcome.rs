//! Calling the chat SQL functions, which answer with a [`SqlOutcome`].
use shared::ApiError;
use shared::outcome::SqlOutcome;
use spin_sdk::pg::ParameterValue;

use crate::error::ChatError;
use crate::settings::Settings;

/// Runs `statement`, which selects `outcome`, `resource` and optionally `replayed`.
pub async fn call(settings: &Settings, statement: &str, params: Vec<ParameterValue>) -> Result<SqlOutcome, ChatError> {
    let database = shared::db::connect(&settings.database_url).await?;
    let row = shared::db::optional_row(&database, statement, params)
        .await?
        .ok_or_else(|| ApiError::internal(format!("no row from {statement}")))?;
    Ok(SqlOutcome::from_row(&row)?)
}

/// The API error for an outcome word of a chat (or ledger) function.
pub fn error_for(word: &str) -> ApiError {
    ChatError::Outcome(word.to_owned()).into()
}
