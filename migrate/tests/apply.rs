//! Migrations against a real Postgres (SENDINCHAT_TEST_DATABASE_URL, an admin connection).
use std::path::{Path, PathBuf};

use sendinchat_migrate::{load_migrations, migrate};
use tokio_postgres::NoTls;

fn admin_url() -> String {
    std::env::var("SENDINCHAT_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable".into())
}

fn project_sql_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sql")
}

/// `admin_url` with its database name replaced.
fn url_for_database(admin_url: &str, database: &str) -> String {
    let (address, options) = admin_url.split_once('?').unwrap_or((admin_url, ""));
    let (server, _) = address.rsplit_once('/').expect("database URL has a path");
    format!("{server}/{database}?{options}")
}

/// A new, empty database, dropped when the guard goes out of scope.
struct ScratchDatabase {
    name: String,
    url: String,
}

impl ScratchDatabase {
    async fn create(label: &str) -> Self {
        let name = format!("migrate_{label}_{}", std::process::id());
        admin_execute(&format!("DROP DATABASE IF EXISTS {name}")).await;
        admin_execute(&format!("CREATE DATABASE {name}")).await;
        let url = url_for_database(&admin_url(), &name);
        Self { name, url }
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(admin_execute(&statement));
        })
        .join()
        .ok();
    }
}

async fn admin_execute(statement: &str) {
    let (client, connection) = tokio_postgres::connect(&admin_url(), NoTls).await.expect("admin connection");
    tokio::spawn(connection);
    client.batch_execute(statement).await.expect(statement);
}

async fn applied_versions(url: &str) -> Vec<i32> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(connection);
    let rows = client.query("SELECT version FROM schema_migrations ORDER BY version", &[]).await.unwrap();
    rows.iter().map(|row| row.get(0)).collect()
}

#[tokio::test]
async fn concurrent_runs_apply_each_migration_once_and_a_rerun_is_a_no_op() {
    let database = ScratchDatabase::create("concurrent").await;
    let expected: Vec<i32> = load_migrations(&project_sql_dir()).unwrap().iter().map(|m| m.version).collect();
    assert!(!expected.is_empty());

    let sql_dir = project_sql_dir();
    let (first, second) = tokio::join!(migrate(&database.url, None, &sql_dir), migrate(&database.url, None, &sql_dir));
    let (first, second) = (first.unwrap(), second.unwrap());
    // The advisory lock serialises the runs: one applies everything, the other finds nothing left.
    let mut applied_counts = [first.applied.len(), second.applied.len()];
    applied_counts.sort();
    assert_eq!(applied_counts, [0, expected.len()]);
    assert_eq!(applied_versions(&database.url).await, expected);

    let rerun = migrate(&database.url, None, &sql_dir).await.unwrap();
    assert!(rerun.applied.is_empty());
    assert_eq!(rerun.already_applied, expected.len());
}

