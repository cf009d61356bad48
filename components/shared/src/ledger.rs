//! The ledger's outcome words (sql/functions/20_ledger.sql) as API errors. Used by `fintech` and
//! by payments in `chat`, which run the same SQL and so fail in the same ways.
use http::StatusCode;

use crate::ApiError;

/// The outcome of every ledger operation that did what was asked.
pub const SUCCESS_OUTCOME: &str = "completed";

/// The API error for a ledger outcome other than success.
pub fn outcome_error(outcome: &str) -> ApiError {
    match outcome {
        "insufficient_funds" => ApiError::unprocessable("insufficient_funds", "the balance does not cover this amount"),
        "daily_limit_exceeded" => ApiError::unprocessable(
            "daily_limit_exceeded",
            "this payment would take today's outgoing total past the daily limit",
        ),
        "daily_transfers_exceeded" => ApiError::unprocessable(
            "daily_transfers_exceeded",
            "you have made as many payments today as the daily limit allows",
        ),
        "self_transfer" => ApiError::unprocessable("self_transfer", "you cannot send money to yourself"),
        // Amounts are checked as they are parsed; a payment request's, stored earlier, when it is paid.
        "amount_too_large" => {
            ApiError::unprocessable("amount_too_large", "the amount is over the largest payment allowed now")
        }
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
