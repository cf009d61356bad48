//! What the SQL functions answer (sql/functions/*): an outcome word, the resource it produced as
//! JSON text, and whether this is a replay of an earlier request with the same idempotency key.
//! One type for `fintech` and `chat`, turned into a reply in one place.
use http::{HeaderValue, StatusCode};
use spin_sdk::pg::Row;

use crate::db::column;
use crate::response::raw_json_reply;
use crate::{ApiError, Reply};

/// Marks a response replayed from an earlier request with the same idempotency key.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

pub struct SqlOutcome {
    pub word: String,
    pub resource: Option<String>,
    pub replayed: bool,
}

impl SqlOutcome {
    /// Reads the `outcome`, `resource` and (when the function has it) `replayed` columns.
    pub fn from_row(row: &Row) -> Result<Self, ApiError> {
        Ok(Self {
            word: column(row, "outcome")?,
            resource: row.get("resource"),
            replayed: row.get("replayed").unwrap_or(false),
        })
    }

    /// The resource of a successful outcome met for the first time (not a replay): what there
    /// is to announce.
    pub fn fresh_resource(&self, success: &str) -> Option<&str> {
        (self.word == success && !self.replayed).then_some(self.resource.as_deref()).flatten()
    }

    /// For an outcome listed in `successes`, its resource with the listed status; otherwise
    /// `error_for(word)`. A replay carries [`REPLAYED_HEADER`], errors included: the first answer
    /// is the answer.
    pub fn into_reply(self, successes: &[(&str, StatusCode)], error_for: impl Fn(&str) -> ApiError) -> Reply {
        let status = successes.iter().find(|(word, _)| *word == self.word).map(|(_, status)| *status);
        let mut reply = match (status, self.resource) {
            (Some(status), Some(resource)) => raw_json_reply(status, resource),
            _ => error_for(&self.word).into_reply(),
        };
        if self.replayed {
            reply.headers_mut().insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
        }
        reply
    }
}
