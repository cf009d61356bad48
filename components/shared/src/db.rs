//! Postgres through Spin's outbound interface.
//!
//! Statements are one per call (Spin prepares each), and every operation that writes runs as a
//! single statement or SQL function call, so no transaction ever spans calls across the wasm
//! boundary and none can be left open on a pooled connection.
//!
//! The calls are the interface's synchronous ones: a request runs one statement at a time, so
//! the asynchronous variants bought nothing, while each costs a subtask (and a query a row
//! stream and a result future) on both sides of the boundary: bench/users-me.sh measured the
//! host's CPU for one query at 87-92 us with these calls against 120-125 us with those.
//! Under Spin a synchronous query reports an error the server raised while it ran (a constraint,
//! a deadlock) as text, its SQLSTATE only in the text; so no caller decides anything on a query's
//! SQLSTATE (a conflict is an outcome the SQL answers, not an error it raises), and only
//! [`failure`] reads it from the text, to tell a retryable failure from a bug.
use std::rc::Rc;
use std::time::Instant;

use spin_sdk::pg::wit::postgres as wit;
use spin_sdk::pg::{self, DbValue, Decode, ParameterValue, PgError, QueryError};

use crate::{ApiError, request_log};

/// A failed call. Boxed: Spin's error is large, and it is the rare path.
pub type Error = Box<pg::Error>;

/// A (pooled) connection to the database.
pub struct Connection(wit::Connection);

/// One row of a query's answer; its values are read by column name.
pub struct Row {
    columns: Rc<[String]>,
    values: Vec<DbValue>,
}

impl Row {
    /// The column's value, or `None` when there is no such column or its value is not a `T`.
    pub fn get<T: Decode>(&self, column: &str) -> Option<T> {
        let index = self.columns.iter().position(|name| name == column)?;
        T::decode(self.values.get(index)?).ok()
    }
}

/// Opens a (pooled) connection; an unreachable database is a retryable 503.
pub fn connect(url: &str) -> Result<Connection, ApiError> {
    let started = Instant::now();
    let connection = wit::Connection::open(url);
    request_log::note_database_time(started.elapsed());
    connection.map(Connection).map_err(|error| ApiError::unavailable("postgres", describe(&pg::Error::PgError(error))))
}

/// Runs a query and returns all its rows.
pub fn rows(connection: &Connection, statement: &str, params: Vec<ParameterValue>) -> Result<Vec<Row>, Error> {
    let started = Instant::now();
    let row_set = connection.0.query(statement, &params);
    request_log::note_database_time(started.elapsed());
    let row_set = row_set.map_err(|error| Box::new(pg::Error::PgError(error)))?;
    let columns: Rc<[String]> = row_set.columns.into_iter().map(|column| column.name).collect();
    Ok(row_set.rows.into_iter().map(|values| Row { columns: Rc::clone(&columns), values }).collect())
}

/// Runs a statement whose rows nobody reads.
pub fn execute(connection: &Connection, statement: &str, params: Vec<ParameterValue>) -> Result<(), Error> {
    let started = Instant::now();
    let outcome = connection.0.execute(statement, &params);
    request_log::note_database_time(started.elapsed());
    outcome.map(drop).map_err(|error| Box::new(pg::Error::PgError(error)))
}

/// Runs a query expected to return at most one row.
pub fn optional_row(
    connection: &Connection,
    statement: &str,
    params: Vec<ParameterValue>,
) -> Result<Option<Row>, Error> {
    Ok(rows(connection, statement, params)?.into_iter().next())
}

/// Maps a database failure nobody handled more specifically: lost connectivity, an overloaded
/// server or a statement a retry may well not meet again (a deadlock) is a retryable 503,
/// anything else a logged 500.
pub fn failure(error: Error) -> ApiError {
    if is_retryable(&error) {
        ApiError::unavailable("postgres", describe(&error))
    } else {
        ApiError::internal(format!("postgres: {}", describe(&error)))
    }
}

