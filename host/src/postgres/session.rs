//! One physical Postgres connection and what the pool knows about its session: the statements it
//! has prepared, and whether it must be reset before its next user runs anything.
//!
//! Isolation is Spin's: nothing a user did to the session (settings, temporary tables, advisory
//! locks, LISTEN, cursors, sequence state, an open transaction) is seen by the next user. Spin's
//! pool (deadpool-postgres, `RecyclingMethod::Clean`) resets a connection when it is next checked
//! out, in a round trip of its own before the guest's first statement. Here the reset is sent
//! in the same write as the next user's first statement, so it costs no round trip; a session
//! whose user began a transaction block or took a session-level advisory lock is cleaned at once
//! instead (see `pool`), so neither a transaction left open nor a lock left taken is held while
//! the connection sits idle (the idle list is last in, first out: it may sit there long).
//!
//! A user stopped in the middle of a statement (its instance killed at the request deadline) or
//! that stopped reading a statement's rows leaves the statement running on the server, holding
//! its locks, with the next user's statements queued behind it on the connection. Such a
//! connection's statement is cancelled and the connection closed: a cancel is a signal the server
//! acts on when it arrives, which may be after the statement ended on its own, so on a reused
//! connection it could cancel the next user's statement instead.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::ThreadId;

use futures::Stream;

use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, WrongType};
use tokio_postgres::{Client, Error, NoTls, Row, RowStream, Statement};

use super::pool_metrics::PoolMetrics;
use super::statement_cache::{STATEMENTS_PER_CONNECTION_MAX, StatementCache};

/// What Spin's pool runs on a recycled connection: session settings, cursors, listeners, advisory
/// locks and temporary objects are reset, while prepared statements and cached plans survive
/// (unlike `DISCARD ALL`), so neither the statement cache nor SQL functions' plans are lost.
const RESET_SESSION: &str = "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; UNLISTEN *; \
    SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES;";

/// Parameters as the guest's values were converted.
pub type Parameters = [Box<dyn ToSql + Send + Sync>];

pub struct Session {
    client: Client,
    /// The thread whose runtime drives the connection's task.
    driver_thread: ThreadId,
    statements: Mutex<StatementCache>,
    /// The previous user ran statements and the session has not been reset since.
    reset_pending: AtomicBool,
    /// The current user has run a statement.
    used: AtomicBool,
    /// The current user began a transaction block (which may still be open).
    transaction_block_begun: AtomicBool,
    /// The current user may have taken a session-level advisory lock (which may still be held).
    session_lock_taken: AtomicBool,
    /// The reset a previous user left pending failed: the session may still hold that user's
    /// state, and is closed when given back.
    reset_failed: AtomicBool,
    /// Statements sent whose answers have not been read to their end (a guest may start a query
    /// before it has read the rows of another).
    statements_unfinished: Arc<AtomicUsize>,
    /// "There is no transaction in progress" warnings the server has sent on this connection,
    /// which tell a cleanup's ROLLBACK whether a transaction was open.
    no_transaction_warnings: std::sync::Arc<AtomicU64>,
    metrics: std::sync::Arc<PoolMetrics>,
}

/// How one statement is run.
enum Call {
    Query,
    Execute,
}

enum Outcome {
    Rows(RowStream, Statement),
    Count(u64),
}

/// What a connection needs before its next user, once its user gave it back.
pub enum Release {
    /// Nothing now: the reset goes out with the next user's first statement.
    Idle,
    /// A clean now: its user began a transaction block, which may still be open, or may hold
    /// a session-level advisory lock.
    Clean,
    /// Its user left a statement unfinished: cancel it and close the connection.
    Cancel,
    /// Its session could not be reset: close the connection.
    Close,
}

/// A query's rows; reading them to their end (or to an error) finishes the statement.
pub struct Rows {
    stream: Pin<Box<RowStream>>,
    /// Describes the columns, also of a result without rows (as Spin 4.1 does).
    statement: Statement,
    /// The session's count, until this statement is counted out.
    statements_unfinished: Option<Arc<AtomicUsize>>,
}

