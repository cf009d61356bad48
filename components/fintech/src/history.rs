//! Reading the ledger: balances, a user's transfers (paginated), one transfer.
use http::StatusCode;
use shared::db::{column, optional_row};
use shared::ids::{PageLimit, TransferId};
use shared::request::{query_pairs, query_value};
use shared::response::raw_json_reply;
use shared::{ApiError, Reply};
use spin_sdk::http::Request;

use crate::error::FintechError;
use crate::settings::Settings;

#[derive(Clone, Copy)]
pub enum Direction {
    All,
    Sent,
    Received,
}

impl Direction {
    fn as_sql(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Sent => "sent",
            Self::Received => "received",
        }
    }
}

pub async fn balance(settings: &Settings, request: Request) -> Result<Reply, FintechError> {
    let caller = settings.keys.authenticate(request.headers())?;
    let database = shared::db::connect(&settings.database_url).await?;
    let row = optional_row(
        &database,
        "SELECT fintech_balances($1::int8, $2::text) AS resource",
        vec![caller.get().into(), settings.default_currency.as_str().to_owned().into()],
    )
    .await?
    .ok_or_else(|| ApiError::internal("fintech_balances returned no row"))?;
    Ok(raw_json_reply(StatusCode::OK, column::<String>(&row, "resource")?))
}

/// Newest first; `before` is the `next_before` cursor of the previous page.
pub async fn list(settings: &Settings, request: Request, direction: Direction) -> Result<Reply, FintechError> {
    let caller = settings.keys.authenticate(request.headers())?;
    let query = query_pairs(request.uri())?;
    let limit = PageLimit::parse(query_value(&query, "limit"), settings.max_page_size)?;
    let before = match query_value(&query, "before") {
        None => None,
        Some(raw) => Some(TransferId::parse(raw).ok_or_else(|| {
            ApiError::bad_request("invalid_cursor", "before must be the next_before value of a previous page")
        })?),
    };
    let database = shared::db::connect(&settings.database_url).await?;
    let row = optional_row(
        &database,
        "SELECT fintech_history($1::int8, $2::text, $3::int8, $4::int4) AS resource",
        vec![
            caller.get().into(),
            direction.as_sql().to_owned().into(),
            before.map(TransferId::get).into(),
            limit.get().into(),
        ],
    )
    .await?
    .ok_or_else(|| ApiError::internal("fintech_history returned no row"))?;
    Ok(raw_json_reply(StatusCode::OK, column::<String>(&row, "resource")?))
}

/// 404 unless the caller sent or received it: the answer does not reveal that it exists.
pub async fn one(settings: &Settings, request: Request, raw_id: &str) -> Result<Reply, FintechError> {
    let caller = settings.keys.authenticate(request.headers())?;
    let id = TransferId::parse(raw_id).ok_or(FintechError::TransferNotFound)?;
    let database = shared::db::connect(&settings.database_url).await?;
    let resource: Option<String> = optional_row(
        &database,
        "SELECT fintech_transaction($1::int8, $2::int8) AS resource",
        vec![caller.get().into(), id.get().into()],
    )
    .await?
    .and_then(|row| row.get("resource"));
    let resource = resource.ok_or(FintechError::TransferNotFound)?;
    Ok(raw_json_reply(StatusCode::OK, resource))
}
