//! `spin:postgres@4.2.0`: value conversions, connections, transactions and errors.

use std::time::Duration;

use serde_json::{Value, json};

use sendinchat_tests::processes::{HostProcess, TestServices};
use sendinchat_tests::wait;

use sendinchat_tests::metrics::try_sample;

use super::metrics::scrape;
use super::{conformance_options, get_json, own_host, shared_app};

fn probe(path: &str) -> Value {
    let (status, body) = get_json(&shared_app().url(&format!("/probe/pg/{path}")));
    assert_eq!(status, 200, "{path}: {body}");
    body
}

#[test]
fn every_value_type_round_trips_exactly() {
    let body = probe("types");
    let values: Vec<&str> = body["values"].as_array().expect("values").iter().map(|v| v.as_str().unwrap()).collect();
    let expected = [
        "boolean:true",
        "int16:-7",
        "int32:42",
        "int64:9007199254740993",
        "floating32:1.5",
        "floating64:-2.25",
        "str:héllo",
        "binary:0001ff",
        "date:2024-2-29",
        "time:13:14:15.123456000",
        "datetime:2024-2-29 13:14:15.123456000",
        "uuid:6f9619ff-8b86-d011-b42d-00c04fc964ff",
        "jsonb:{\"a\":[1,2]}",
        // NUMERIC keeps every digit and its scale.
        "decimal:12345678901234567890.123456789",
        "decimal:1.50",
        // Postgres normalises (1,10] to [2,11).
        "range-int32:[2,11)",
        "range-int64:[-5,inf)",
        "range-decimal:[1.5,2.25)",
        "array-int32:[1,null,3]",
        "array-int64:[9223372036854775807]",
        "array-decimal:[1.10,null]",
        "array-str:[a,null]",
        "interval:3m2d1500000us",
        "null",
        "null",
        "null",
        "datetime:1970-1-2 0:0:0.0",
        "str:pad  ",
        "str:x",
        "unsupported:022000047f000001",
    ];
    assert_eq!(values, expected);
    let columns = body["columns"].as_array().expect("columns");
    assert_eq!(columns[13], "n_big:DbDataType::Decimal");
    assert_eq!(columns[23], "null_text:DbDataType::Str");
    assert_eq!(columns[29], "other:DbDataType::Other(\"inet\")");
}

#[test]
fn reading_a_timestamptz_column_fails_as_under_spin() {
    let body = probe("timestamptz");
    assert_eq!(body["error"]["kind"], "query-failed", "{body}");
    let text = body["error"]["text"].as_str().unwrap();
    assert!(text.contains("timestamptz"), "{text}");
    assert!(!text.contains("Stack backtrace"), "host backtraces must not reach guests: {text}");
    // Spin's synchronous `query` gives the text of the error its row stream gave, wrapped again.
    let whole = probe("timestamptz/sync");
    assert_eq!(whole["error"]["kind"], "query-failed", "{whole}");
    let text = whole["error"]["text"].as_str().unwrap();
    assert!(text.starts_with("Error::QueryFailed(QueryError::Text(") && text.contains("timestamptz"), "{text}");
}

/// A row the guest cannot take ends its query with an error, and the rest of the result is read
/// and dropped, so the statement is finished and its connection used again (left unread, the
/// statement counted as unfinished: the connection was cancelled and closed, with a warning).
#[test]
fn a_row_the_guest_cannot_take_leaves_its_connection_usable() {
    let host = private_host();
    for _ in 0..2 {
        let body = probe_when_idle(&host, "timestamptz");
        assert_eq!(body["error"]["kind"], "query-failed", "{body}");
    }
    probe_when_idle(&host, "echo/1");
    assert!(!host.log().contains("left a Postgres statement unfinished"), "{}", host.log());
}

#[test]
fn statements_on_one_connection_form_one_transaction() {
    let body = probe("transaction");
    let pids = body["pids"].as_array().unwrap();
    assert_eq!(pids[0], pids[1], "{body}");
    assert_eq!(body["rows_inside"], 2);
    assert_eq!(body["rows_after_rollback"], 0);
}

