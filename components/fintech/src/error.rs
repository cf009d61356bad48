//! Everything that can go wrong in `fintech`, mapped to HTTP in one place. Ledger outcomes
//! (insufficient funds, ...) are mapped by `shared::ledger`, shared with payments in chat.
use http::StatusCode;
use shared::ApiError;

#[derive(Debug)]
pub enum FintechError {
    /// Already an API answer (bad input, missing token, ledger outcome, ...).
    Api(ApiError),
    SenderMismatch,
    ReceiverUnspecified,
    OperatorCredentialInvalid,
    TransferNotFound,
    /// Boxed: Postgres errors carry every field of the server's report.
    Database(Box<spin_sdk::pg::Error>),
}

impl From<FintechError> for ApiError {
    fn from(error: FintechError) -> Self {
        match error {
            FintechError::Api(api_error) => api_error,
            FintechError::SenderMismatch => {
                ApiError::forbidden("sender_mismatch", "sender_id must be the authenticated user")
            }
            FintechError::ReceiverUnspecified => ApiError::unprocessable(
                "invalid_receiver",
                "give exactly one of receiver_id (an integer) and receiver_username",
            ),
            FintechError::OperatorCredentialInvalid => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_operator_token",
                "a valid X-Operator-Token is required",
            ),
            FintechError::TransferNotFound => ApiError::not_found("no such transaction"),
            FintechError::Database(error) => shared::db::failure(*error),
        }
    }
}

impl From<ApiError> for FintechError {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

impl From<spin_sdk::pg::Error> for FintechError {
    fn from(error: spin_sdk::pg::Error) -> Self {
        Self::Database(Box::new(error))
    }
}
