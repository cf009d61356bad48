//! `/probe/pg/...`: Postgres round trips through `spin:postgres@4.2.0`.

use http::StatusCode;
use serde_json::{Value, json};
use spin_sdk::pg::Interval;
use spin_sdk::pg::{Connection, DbValue, Error, ParameterValue as P, PgError, QueryError, RangeBoundKind};
use spin_sdk::variables;

use crate::Reply;
use crate::describe::describe;

pub async fn handle(path: &[&str]) -> Reply {
    let result = match path {
        ["types"] => types().await,
        ["timestamptz"] => timestamptz().await,
        ["timestamptz", "sync"] => timestamptz_sync().await,
        ["transaction"] => transaction().await,
        ["unique-violation"] => unique_violation().await,
        ["unique-violation", "query", call] => unique_violation_in_query(call).await,
        ["no-rows", call] => no_rows(call).await,
        ["leak"] => leak_transaction().await,
        ["undeclared"] => undeclared("postgres://postgres@127.0.0.2:5432/postgres?sslmode=disable").await,
        ["undeclared", "hostaddr"] => undeclared_hostaddr().await,
        ["connect-as", application_name] => connect_as(application_name).await,
        ["echo", number] => echo(number).await,
        ["first-row-then-blocked"] => first_row_then_blocked().await,
        ["stream", count] => stream(count, "0").await,
        ["stream", count, "failing-at", row] => stream(count, row).await,
        ["hold", milliseconds] => hold_connection(milliseconds).await,
        ["sleep", "sync", milliseconds] => sleep_in_synchronous_query(milliseconds).await,
        ["session", "leave", state] => leave_session_state(state).await,
        ["session", "inspect"] => inspect_session().await,
        ["statement", "select-star"] => select_star(false).await,
        ["statement", "select-star", "in-transaction"] => select_star(true).await,
        ["statement", "typed", column_type] => select_typed(column_type).await,
        ["statement", "deallocate-then-select"] => deallocate_then_select().await,
        _ => {
            return (StatusCode::NOT_FOUND, json!({ "error": "unknown pg probe" }));
        }
    };
    match result {
        Ok(value) => (StatusCode::OK, value),
        Err(error) => (StatusCode::OK, json!({ "error": error_json(&error) })),
    }
}

async fn connect() -> Result<Connection, Error> {
    let address = variables::get("database_url").await.map_err(|e| PgError::Other(format!("{e:?}")))?;
    Connection::open(address).await
}

/// Every value type the WIT defines that the app could use, NULLs included, through one query.
async fn types() -> Result<Value, Error> {
    let connection = connect().await?;
    let (statement, params) = type_round_trip();
    let result = connection.query(statement, params).await?;
    let columns: Vec<String> = result.columns().iter().map(|c| format!("{}:{:?}", c.name, c.data_type)).collect();
    let rows = result.collect().await?;
    let values: Vec<String> = (0..columns.len()).map(|index| describe(&rows[0][index])).collect();
    Ok(json!({ "columns": columns, "values": values }))
}