#[test]
fn a_database_error_carries_its_sqlstate() {
    let body = probe("unique-violation");
    assert_eq!(body["error"]["kind"], "db-error", "{body}");
    assert_eq!(body["error"]["code"], "23505");
    assert_eq!(body["error"]["severity"], "ERROR");
    let extras = body["error"]["extras"].as_array().unwrap();
    assert!(extras.contains(&json!(["constraint", "probe_unique_pkey"])), "{body}");
}

/// Spin's synchronous `query` reports an error the statement raised while its rows were read as
/// text, its SQLSTATE lost; `query-async` keeps it. A guest using `query` must meet here what it
/// would meet under Spin.
#[test]
fn an_error_raised_while_a_query_runs_keeps_its_sqlstate_only_in_query_async() {
    let streamed = probe("unique-violation/query/async");
    assert_eq!(streamed["error"]["kind"], "db-error", "{streamed}");
    assert_eq!(streamed["error"]["code"], "23505");
    let whole = probe("unique-violation/query/sync");
    assert_eq!(whole["error"]["kind"], "query-failed", "{whole}");
    assert!(whole["error"]["text"].as_str().unwrap().contains("23505"), "{whole}");
}

/// A result without rows still names its columns (Spin 4.1 describes them from the statement).
#[test]
fn a_result_without_rows_names_its_columns() {
    for call in ["async", "sync"] {
        let body = probe(&format!("no-rows/{call}"));
        assert_eq!(body["columns"], json!(["one:DbDataType::Int32", "two:DbDataType::Str"]), "{call}: {body}");
    }
}

#[test]
fn an_undeclared_database_host_is_refused() {
    let body = probe("undeclared");
    assert_eq!(body["error"]["kind"], "connection-failed", "{body}");
    assert_eq!(body["error"]["text"], "address postgres://127.0.0.2:5432 is not permitted");
    // The declared database by name, but another address to dial.
    let body = probe("undeclared/hostaddr");
    assert_eq!(body["error"]["kind"], "connection-failed", "{body}");
    let text = body["error"]["text"].as_str().unwrap_or_default();
    assert!(text.starts_with("address postgres://127.0.0.2:") && text.ends_with(" is not permitted"), "{body}");
}

/// Results around the host's read-ahead (4 rows read at once, longer ones by a task) and far past
/// it, each whole and in order, and each cut short by an error after the rows before it.
#[test]
fn query_async_streams_results_of_every_length() {
    for count in [0_i64, 1, 4, 5, 6, 20_000] {
        let body = probe(&format!("stream/{count}"));
        assert_eq!((&body["rows"], &body["sum"]), (&json!(count), &json!(count * (count + 1) / 2)), "{body}");
        assert_eq!(body["error"], Value::Null, "{body}");
    }
    for failing_row in [1_i64, 4, 5, 6, 19_999] {
        let body = probe(&format!("stream/20000/failing-at/{failing_row}"));
        let read = failing_row - 1;
        assert_eq!((&body["rows"], &body["sum"]), (&json!(read), &json!(read * (read + 1) / 2)), "{body}");
        assert_eq!(body["error"]["code"], "22012", "division by zero ends the stream: {body}");
    }
}

/// `query-async` answers once the first row is in, as Spin does, without waiting for more: here
/// the next rows wait for a lock the guest releases only after it has the first.
#[test]
fn query_async_answers_with_the_first_row_when_the_next_are_slow() {
    let body = probe("first-row-then-blocked");
    assert_eq!(body["rows"], 4, "{body}");
}

#[test]
fn a_connection_released_inside_a_transaction_is_rolled_back_with_a_warning() {
    let host = own_host();
    let (status, body) = get_json(&format!("{}/probe/pg/leak", host.base_url()));
    assert_eq!((status, body["left_open"].clone()), (200, json!(true)));
    host.wait_for_log(
        "component \"probe\" released a Postgres connection inside an open transaction; rolled it back",
        Duration::from_secs(10),
    )
    .unwrap();
    // The rolled-back connection is reused cleanly: a transaction on it starts afresh.
    let (_, body) = get_json(&format!("{}/probe/pg/transaction", host.base_url()));
    assert_eq!(body["rows_after_rollback"], 0, "{body}");
}