#[tokio::test]
async fn an_edited_migration_is_reported_and_a_failing_one_leaves_no_trace() {
    let database = ScratchDatabase::create("edited").await;
    let dir = std::env::temp_dir().join(format!("sendinchat-migrations-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("functions")).unwrap();
    std::fs::write(dir.join("functions/10_none.sql"), "-- no functions").unwrap();
    std::fs::write(dir.join("0001_first.sql"), "CREATE TABLE first (id int);").unwrap();
    migrate(&database.url, None, &dir).await.unwrap();

    std::fs::write(dir.join("0001_first.sql"), "CREATE TABLE first (id bigint);").unwrap();
    let error = migrate(&database.url, None, &dir).await.unwrap_err();
    assert!(error.to_string().contains("was changed after it was applied"), "{error}");

    std::fs::write(dir.join("0001_first.sql"), "CREATE TABLE first (id int);").unwrap();
    std::fs::write(dir.join("0002_broken.sql"), "CREATE TABLE second (id int); SELECT no_such_function();").unwrap();
    assert!(migrate(&database.url, None, &dir).await.is_err());
    assert_eq!(applied_versions(&database.url).await, vec![1], "the failed migration is not recorded");
    let (client, connection) = tokio_postgres::connect(&database.url, NoTls).await.unwrap();
    tokio::spawn(connection);
    let second_exists: bool = client.query_one("SELECT to_regclass('second') IS NOT NULL", &[]).await.unwrap().get(0);
    assert!(!second_exists, "the failed migration's statements were rolled back");
    std::fs::remove_dir_all(&dir).ok();
}

/// Names and argument types of the routines in `public`, sorted.
async fn routine_signatures(url: &str) -> Vec<String> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
             WHERE n.nspname = 'public' ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    rows.iter().map(|row| row.get(0)).collect()
}

#[tokio::test]
async fn functions_are_replaced_on_every_run_leaving_nothing_stale() {
    let database = ScratchDatabase::create("functions").await;
    let dir = std::env::temp_dir().join(format!("sendinchat-functions-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("functions")).unwrap();
    std::fs::write(
        dir.join("0001_table.sql"),
        "CREATE TABLE items (id int);
         CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE 'no'; END $$;
         CREATE TRIGGER items_refuse BEFORE DELETE ON items FOR EACH ROW EXECUTE FUNCTION refuse();",
    )
    .unwrap();
    std::fs::write(dir.join("functions/10_base.sql"), "CREATE FUNCTION base(a int) RETURNS int LANGUAGE sql RETURN a;")
        .unwrap();
    std::fs::write(
        dir.join("functions/20_uses_base.sql"),
        "CREATE FUNCTION twice(a int) RETURNS int LANGUAGE sql RETURN base(a) * 2;",
    )
    .unwrap();
    let first = migrate(&database.url, None, &dir).await.unwrap();
    assert_eq!(first.function_files, 2);
    assert_eq!(routine_signatures(&database.url).await, ["base(integer)", "refuse()", "twice(integer)"]);

    // A changed signature replaces the old one (no stale overload); a deleted file's function is
    // gone; the trigger function, owned by its migration, stays.
    std::fs::write(
        dir.join("functions/10_base.sql"),
        "CREATE FUNCTION base(a bigint) RETURNS bigint LANGUAGE sql RETURN a;",
    )
    .unwrap();
    std::fs::remove_file(dir.join("functions/20_uses_base.sql")).unwrap();
    let second = migrate(&database.url, None, &dir).await.unwrap();
    assert!(second.applied.is_empty());
    assert_eq!(routine_signatures(&database.url).await, ["base(bigint)", "refuse()"]);

    // A broken file rolls the whole replacement back: the previous functions stay callable.
    std::fs::write(
        dir.join("functions/30_broken.sql"),
        "CREATE FUNCTION broken() RETURNS int LANGUAGE sql RETURN nope;",
    )
    .unwrap();
    assert!(migrate(&database.url, None, &dir).await.is_err());
    assert_eq!(routine_signatures(&database.url).await, ["base(bigint)", "refuse()"]);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn a_migration_may_change_a_column_that_a_function_reads() {
    let database = ScratchDatabase::create("column_change").await;
    let dir = std::env::temp_dir().join(format!("sendinchat-column-change-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("functions")).unwrap();
    std::fs::write(dir.join("0001_items.sql"), "CREATE TABLE items (amount int);").unwrap();
    std::fs::write(
        dir.join("functions/10_total.sql"),
        "CREATE FUNCTION total() RETURNS numeric LANGUAGE sql STABLE BEGIN ATOMIC SELECT sum(amount) FROM items; END;",
    )
    .unwrap();
    migrate(&database.url, None, &dir).await.unwrap();

    // Postgres refuses the change while the function's body depends on the column...
    let (client, connection) = tokio_postgres::connect(&database.url, NoTls).await.unwrap();
    tokio::spawn(connection);
    let widen = "ALTER TABLE items ALTER COLUMN amount TYPE numeric";
    let refusal = client.batch_execute(widen).await.expect_err("the function does not depend on the column");
    let message = refusal.as_db_error().map(|error| error.message().to_owned()).unwrap_or_default();
    assert!(message.contains("used by a function"), "{refusal:?}");

    // ...but a migration runs without the functions, which come back afterwards.
    std::fs::write(dir.join("0002_wider.sql"), format!("{widen};")).unwrap();
    let outcome = migrate(&database.url, None, &dir).await.unwrap();
    assert_eq!(outcome.applied, ["0002_wider"]);
    assert_eq!(routine_signatures(&database.url).await, ["total()"]);
    let amount_type: String = client
        .query_one("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'amount'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(amount_type, "numeric");

    // One run is one transaction: a failing migration takes the run's earlier ones back with it,
    // and the functions stay as they were, callable throughout.
    std::fs::write(dir.join("0003_more.sql"), "CREATE TABLE more_items (amount int);").unwrap();
    std::fs::write(dir.join("0004_broken.sql"), "ALTER TABLE nope ADD COLUMN x int;").unwrap();
    assert!(migrate(&database.url, None, &dir).await.is_err());
    assert_eq!(applied_versions(&database.url).await, [1, 2]);
    assert_eq!(routine_signatures(&database.url).await, ["total()"]);
    let more_items: Option<String> =
        client.query_one("SELECT to_regclass('more_items')::text", &[]).await.unwrap().get(0);
    assert_eq!(more_items, None);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn file_names_must_carry_a_numeric_version() {
    let dir = std::env::temp_dir().join(format!("sendinchat-bad-names-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("first.sql"), "SELECT 1;").unwrap();
    assert!(load_migrations(&dir).is_err());
    std::fs::remove_dir_all(&dir).ok();
}

/// The tool reaches a server that speaks TLS as libpq would for each `sslmode`: plain with
/// `disable`; encrypted with `require`, the server verified against a root certificate when one
/// is given, and refused when that root did not issue the server's certificate. scripts/test.sh
/// starts the test cluster with TLS and names its root in SENDINCHAT_TEST_POSTGRES_ROOT_CERT.
#[tokio::test]
async fn the_tool_speaks_tls_as_sslmode_asks_and_verifies_the_server_against_a_given_root() {
    let Some(root) = std::env::var_os("SENDINCHAT_TEST_POSTGRES_ROOT_CERT").map(PathBuf::from) else {
        eprintln!("skipped: the test Postgres was not started with TLS (scripts/test.sh starts it so)");
        return;
    };
    let database = ScratchDatabase::create("tls").await;
    let with_mode = |mode: &str| database.url.replace("sslmode=disable", &format!("sslmode={mode}"));
    let encrypted = |url: String, root: Option<PathBuf>| async move {
        let (client, connection) = sendinchat_migrate::connect(&url, root.as_deref()).await?;
        let row = client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await?;
        drop(client);
        connection.await.ok();
        anyhow::Ok(row.get::<_, bool>(0))
    };
    assert!(!encrypted(with_mode("disable"), Some(root.clone())).await.unwrap(), "disable is plain TCP");
    assert!(encrypted(with_mode("require"), None).await.unwrap(), "require without a root encrypts");
    assert!(encrypted(with_mode("require"), Some(root.clone())).await.unwrap(), "and with the root, verified");
    // The server's own certificate is no root: a root that did not issue it is refused.
    let impostor_root = root.with_file_name("server.crt");
    let refused = encrypted(with_mode("require"), Some(impostor_root)).await.unwrap_err();
    assert!(format!("{refused:#}").contains("certificate"), "{refused:#}");
    let outcome = migrate(&with_mode("require"), Some(&root), &project_sql_dir()).await.unwrap();
    assert!(!outcome.applied.is_empty(), "the migrations ran over TLS");
}
