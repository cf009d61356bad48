use spin_sdk::http::{Request, StatusCode};

#[spin_sdk::http_service]
async fn handle(_request: Request) -> shared::error::Reply {
    shared::error::ApiError {
        status: StatusCode::NOT_IMPLEMENTED,
        code: "not_implemented",
        message: "not yet".into(),
    }
    .into_reply()
}