impl Rows {
    pub fn columns(&self) -> &[tokio_postgres::Column] {
        self.statement.columns()
    }
}

impl Stream for Rows {
    type Item = Result<Row, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = std::task::ready!(self.stream.as_mut().poll_next(cx));
        if !matches!(next, Some(Ok(_)))
            && let Some(count) = self.statements_unfinished.take()
        {
            count.fetch_sub(1, Ordering::SeqCst);
        }
        Poll::Ready(next)
    }
}

impl Session {
    pub fn new(
        client: Client,
        driver_thread: ThreadId,
        no_transaction_warnings: std::sync::Arc<AtomicU64>,
        metrics: std::sync::Arc<PoolMetrics>,
    ) -> Self {
        metrics.open.inc();
        Self {
            client,
            driver_thread,
            statements: Mutex::new(StatementCache::new(STATEMENTS_PER_CONNECTION_MAX)),
            reset_pending: AtomicBool::new(false),
            used: AtomicBool::new(false),
            transaction_block_begun: AtomicBool::new(false),
            session_lock_taken: AtomicBool::new(false),
            reset_failed: AtomicBool::new(false),
            statements_unfinished: Arc::new(AtomicUsize::new(0)),
            no_transaction_warnings,
            metrics,
        }
    }

    pub fn driver_thread(&self) -> ThreadId {
        self.driver_thread
    }

    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    pub async fn query_raw(&self, text: &str, params: &Parameters) -> Result<Rows, Error> {
        self.statements_unfinished.fetch_add(1, Ordering::SeqCst);
        match self.run(text, params, Call::Query).await {
            Ok(Outcome::Rows(stream, statement)) => Ok(Rows {
                stream: Box::pin(stream),
                statement,
                statements_unfinished: Some(self.statements_unfinished.clone()),
            }),
            Ok(Outcome::Count(_)) => unreachable!("a query call returns rows"),
            Err(error) => {
                self.statements_unfinished.fetch_sub(1, Ordering::SeqCst);
                Err(error)
            }
        }
    }

    pub async fn execute(&self, text: &str, params: &Parameters) -> Result<u64, Error> {
        self.statements_unfinished.fetch_add(1, Ordering::SeqCst);
        let outcome = self.run(text, params, Call::Execute).await;
        self.statements_unfinished.fetch_sub(1, Ordering::SeqCst);
        match outcome? {
            Outcome::Count(count) => Ok(count),
            Outcome::Rows(..) => unreachable!("an execute call returns a count"),
        }
    }

    /// Called when the user gives the connection back: what it needs before its next user.
    pub fn release(&self) -> Release {
        if self.used.swap(false, Ordering::SeqCst) {
            self.reset_pending.store(true, Ordering::SeqCst);
        }
        let transaction_block_begun = self.transaction_block_begun.swap(false, Ordering::SeqCst);
        let session_lock_taken = self.session_lock_taken.swap(false, Ordering::SeqCst);
        if self.reset_failed.load(Ordering::SeqCst) {
            Release::Close
        } else if self.statements_unfinished.load(Ordering::SeqCst) > 0 {
            Release::Cancel
        } else if transaction_block_begun || session_lock_taken {
            Release::Clean
        } else {
            Release::Idle
        }
    }

    /// Asks the server to cancel the statement it is running for this session, if any.
    pub async fn cancel_statement(&self) -> Result<(), Error> {
        self.client.cancel_token().cancel_query(NoTls).await
    }

    /// Rolls back any open transaction and resets the session now. Returns whether a
    /// transaction was open.
    pub async fn clean(&self) -> Result<bool, Error> {
        let warnings_before = self.no_transaction_warnings.load(Ordering::SeqCst);
        let (rollback, reset) = futures::join!(self.client.simple_query("ROLLBACK"), self.reset());
        rollback?;
        reset?;
        self.reset_pending.store(false, Ordering::SeqCst);
        let warnings_after = self.no_transaction_warnings.load(Ordering::SeqCst);
        Ok(warnings_after == warnings_before)
    }

