//! `GET /fintech/audit` (operator only): whether the books balance, from one SQL call
//! (`fintech_audit`, sql/functions/25_ledger_audit.sql). An unclean report is also logged at
//! error level, so an alert can fire on the log without anyone reading the response.
use http::StatusCode;
use serde_json::{Value, json};
use shared::db::{column, optional_row};
use shared::request_log::{self, LogLevel};
use shared::response::raw_json_reply;
use shared::{ApiError, Reply};
use spin_sdk::http::Request;

use crate::deposit::authenticate_operator;
use crate::error::FintechError;
use crate::settings::Settings;

/// Longest list of offending ids the report carries per check: enough to start an
/// investigation, bounded so a badly broken ledger still answers quickly.
const LISTED_MAX: i32 = 100;

pub async fn audit(settings: &Settings, request: Request) -> Result<Reply, FintechError> {
    authenticate_operator(settings, request.headers())?;
    let database = shared::db::connect(&settings.database_url).await?;
    let row = optional_row(&database, "SELECT fintech_audit($1::int4) AS report", vec![LISTED_MAX.into()])
        .await?
        .ok_or_else(|| ApiError::internal("fintech_audit returned no row"))?;
    let report: String = column(&row, "report")?;
    let parsed: Value = serde_json::from_str(&report).map_err(ApiError::internal)?;
    if parsed["clean"] != json!(true) {
        request_log::event(
            LogLevel::Error,
            &[
                ("message", json!("ledger audit found inconsistencies")),
                ("request_id", json!(request_log::current_request_id())),
                ("report", parsed),
            ],
        );
    }
    Ok(raw_json_reply(StatusCode::OK, report))
}
