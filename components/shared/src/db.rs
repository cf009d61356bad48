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
//! a deadlock) as text, without its SQLSTATE; so no caller decides anything on a query's SQLSTATE
//! (a conflict is an outcome the SQL answers, not an error it raises).
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

/// Maps a database failure nobody handled more specifically: lost connectivity or an overloaded
/// server is a retryable 503, anything else a logged 500.
pub fn failure(error: Error) -> ApiError {
    if is_unavailable(&error) {
        ApiError::unavailable("postgres", describe(&error))
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
        // Text errors are I/O and protocol failures, or (from a query) an error the server raised
        // while the statement ran, which a retry may well not meet again (a deadlock, a
        // serialization failure): the request holds no transaction across calls, so a retry is safe.
        pg::Error::PgError(PgError::QueryFailed(QueryError::Text(_))) => true,
        pg::Error::PgError(PgError::QueryFailed(QueryError::DbError(db_error))) => {
            let code = db_error.code.as_str();
            // 08: connection exception; 57P0x: server shutting down; 53300: too many connections.
            code.starts_with("08") || code.starts_with("57P0") || code == "53300"
        }
        _ => false,
    }
}

fn describe(error: &pg::Error) -> String {
    match error {
        pg::Error::PgError(PgError::QueryFailed(QueryError::DbError(db_error))) => {
            format!("{} (SQLSTATE {})", db_error.message, db_error.code)
        }
        other => other.to_string(),
    }
}
