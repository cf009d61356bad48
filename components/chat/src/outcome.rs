//! Calling the chat SQL functions, which answer with an outcome word, a resource and (for
//! idempotent operations) whether the answer is a replay.
use http::StatusCode;
use shared::ledger::REPLAYED_HEADER;
use shared::response::raw_json_reply;
use shared::{ApiError, Reply};
use spin_sdk::pg::ParameterValue;

use crate::error::ChatError;
use crate::settings::Settings;

pub struct Outcome {
    pub word: String,
    pub resource: Option<String>,
    pub replayed: bool,
}

impl Outcome {
    /// The resource of a successful outcome met for the first time (not a replay): what there
    /// is to announce to the room.
    pub fn fresh_resource(&self, success: &str) -> Option<&str> {
        (self.word == success && !self.replayed).then_some(self.resource.as_deref()).flatten()
    }

    /// The reply: for an outcome listed in `successes`, its resource with the listed status;
    /// otherwise the outcome's error. A replay is marked with [`REPLAYED_HEADER`], errors included.
    pub fn into_reply(self, successes: &[(&str, StatusCode)]) -> Result<Reply, ChatError> {
        let status = successes.iter().find(|(word, _)| *word == self.word).map(|(_, status)| *status);
        let mut reply = match (status, self.resource) {
            (Some(status), Some(resource)) => raw_json_reply(status, resource),
            _ if !self.replayed => return Err(ChatError::Outcome(self.word)),
            _ => ApiError::from(ChatError::Outcome(self.word)).into_reply(),
        };
        if self.replayed {
            reply.headers_mut().insert(REPLAYED_HEADER, http::HeaderValue::from_static("true"));
        }
        Ok(reply)
    }
}

/// Runs `statement`, which selects `outcome`, `resource` and optionally `replayed`.
pub async fn call(settings: &Settings, statement: &str, params: Vec<ParameterValue>) -> Result<Outcome, ChatError> {
    let database = shared::db::connect(&settings.database_url).await?;
    let row = shared::db::optional_row(&database, statement, params)
        .await?
        .ok_or_else(|| ApiError::internal(format!("no row from {statement}")))?;
    Ok(Outcome {
        word: shared::db::column(&row, "outcome")?,
        resource: row.get("resource"),
        replayed: row.get("replayed").unwrap_or(false),
    })
}