#[test]
fn two_hundred_concurrent_requests_are_all_answered_correctly() {
    let base_url = shared_app().base_url().to_owned();
    let requests: Vec<_> = (0..200)
        .map(|number| {
            let url = format!("{base_url}/probe/pg/echo/{number}");
            std::thread::spawn(move || (number, get_json(&url)))
        })
        .collect();
    for request in requests {
        let (number, (status, body)) = request.join().expect("request thread");
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["echo"], format!("int32:{number}"), "{body}");
    }
}

/// A host of its own, so that consecutive requests reuse one pooled connection (the pool hands
/// out the connection returned last).
fn private_host() -> HostProcess {
    let options = conformance_options(None).expect("options").arg("--metrics-listen").arg("127.0.0.1:0");
    HostProcess::start(&options).expect("conformance host")
}

fn probe_on(host: &HostProcess, path: &str) -> Value {
    let (status, body) = get_json(&format!("{}/probe/pg/{path}", host.base_url()));
    assert_eq!(status, 200, "{path}: {body}; host log:\n{}", host.log());
    body
}

#[test]
fn no_session_state_leaks_to_the_next_user_of_a_connection() {
    let host = private_host();
    let clean = probe_when_idle(&host, "session/inspect");
    let states = ["settings", "temp-table", "advisory-lock", "listen", "cursor", "sequence"];
    let mut transactions_left = 0;
    for state in states.into_iter().chain(["transaction", "transaction-after-comment"]) {
        let left = probe_when_idle(&host, &format!("session/leave/{state}"));
        assert!(left["error"].is_null(), "{state}: {left}");
        if state.starts_with("transaction") {
            // Cleaned at once rather than by the next user; wait until it is back in the pool.
            transactions_left += 1;
            let cleaned = wait::until(Duration::from_secs(10), || {
                let warnings = host.log().matches("released a Postgres connection inside an open transaction").count();
                (warnings == transactions_left).then_some(())
            });
            cleaned.unwrap_or_else(|| panic!("{state}: no cleaning warning; log:\n{}", host.log()));
        }
        let seen = probe_when_idle(&host, "session/inspect");
        assert_eq!(seen["pid"], left["pid"], "{state}: the next request must reuse the connection: {seen}");
        assert_eq!(seen["values"], clean["values"], "{state} leaked: {seen}");
        // 55000: currval is not yet defined in this session (42P01 before the sequence exists).
        assert!(["55000", "42P01"].contains(&seen["sequence_currval"].as_str().unwrap()), "{state}: {seen}");
    }
}

/// `probe_on` once every connection `host` has open is idle in its pool, so the request reuses one
/// rather than opening another: a connection comes back a moment after its request's answer (its
/// instance drops it), and one cleaned when given back (its user began a transaction block, or
/// took an advisory lock) only once cleaned.
fn probe_when_idle(host: &HostProcess, path: &str) -> Value {
    let idle = wait::until(Duration::from_secs(10), || {
        let text = scrape(host);
        // Before its first connection the host has no pool, and so no such series.
        let count = |name: &str| try_sample(&text, name, &[]).unwrap_or(0.0);
        let open = count("sendinchat_host_postgres_connections_open");
        (count("sendinchat_host_postgres_connections_idle") == open).then_some(())
    });
    idle.unwrap_or_else(|| panic!("the host's connections did not all become idle; log:\n{}", host.log()));
    probe_on(host, path)
}