/// Reads a column that the statement guarantees (e.g. a function's declared result).
pub fn column<T: pg::Decode>(row: &Row, name: &str) -> Result<T, ApiError> {
    row.get(name).ok_or_else(|| ApiError::internal(format!("column {name} missing or of another type")))
}

fn is_retryable(error: &pg::Error) -> bool {
    let pg::Error::PgError(error) = error else { return false };
    match error {
        PgError::ConnectionFailed(_) => true,
        PgError::QueryFailed(QueryError::DbError(db_error)) => is_retryable_sqlstate(&db_error.code),
        // A text error without a SQLSTATE is an I/O or protocol failure.
        PgError::QueryFailed(QueryError::Text(text)) => sqlstate_in_text(text).is_none_or(is_retryable_sqlstate),
        _ => false,
    }
}

/// 08: connection exception; 53: insufficient resources (too many connections, memory, disk);
/// 57P0x: server shutting down; 57014: statement cancelled (a timeout); 40001, 40P01: a
/// serialization failure, a deadlock; 55P03: a lock not available. Each request is one
/// transaction, so a retry starts afresh.
fn is_retryable_sqlstate(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P0")
        || ["57014", "40001", "40P01", "55P03"].contains(&code)
}

/// The SQLSTATE in a synchronous query's text error. Spin's `query` reports an error the server
/// raised while the rows were read as the debug form of the interface's error, whose `db-error`
/// record reads `code: "40P01"`; the record's other strings escape their quotes there, so the
/// first unescaped `code: "` is that field. `None` when there is none (an I/O failure).
fn sqlstate_in_text(text: &str) -> Option<&str> {
    const FIELD: &str = "code: \"";
    let start = text.find(FIELD)? + FIELD.len();
    let code = text.get(start..start + 5)?;
    let closed = text[start + 5..].starts_with('"');
    (closed && code.bytes().all(|byte| byte.is_ascii_alphanumeric())).then_some(code)
}

fn describe(error: &pg::Error) -> String {
    match error {
        pg::Error::PgError(PgError::QueryFailed(QueryError::DbError(db_error))) => {
            format!("{} (SQLSTATE {})", db_error.message, db_error.code)
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spin_sdk::pg::wit::postgres::DbError;

    /// A query's error as Spin's synchronous `query` (and the local host) report it: the debug
    /// form of the interface's error, as text.
    fn reported_as_text(code: &str, message: &str) -> pg::Error {
        let db_error = DbError {
            as_text: format!("db error: ERROR: {message} code: \"{code}\""),
            severity: "ERROR".to_owned(),
            code: code.to_owned(),
            message: message.to_owned(),
            detail: Some("code: \"40P01\"".to_owned()),
            extras: vec![("constraint".to_owned(), "code: \"08006\"".to_owned())],
        };
        let text = format!("{:?}", PgError::QueryFailed(QueryError::DbError(db_error)));
        pg::Error::PgError(PgError::QueryFailed(QueryError::Text(text)))
    }

    #[test]
    fn a_sqlstate_reported_as_text_tells_a_retryable_failure_from_a_bug() {
        assert!(is_retryable(&reported_as_text("40P01", "deadlock detected")));
        assert!(is_retryable(&reported_as_text("57014", "canceling statement due to statement timeout")));
        assert!(!is_retryable(&reported_as_text("23514", "new row violates check constraint")));
        assert!(!is_retryable(&reported_as_text("P0001", "a forged code: \"40001\" in a message")));
        // As the local host's `query` wrote one (tests/suite/host/postgres.rs has it made), cut short.
        let host_form = r#"Error::QueryFailed(QueryError::DbError(DbError { as-text: "Error { kind: Db, cause: Some(DbError { severity: \"ERROR\", code: SqlState(E40P01), message: \"deadlock detected\" }) }", severity: "ERROR", code: "40P01", message: "deadlock detected", detail: None, extras: [] }))"#;
        assert_eq!(sqlstate_in_text(host_form), Some("40P01"));
        let io = pg::Error::PgError(PgError::QueryFailed(QueryError::Text("connection closed".to_owned())));
        assert!(is_retryable(&io));
    }
}
