//! Results of the ledger's SQL functions (sql/functions/20_ledger.sql), turned into HTTP answers. Used by `fintech`
//! and by payments in `chat`, which run the same SQL and so fail in the same ways.
use http::{HeaderValue, StatusCode};
use spin_sdk::pg::Row;

use crate::db::column;
use crate::response::raw_json_reply;
use crate::{ApiError, Reply};

/// Marks a response replayed from an earlier request with the same `Idempotency-Key`.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// The outcome of every ledger operation that did what was asked.
pub const SUCCESS_OUTCOME: &str = "completed";

/// One row of `fintech_transfer`, `fintech_deposit` or a chat payment function.
pub struct LedgerResult {
    pub outcome: String,
    pub resource: Option<String>,
    pub replayed: bool,
}

impl LedgerResult {
    pub fn from_row(row: &Row) -> Result<Self, ApiError> {
        Ok(Self { outcome: column(row, "outcome")?, resource: row.get("resource"), replayed: column(row, "replayed")? })
    }

    /// `success` with the resource for the successful outcome, `error_for(outcome)` otherwise. A
    /// replay carries [`REPLAYED_HEADER`], errors included: the first answer is the answer.
    pub fn into_reply(self, success: StatusCode, error_for: impl Fn(&str) -> ApiError) -> Result<Reply, ApiError> {
        let mut reply = match self.resource {
            Some(resource) if self.outcome == SUCCESS_OUTCOME => raw_json_reply(success, resource),
            _ => error_for(&self.outcome).into_reply(),
        };
        if self.replayed {
            reply.headers_mut().insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
        }
        Ok(reply)
    }
}

/// The API error for a ledger outcome other than success.
pub fn outcome_error(outcome: &str) -> ApiError {
    match outcome {
        "insufficient_funds" => ApiError::unprocessable("insufficient_funds", "the balance does not cover this amount"),
        "self_transfer" => ApiError::unprocessable("self_transfer", "you cannot send money to yourself"),
        "receiver_not_found" => ApiError::new(StatusCode::NOT_FOUND, "receiver_not_found", "no such receiver"),
        "unsupported_currency" => {
            ApiError::unprocessable("unsupported_currency", "the ledger does not hold that currency")
        }
        "invalid_amount_precision" => {
            ApiError::unprocessable("invalid_amount", "amount has more decimal places than the currency allows")
        }
        "currency_mismatch" => {
            ApiError::unprocessable("currency_mismatch", "the sender or the receiver holds no account in that currency")
        }
        "idempotency_mismatch" => {
            ApiError::unprocessable("idempotency_key_reused", "this Idempotency-Key was used for a different request")
        }
        other => ApiError::internal(format!("unknown ledger outcome {other:?}")),
    }
}