    async fn run(&self, text: &str, params: &Parameters, call: Call) -> Result<Outcome, Error> {
        self.used.store(true, Ordering::SeqCst);
        if begins_transaction_block(text) {
            self.transaction_block_begun.store(true, Ordering::SeqCst);
        }
        if takes_session_lock(text) {
            self.session_lock_taken.store(true, Ordering::SeqCst);
        }
        let first = self.after_pending_reset(self.prepare_and_call(text, params, &call)).await;
        match first {
            Err(error) if is_stale_statement(&error) || is_wrong_parameter_type(&error) => {
                self.forget_stale(text, &error);
                match self.prepare_and_call(text, params, &call).await {
                    // Inside a transaction the stale statement's failure has already aborted it,
                    // so the retry fails for that reason; the first error is the one to report.
                    Err(retry_error) if retry_error.code() == Some(&SqlState::IN_FAILED_SQL_TRANSACTION) => Err(error),
                    retried => retried,
                }
            }
            other => other,
        }
    }

    async fn prepare_and_call(&self, text: &str, params: &Parameters, call: &Call) -> Result<Outcome, Error> {
        let statement = self.prepared(text).await?;
        let params = params.iter().map(|param| param.as_ref() as &(dyn ToSql + Sync));
        match call {
            Call::Query => self.client.query_raw(&statement, params).await.map(|rows| Outcome::Rows(rows, statement)),
            Call::Execute => self.client.execute_raw(&statement, params).await.map(Outcome::Count),
        }
    }

    /// The statement from the cache, or prepared now and cached once the server accepted it.
    /// Inside a transaction block the cache is bypassed: there a stale cached statement's
    /// failure would abort the user's transaction, where Spin, preparing each call, succeeds.
    async fn prepared(&self, text: &str) -> Result<Statement, Error> {
        if self.transaction_block_begun.load(Ordering::SeqCst) {
            return self.client.prepare(text).await;
        }
        if let Some(statement) = self.statements.lock().expect("statement cache poisoned").get(text) {
            self.metrics.statement_cache_hits.inc();
            return Ok(statement);
        }
        self.metrics.statement_cache_misses.inc();
        let statement = self.client.prepare(text).await?;
        self.statements.lock().expect("statement cache poisoned").insert(text, statement.clone());
        Ok(statement)
    }

    fn forget_stale(&self, text: &str, error: &Error) {
        let mut statements = self.statements.lock().expect("statement cache poisoned");
        if error.code() == Some(&SqlState::INVALID_SQL_STATEMENT_NAME) {
            // The user deallocated the session's prepared statements (DEALLOCATE ALL, DISCARD
            // ALL): none of the cached ones exists any more.
            statements.clear();
        } else {
            statements.remove(text);
        }
    }

    /// Runs `operation`, preceded in the same write by the reset a previous user left pending.
    async fn after_pending_reset<T>(&self, operation: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
        if !self.reset_pending.swap(false, Ordering::SeqCst) {
            return operation.await;
        }
        // `join!` polls the reset first, so its messages are queued on the connection before the
        // operation's; the server answers them in order.
        let (reset, result) = futures::join!(self.reset(), operation);
        if let Err(error) = reset {
            // The operation went out behind the failed reset and may have run, with the previous
            // user's state; the user is told it failed, the reset goes out again with the user's
            // next statement, and the session is not used again (Spin discards a connection whose
            // recycling failed).
            self.reset_failed.store(true, Ordering::SeqCst);
            self.reset_pending.store(true, Ordering::SeqCst);
            return Err(error);
        }
        result
    }

    /// Resets the session's state. No ROLLBACK here: a user that never began a transaction block
    /// cannot have left one open (`clean` rolls back for those that did), and a ROLLBACK outside a
    /// transaction is one more statement plus a warning the server writes to its log, per request
    /// (bench/users-me.sh: Postgres CPU per `GET /users/me` 159-204 us with it, 119-166 without).
    async fn reset(&self) -> Result<(), Error> {
        self.client.simple_query(RESET_SESSION).await.map(drop)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.metrics.open.dec();
    }
}

