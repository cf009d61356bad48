use http::StatusCode;
use shared::{ApiError, Reply};
use spin_sdk::http::Request;

#[spin_sdk::http_service]
async fn handle(_request: Request) -> Reply {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "not_implemented",
        "chat is not implemented yet",
    )
    .into_reply()
}