#[test]
fn cached_statements_survive_schema_changes_and_failures() {
    let services = TestServices::from_env();
    let mut database =
        postgres::Client::connect(&services.database("host_conformance").unwrap(), postgres::NoTls).unwrap();
    database.batch_execute("DROP TABLE IF EXISTS probe_altered").unwrap();
    let host = private_host();
    let missing = probe_when_idle(&host, "statement/select-star");
    assert_eq!(missing["error"]["code"], "42P01", "a statement that failed to prepare: {missing}");
    database.batch_execute("CREATE TABLE probe_altered (a int); INSERT INTO probe_altered VALUES (1)").unwrap();
    let first = probe_when_idle(&host, "statement/select-star");
    assert_eq!(first["columns"], json!(["a"]), "the failure was not cached: {first}");
    database.batch_execute("ALTER TABLE probe_altered ADD COLUMN b int").unwrap();
    // Inside a transaction block the cache is bypassed: a stale statement's failure there would
    // have aborted the guest's transaction.
    let in_transaction = probe_when_idle(&host, "statement/select-star/in-transaction");
    assert_eq!(in_transaction["pid"], first["pid"], "same connection: {in_transaction}");
    assert_eq!(in_transaction["columns"], json!(["a", "b"]), "{in_transaction}");
    let altered = probe_when_idle(&host, "statement/select-star");
    assert_eq!(altered["pid"], first["pid"], "same connection, so the statement was cached: {altered}");
    assert_eq!(altered["columns"], json!(["a", "b"]), "re-prepared after the result type changed: {altered}");
    database.batch_execute("DROP TABLE probe_altered").unwrap();
}

/// A cached statement keeps the parameter types Postgres inferred for the session that prepared
/// it; the next user's session (here its own temporary table) may infer others, as it would under
/// Spin, which prepares every call.
#[test]
fn a_cached_statement_takes_the_parameter_types_of_the_session_that_runs_it() {
    let host = private_host();
    let narrow = probe_when_idle(&host, "statement/typed/int4");
    assert_eq!(narrow["count"], 0, "{narrow}");
    let wide = probe_when_idle(&host, "statement/typed/int8");
    assert_eq!(wide["pid"], narrow["pid"], "the next request must reuse the connection: {wide}");
    assert_eq!(wide["count"], 0, "{wide}");
}

#[test]
fn statements_deallocated_by_the_guest_are_prepared_again() {
    let host = private_host();
    let body = probe_on(&host, "statement/deallocate-then-select");
    assert!(body["error"].is_null(), "{body}");
    assert_eq!(body["pid"], body["pid_again"]);
}

/// A component keeps at most 16 pools (one per connection string), as Spin's pool cache: a guest
/// varying its connection string (here `application_name`) cannot keep an idle connection per
/// string until Postgres refuses every client.
#[test]
fn a_component_keeps_at_most_sixteen_connection_pools() {
    const POOLS_MAX: i64 = 16;
    let host = private_host();
    let run = std::process::id();
    for index in 0..24 {
        let body = probe_on(&host, &format!("connect-as/probe_pool_{run}_{index}"));
        assert!(body["error"].is_null(), "{body}");
    }
    let mut database =
        postgres::Client::connect(&TestServices::from_env().database("host_conformance").unwrap(), postgres::NoTls)
            .unwrap();
    let pattern = format!("probe\\_pool\\_{run}\\_%");
    let open = wait::until(Duration::from_secs(10), || {
        let open: i64 = database
            .query_one("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE $1", &[&pattern])
            .unwrap()
            .get(0);
        (open <= POOLS_MAX).then_some(open)
    });
    assert!(open.is_some(), "more than {POOLS_MAX} pools keep their connections; host log:\n{}", host.log());
    let latest = probe_on(&host, &format!("connect-as/probe_pool_{run}_23"));
    assert!(latest["error"].is_null(), "the latest pool still serves: {latest}");
}

/// A session-level advisory lock a request leaves taken is released when its connection is given
/// back, not when the connection is next used: the pool hands out the connection returned last,
/// so one returned earlier may sit idle long, and another backend waiting for the lock with it.
#[test]
fn an_advisory_lock_left_taken_is_released_with_its_connection() {
    let host = private_host();
    let left = probe_on(&host, "session/leave/advisory-lock");
    assert!(left["error"].is_null(), "{left}");
    let mut database =
        postgres::Client::connect(&TestServices::from_env().database("host_conformance").unwrap(), postgres::NoTls)
            .unwrap();
    let pid = left["pid"].as_i64().unwrap() as i32;
    let released = wait::until(Duration::from_secs(10), || {
        let held: i64 = database
            .query_one("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = $1", &[&pid])
            .unwrap()
            .get(0);
        (held == 0).then_some(())
    });
    assert!(released.is_some(), "backend {pid} still holds the lock its last user left taken");
}
