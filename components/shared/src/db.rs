//! Postgres through Spin's outbound interface.
//!
//! Statements are one per call (Spin prepares each), and every operation that writes runs as a
//! single statement or SQL function call, so no transaction ever spans calls across the wasm
//! boundary and none can be left open on a pooled connection.
use std::time::Instant;

use spin_sdk::pg::{self, Connection, ParameterValue, PgError, QueryError, Row};

use crate::{ApiError, request_log};

pub const UNIQUE_VIOLATION: &str = "23505";

/// Opens a (pooled) connection; an unreachable database is a retryable 503.
pub async fn connect(url: &str) -> Result<Connection, ApiError> {
    let started = Instant::now();
    let connection = Connection::open(url).await;
    request_log::note_database_time(started.elapsed());
    connection.map_err(|error| ApiError::unavailable("postgres", describe(&error)))
}

/// Runs a query and returns all its rows.
pub async fn rows(
    connection: &Connection,
    statement: &str,
    params: Vec<ParameterValue>,
) -> Result<Vec<Row>, pg::Error> {
    let started = Instant::now();
    let rows = async { connection.query(statement, params).await?.collect().await }.await;
    request_log::note_database_time(started.elapsed());
    rows
}

/// Runs a statement whose rows nobody reads.
pub async fn execute(connection: &Connection, statement: &str, params: Vec<ParameterValue>) -> Result<(), pg::Error> {
    let started = Instant::now();
    let outcome = connection.execute(statement, params).await;
    request_log::note_database_time(started.elapsed());
    outcome.map(drop)
}

/// Runs a query expected to return at most one row.
pub async fn optional_row(
    connection: &Connection,
    statement: &str,
    params: Vec<ParameterValue>,
) -> Result<Option<Row>, pg::Error> {
    Ok(rows(connection, statement, params).await?.into_iter().next())
}

/// The SQLSTATE of a failed statement, when Postgres reported one.
pub fn sqlstate(error: &pg::Error) -> Option<&str> {
    match error {
        pg::Error::PgError(PgError::QueryFailed(QueryError::DbError(db_error))) => Some(&db_error.code),
        _ => None,
    }
}

/// Maps a database failure nobody handled more specifically: lost connectivity or an overloaded
/// server is a retryable 503, and so is a transaction the server aborted to break a deadlock or a
/// serialization conflict (the lock order should rule both out; if one happens all the same, the
/// transaction left nothing behind and its retry can succeed, and the request's log line names
/// it). Anything else is a logged 500.
pub fn failure(error: pg::Error) -> ApiError {
    if is_unavailable(&error) {
        ApiError::unavailable("postgres", describe(&error))
    } else if is_transient_conflict(&error) {
        ApiError::retryable(format_args!("postgres aborted the transaction: {}", describe(&error)))
    } else {
        ApiError::internal(format!("postgres: {}", describe(&error)))
    }
}

/// Reads a column that the statement guarantees (e.g. a function's declared result).
pub fn column<T: pg::Decode>(row: &Row, name: &str) -> Result<T, ApiError> {
    row.get(name).ok_or_else(|| ApiError::internal(format!("column {name} missing or of another type")))
}

fn is_unavailable(error: &pg::Error) -> bool {
    match error {
        pg::Error::PgError(PgError::ConnectionFailed(_)) => true,
        // Text errors come from the client, not the server: I/O and protocol failures.
        pg::Error::PgError(PgError::QueryFailed(QueryError::Text(_))) => true,
        pg::Error::PgError(PgError::QueryFailed(QueryError::DbError(db_error))) => {
            let code = db_error.code.as_str();
            // 08: connection exception; 57P0x: server shutting down; 53300: too many connections.
            code.starts_with("08") || code.starts_with("57P0") || code == "53300"
        }
        _ => false,
    }
}

/// 40P01: deadlock detected; 40001: serialization failure. Postgres asks for the transaction to
/// be retried in both.
fn is_transient_conflict(error: &pg::Error) -> bool {
    matches!(sqlstate(error), Some("40P01" | "40001"))
}

fn describe(error: &pg::Error) -> String {
    match error {
        pg::Error::PgError(PgError::QueryFailed(QueryError::DbError(db_error))) => {
            format!("{} (SQLSTATE {})", db_error.message, db_error.code)
        }
        other => other.to_string(),
    }
}
