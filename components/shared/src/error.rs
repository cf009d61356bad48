//! The JSON error envelope every component answers with.
use bytes::Bytes;
use spin_sdk::http::{FullBody, StatusCode};

pub type Reply = http::Response<FullBody<Bytes>>;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn into_reply(self) -> Reply {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        http::Response::builder()
            .status(self.status)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(FullBody::new(Bytes::from(body.to_string())))
            .expect("static response parts are valid")
    }
}