/// A statement was prepared before the schema changed under it (its result type changed:
/// "cached plan must not change result type"), or the user deallocated it.
fn is_stale_statement(error: &Error) -> bool {
    match error.code() {
        Some(code) if *code == SqlState::INVALID_SQL_STATEMENT_NAME => true,
        Some(code) if *code == SqlState::FEATURE_NOT_SUPPORTED => {
            error.as_db_error().is_some_and(|db_error| db_error.message().contains("cached plan must not change"))
        }
        _ => false,
    }
}

/// A parameter of a type other than the cached statement's: the statement was prepared for
/// another user, whose session (its `search_path`, its temporary tables) or whose schema made
/// Postgres infer other parameter types. Caught before anything is sent, so preparing again for
/// this user's session (as Spin does on every call) is safe.
fn is_wrong_parameter_type(error: &Error) -> bool {
    std::error::Error::source(error).is_some_and(|source| source.is::<WrongType>())
}

/// Whether `text` may take a session-level advisory lock (`pg_advisory_lock`, `_shared`,
/// `pg_try_advisory_lock`; not the `_xact_` ones, which end with their transaction). A function
/// the statement calls could take one unseen: those are still released by the next user's reset.
fn takes_session_lock(text: &str) -> bool {
    const NAME: &[u8] = b"advisory_lock";
    text.as_bytes().windows(NAME.len()).any(|window| window.eq_ignore_ascii_case(NAME))
}

/// Whether `text` starts a transaction block (`BEGIN`, `START TRANSACTION`), after any leading
/// whitespace and comments. Only a client statement can leave a transaction open past its call:
/// functions and procedures cannot.
fn begins_transaction_block(text: &str) -> bool {
    let keyword: String = skip_to_first_word(text).chars().take_while(char::is_ascii_alphabetic).collect();
    keyword.eq_ignore_ascii_case("begin") || keyword.eq_ignore_ascii_case("start")
}

/// `text` from its first word on: past whitespace, comments and empty statements (Postgres takes
/// `;BEGIN` as one statement, which opens a transaction).
fn skip_to_first_word(mut text: &str) -> &str {
    loop {
        text = text.trim_start_matches(|character: char| character.is_whitespace() || character == ';');
        if let Some(rest) = text.strip_prefix("--") {
            // Postgres ends a line comment at a carriage return as well as at a newline.
            text = rest.split_once(['\n', '\r']).map_or("", |(_, after)| after);
        } else if text.starts_with("/*") {
            text = after_block_comment(text);
        } else {
            return text;
        }
    }
}

/// What follows the block comment at the start of `text`. Postgres nests block comments, so
/// `/* /* */ */ BEGIN` begins a transaction.
fn after_block_comment(mut text: &str) -> &str {
    let mut depth = 0_usize;
    while !text.is_empty() {
        if let Some(rest) = text.strip_prefix("/*") {
            depth += 1;
            text = rest;
        } else if let Some(rest) = text.strip_prefix("*/") {
            depth -= 1;
            text = rest;
            if depth == 0 {
                return text;
            }
        } else {
            let mut characters = text.chars();
            characters.next();
            text = characters.as_str();
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_statements_that_begin_a_transaction_block() {
        for text in
            ["BEGIN", "begin isolation level serializable", "  START TRANSACTION", "-- why\nBEGIN", "/* x */ Begin;"]
                .into_iter()
                .chain([
                    ";BEGIN",
                    " ; ;BEGIN ISOLATION LEVEL SERIALIZABLE",
                    "/* /* */ */ BEGIN",
                    "/* a */;/* b */begin",
                    "-- why\rBEGIN",
                ])
        {
            assert!(begins_transaction_block(text), "{text:?}");
        }
        for text in
            ["SELECT 1", "COMMIT", "DO $$ BEGIN PERFORM 1; END $$", "BEGINNING", "/* BEGIN */ SELECT 1", "", "/* open"]
        {
            assert!(!begins_transaction_block(text), "{text:?}");
        }
    }
}