fn type_round_trip() -> (&'static str, Vec<P>) {
    let statement = "SELECT $1::bool AS b, $2::int2 AS i2, $3::int4 AS i4, $4::int8 AS i8, \
        $5::float4 AS f4, $6::float8 AS f8, $7::text AS t, $8::bytea AS by, $9::date AS d, \
        $10::time AS tm, $11::timestamp AS ts, $12::uuid AS u, $13::jsonb AS j, \
        $14::numeric AS n_big, $15::numeric(12,2) AS n_scale, $16::int4range AS r4, \
        $17::int8range AS r8, $18::numrange AS rn, $19::int4[] AS a4, $20::int8[] AS a8, \
        $21::numeric[] AS an, $22::text[] AS at, $23::interval AS iv, $24::text AS null_text, \
        $25::int8 AS null_int, $26::numeric AS null_numeric, \
        ($27::timestamptz AT TIME ZONE 'UTC') AS from_epoch, 'pad'::char(5) AS padded, \
        'x'::varchar AS vc, '127.0.0.1'::inet AS other";
    let params = vec![
        P::Boolean(true),
        P::Int16(-7),
        P::Int32(42),
        P::Int64(9_007_199_254_740_993),
        P::Floating32(1.5),
        P::Floating64(-2.25),
        P::Str("héllo".to_owned()),
        P::Binary(vec![0, 1, 255]),
        P::Date((2024, 2, 29)),
        P::Time((13, 14, 15, 123_456_000)),
        P::Datetime((2024, 2, 29, 13, 14, 15, 123_456_000)),
        P::Uuid("6f9619ff-8b86-d011-b42d-00c04fc964ff".to_owned()),
        P::Jsonb(br#"{"a": [1, 2]}"#.to_vec()),
        P::Decimal("12345678901234567890.123456789".to_owned()),
        P::Decimal("1.5".to_owned()),
        P::RangeInt32((Some((1, RangeBoundKind::Exclusive)), Some((10, RangeBoundKind::Inclusive)))),
        P::RangeInt64((Some((-5, RangeBoundKind::Inclusive)), None)),
        P::RangeDecimal((
            Some(("1.5".to_owned(), RangeBoundKind::Inclusive)),
            Some(("2.25".to_owned(), RangeBoundKind::Exclusive)),
        )),
        P::ArrayInt32(vec![Some(1), None, Some(3)]),
        P::ArrayInt64(vec![Some(i64::MAX)]),
        P::ArrayDecimal(vec![Some("1.10".to_owned()), None]),
        P::ArrayStr(vec![Some("a".to_owned()), None]),
        P::Interval(Interval { micros: 1_500_000, days: 2, months: 3 }),
        P::DbNull,
        P::DbNull,
        P::DbNull,
        P::Timestamp(86_400),
    ];
    (statement, params)
}

/// Spin cannot read a TIMESTAMPTZ column; neither may the host.
async fn timestamptz() -> Result<Value, Error> {
    let connection = connect().await?;
    let rows = connection.query("SELECT now() AS at", Vec::<P>::new()).await?.collect().await?;
    Ok(json!({ "rows": rows.len() }))
}

/// The same through the synchronous `query`.
async fn timestamptz_sync() -> Result<Value, Error> {
    let connection = connect().await?;
    let rows = connection.into_inner().query("SELECT now() AS at", &[]).map_err(Error::PgError)?.rows;
    Ok(json!({ "rows": rows.len() }))
}

/// BEGIN, work and ROLLBACK issued one call at a time on one connection form one transaction.
async fn transaction() -> Result<Value, Error> {
    let connection = connect().await?;
    connection.execute("CREATE TEMP TABLE probe_transaction (id int)", Vec::<P>::new()).await?;
    let before = backend_pid(&connection).await?;
    connection.execute("BEGIN", Vec::<P>::new()).await?;
    connection.execute("INSERT INTO probe_transaction VALUES (1), (2)", Vec::<P>::new()).await?;
    let inside = count_rows(&connection).await?;
    let during = backend_pid(&connection).await?;
    connection.execute("ROLLBACK", Vec::<P>::new()).await?;
    let after = count_rows(&connection).await?;
    Ok(json!({ "pids": [before, during], "rows_inside": inside, "rows_after_rollback": after }))
}

async fn count_rows(connection: &Connection) -> Result<i64, Error> {
    let rows = connection.query("SELECT count(*) FROM probe_transaction", Vec::<P>::new()).await?.collect().await?;
    Ok(match rows[0][0] {
        DbValue::Int64(count) => count,
        _ => -1,
    })
}

async fn unique_violation() -> Result<Value, Error> {
    let connection = connect().await?;
    connection.execute("CREATE TEMP TABLE probe_unique (id int PRIMARY KEY)", Vec::<P>::new()).await?;
    connection.execute("INSERT INTO probe_unique VALUES (1)", Vec::<P>::new()).await?;
    connection.execute("INSERT INTO probe_unique VALUES (1)", Vec::<P>::new()).await?;
    Ok(json!({ "inserted_twice": true }))
}

/// The same violation met by a query, through the synchronous `query` or `query-async`.
async fn unique_violation_in_query(call: &str) -> Result<Value, Error> {
    let connection = connect().await?;
    connection.execute("CREATE TEMP TABLE probe_unique (id int PRIMARY KEY)", Vec::<P>::new()).await?;
    let insert = "INSERT INTO probe_unique VALUES (1) RETURNING id";
    connection.query(insert, Vec::<P>::new()).await?.collect().await?;
    match call {
        "async" => drop(connection.query(insert, Vec::<P>::new()).await?.collect().await?),
        _ => drop(connection.into_inner().query(insert, &[]).map_err(Error::PgError)?),
    }
    Ok(json!({ "inserted_twice": true }))
}

/// The columns of a result without rows, through `query-async` or the synchronous `query`.
async fn no_rows(call: &str) -> Result<Value, Error> {
    let connection = connect().await?;
    let statement = "SELECT 1::int4 AS one, 'x'::text AS two WHERE false";
    let columns = match call {
        "async" => connection.query(statement, Vec::<P>::new()).await?.columns().to_vec(),
        _ => connection.into_inner().query(statement, &[]).map_err(Error::PgError)?.columns,
    };
    let described: Vec<String> = columns.iter().map(|c| format!("{}:{:?}", c.name, c.data_type)).collect();
    Ok(json!({ "columns": described }))
}

/// Returns with a transaction still open: the host must roll it back and say so.
async fn leak_transaction() -> Result<Value, Error> {
    let connection = connect().await?;
    connection.execute("BEGIN", Vec::<P>::new()).await?;
    Ok(json!({ "left_open": true }))
}

async fn undeclared(address: &str) -> Result<Value, Error> {
    let connection = Connection::open(address).await?;
    drop(connection);
    Ok(json!({ "connected": true }))
}

/// Runs a statement through a connection string of its own: the declared database, under
/// `application_name` (each string its own pool in the host, as in Spin).
async fn connect_as(application_name: &str) -> Result<Value, Error> {
    let connection =
        Connection::open(declared_address_with(&format!("application_name={application_name}")).await?).await?;
    Ok(json!({ "pid": backend_pid(&connection).await? }))
}

/// The declared database, but with a `hostaddr` (the address dialled) that is not declared.
async fn undeclared_hostaddr() -> Result<Value, Error> {
    undeclared(&declared_address_with("hostaddr=127.0.0.2").await?).await
}

/// The declared database's connection string with one more `parameter` (`name=value`).
async fn declared_address_with(parameter: &str) -> Result<String, Error> {
    let address = variables::get("database_url").await.map_err(|e| PgError::Other(format!("{e:?}")))?;
    let separator = if address.contains('?') { '&' } else { '?' };
    Ok(format!("{address}{separator}{parameter}"))
}

async fn echo(number: &str) -> Result<Value, Error> {
    let number: i32 = number.parse().unwrap_or(-1);
    let connection = connect().await?;
    let rows = connection.query("SELECT $1::int4 AS n", vec![P::Int32(number)]).await?.collect().await?;
    Ok(json!({ "echo": describe(&rows[0][0]) }))
}

/// Reads `count` rows through `query-async`'s stream, one at a time; row `failing_row` (if not 0)
/// divides by zero. The rows read and how the stream ended.
async fn stream(count: &str, failing_row: &str) -> Result<Value, Error> {
    let (count, failing_row): (i32, i32) = (count.parse().unwrap_or(0), failing_row.parse().unwrap_or(0));
    let connection = connect().await?;
    let statement = "SELECT n / (CASE WHEN n = $2 THEN 0 ELSE 1 END) AS n FROM generate_series(1, $1::int4) AS n";
    let mut result = connection.query(statement, vec![P::Int32(count), P::Int32(failing_row)]).await?;
    let (mut rows, mut sum) = (0_i64, 0_i64);
    while let Some(row) = result.next().await {
        rows += 1;
        if let DbValue::Int32(n) = row[0] {
            sum += i64::from(n);
        }
    }
    let error = result.result().await.err().map(|error| error_json(&error));
    Ok(json!({ "rows": rows, "sum": sum, "error": error }))
}

/// A query whose first row comes at once and whose next ones wait for a lock this guest holds on
/// another connection: the guest must get the first row (the query's answer) before it lets go
/// of the lock, as under Spin, or it would wait for itself.
async fn first_row_then_blocked() -> Result<Value, Error> {
    let holder = connect().await?;
    holder.execute("SELECT pg_advisory_lock(4243)", Vec::<P>::new()).await?;
    let reader = connect().await?;
    // The first two rows are larger than Postgres' send buffer, so the first is sent whole (the
    // second pushes its last bytes out) before the third waits for the lock.
    let statement = "SELECT n, CASE WHEN n <= 2 THEN repeat('x', 65536) \
        ELSE (SELECT 'after' FROM pg_advisory_xact_lock_shared(4243 + n - n)) END AS v \
        FROM generate_series(1, 4) AS n";
    let mut result = reader.query(statement, Vec::<P>::new()).await?;
    let first = result.next().await.is_some();
    holder.execute("SELECT pg_advisory_unlock(4243)", Vec::<P>::new()).await?;
    let mut rows = usize::from(first);
    while result.next().await.is_some() {
        rows += 1;
    }
    result.result().await?;
    Ok(json!({ "rows": rows }))
}

/// Keeps a pooled connection for `milliseconds`, so that many at once exhaust the pool.
async fn hold_connection(milliseconds: &str) -> Result<Value, Error> {
    let milliseconds: u64 = milliseconds.parse().unwrap_or(0);
    let connection = connect().await?;
    let pid = backend_pid(&connection).await?;
    spin_sdk::wasip3::clocks::monotonic_clock::wait_for(milliseconds.saturating_mul(1_000_000) as _).await;
    drop(connection);
    Ok(json!({ "pid": pid }))
}

/// Blocks the guest in one synchronous `query` while Postgres sleeps.
async fn sleep_in_synchronous_query(milliseconds: &str) -> Result<Value, Error> {
    let seconds = milliseconds.parse::<u32>().unwrap_or(0) as f64 / 1000.0;
    let connection = connect().await?.into_inner();
    // The duration is in the text, so tests tell their statements apart in pg_stat_activity.
    connection.query(&format!("SELECT pg_sleep({seconds})"), &[]).map_err(Error::PgError)?;
    Ok(json!({ "slept": true }))
}

/// Leaves one kind of session state behind on the pooled connection, and says which backend it
/// was. A session reset must make none of it visible to the connection's next user.
async fn leave_session_state(state: &str) -> Result<Value, Error> {
    let statements: &[&str] = match state {
        "settings" => &["SELECT set_config('probe.leak', 'leaked', false)", "SET application_name = 'leaked'"],
        "temp-table" => &["CREATE TEMP TABLE probe_leak (x int)"],
        "advisory-lock" => &["SELECT pg_advisory_lock(4242)"],
        "listen" => &["LISTEN probe_leak"],
        "cursor" => &["DECLARE probe_cursor CURSOR WITH HOLD FOR SELECT 1"],
        "sequence" => &["CREATE SEQUENCE IF NOT EXISTS probe_leak_sequence", "SELECT nextval('probe_leak_sequence')"],
        "transaction" => &["BEGIN", "SELECT pg_current_xact_id()"],
        // Postgres ends a line comment at a carriage return too.
        "transaction-after-comment" => &["-- why\rBEGIN", "SELECT pg_current_xact_id()"],
        _ => return Err(Error::PgError(PgError::Other(format!("unknown session state {state:?}")))),
    };
    let connection = connect().await?;
    for statement in statements {
        connection.query(*statement, Vec::<P>::new()).await?.collect().await?;
    }
    Ok(json!({ "pid": backend_pid(&connection).await? }))
}

/// What the session shows of every kind of state `leave_session_state` can leave.
async fn inspect_session() -> Result<Value, Error> {
    let connection = connect().await?;
    let statement = "SELECT coalesce(current_setting('probe.leak', true), '') AS custom_setting, \
        current_setting('application_name') AS application_name, \
        to_regclass('pg_temp.probe_leak') IS NOT NULL AS temp_table, \
        (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS advisory_locks, \
        (SELECT count(*) FROM pg_listening_channels()) AS listening_channels, \
        (SELECT count(*) FROM pg_cursors WHERE name = 'probe_cursor') AS cursors, \
        pg_current_xact_id_if_assigned() IS NOT NULL AS inside_writing_transaction";
    let result = connection.query(statement, Vec::<P>::new()).await?;
    let column_count = result.columns().len();
    let rows = result.collect().await?;
    let values: Vec<String> = (0..column_count).map(|index| describe(&rows[0][index])).collect();
    let currval =
        async { connection.query("SELECT currval('probe_leak_sequence')", Vec::<P>::new()).await?.collect().await };
    let sequence = match currval.await {
        Ok(rows) => describe(&rows[0][0]),
        Err(error) => error_json(&error)["code"].as_str().unwrap_or("error").to_owned(),
    };
    Ok(json!({ "pid": backend_pid(&connection).await?, "values": values, "sequence_currval": sequence }))
}

async fn backend_pid(connection: &Connection) -> Result<i32, Error> {
    let rows = connection.query("SELECT pg_backend_pid()", Vec::<P>::new()).await?.collect().await?;
    Ok(match rows[0][0] {
        DbValue::Int32(pid) => pid,
        _ => -1,
    })
}

/// `SELECT *` from a table the test alters between calls: the statement's result type changes
/// under a cached prepared statement. Optionally inside a transaction block.
async fn select_star(in_transaction: bool) -> Result<Value, Error> {
    let connection = connect().await?;
    if in_transaction {
        connection.execute("BEGIN", Vec::<P>::new()).await?;
    }
    let result = connection.query("SELECT * FROM probe_altered", Vec::<P>::new()).await?;
    let columns: Vec<String> = result.columns().iter().map(|column| column.name.clone()).collect();
    let rows = result.collect().await?;
    if in_transaction {
        connection.execute("COMMIT", Vec::<P>::new()).await?;
    }
    Ok(json!({ "columns": columns, "rows": rows.len(), "pid": backend_pid(&connection).await? }))
}

/// The same statement text over a temporary table whose column is `int4` or `int8`, with a
/// parameter of that type: Postgres infers the parameter's type from this session's table.
async fn select_typed(column_type: &str) -> Result<Value, Error> {
    let (create, parameter) = match column_type {
        "int4" => ("CREATE TEMP TABLE probe_typed (v int4)", P::Int32(7)),
        "int8" => ("CREATE TEMP TABLE probe_typed (v int8)", P::Int64(7)),
        _ => return Err(Error::PgError(PgError::Other(format!("unknown column type {column_type:?}")))),
    };
    let connection = connect().await?;
    connection.execute(create, Vec::<P>::new()).await?;
    let rows = connection.query("SELECT count(*) FROM probe_typed WHERE v = $1", vec![parameter]).await?;
    let count = match rows.collect().await?[0][0] {
        DbValue::Int64(count) => count,
        _ => -1,
    };
    Ok(json!({ "count": count, "pid": backend_pid(&connection).await? }))
}

/// The guest deallocates every prepared statement of its session, then runs a statement the
/// host may have cached.
async fn deallocate_then_select() -> Result<Value, Error> {
    let connection = connect().await?;
    let pid = backend_pid(&connection).await?;
    connection.execute("DEALLOCATE ALL", Vec::<P>::new()).await?;
    Ok(json!({ "pid": pid, "pid_again": backend_pid(&connection).await? }))
}

fn error_json(error: &Error) -> Value {
    match error {
        Error::PgError(PgError::QueryFailed(QueryError::DbError(db))) => json!({
            "kind": "db-error",
            "code": db.code,
            "severity": db.severity,
            "message": db.message,
            "extras": db.extras,
        }),
        Error::PgError(PgError::QueryFailed(QueryError::Text(text))) => {
            json!({ "kind": "query-failed", "text": text })
        }
        Error::PgError(PgError::ConnectionFailed(text)) => {
            json!({ "kind": "connection-failed", "text": text })
        }
        Error::PgError(PgError::BadParameter(text)) => {
            json!({ "kind": "bad-parameter", "text": text })
        }
        Error::PgError(PgError::ValueConversionFailed(text)) => {
            json!({ "kind": "value-conversion-failed", "text": text })
        }
        Error::PgError(PgError::Other(text)) => json!({ "kind": "other", "text": text }),
        Error::Decode(text) => json!({ "kind": "decode", "text": text }),
    }
}
