//! What every SendInChat component needs, in one small library: configuration from Spin
//! variables, bearer tokens, the JSON error envelope, request parsing with limits, database and
//! Redis helpers, the client's address, the request log with request ids, static files with ETags, what user-written text may contain, and the domain types built from raw input (parse, don't validate).
pub mod client_address;
pub mod config;
pub mod db;
pub mod error;
pub mod grip;
pub mod ids;
pub mod ledger;
pub mod money;
pub mod outcome;
pub mod publisher;
pub mod rate_limit;
pub mod redis;
pub mod request;
pub mod request_log;
pub mod response;
pub mod static_files;
pub mod streaming;
pub mod text;
pub mod token;
pub mod username;

pub use error::ApiError;
pub use response::Reply;
