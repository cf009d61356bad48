//! Applies `sql/NNNN_name.sql` migrations in order, each exactly once, then replaces every SQL
//! function with the definitions in `sql/functions/*.sql`.
//!
//! Migrations hold what has history (tables, constraints, data), so they are append-only. Functions
//! have no history: the files in `sql/functions/` are their current source, re-applied on every run
//! in one transaction that first drops the previous set, so a changed signature or a removed
//! function leaves nothing stale behind. Trigger functions belong to their tables and stay in the
//! migrations.
//!
//! Pending migrations run in the same transaction as the function replacement, after the old
//! functions are dropped, so a migration may change what they depend on (Postgres refuses to alter
//! the type of a column that a SQL-standard function body, `RETURN ...` or `BEGIN ATOMIC`, reads),
//! and other sessions never see the schema without its functions: they see the old schema and
//! functions until commit, then the new ones. A failing migration rolls back the whole run.
//!
//! Every applied version is recorded in `schema_migrations` together with a checksum of its file,
//! so an edited migration is reported instead of silently diverging from the database. A session
//! advisory lock serialises concurrent runs (two replicas starting at once, or a deploy Job racing
//! a developer): the second run waits, then finds nothing pending.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use sha2::{Digest, Sha256};
use tokio_postgres::{Client, Transaction};

mod tls;

/// Arbitrary but fixed key for `pg_advisory_lock`; any run of this tool uses the same one.
const MIGRATION_LOCK_KEY: i64 = 0x5e4d_1c4a_7000_0001;

const CREATE_HISTORY_TABLE: &str = "
    CREATE TABLE IF NOT EXISTS schema_migrations (
        version     integer PRIMARY KEY,
        name        text NOT NULL,
        checksum    text NOT NULL,
        applied_at  timestamptz NOT NULL DEFAULT now()
    )";

/// One migration file: `0003_chat.sql` has version 3 and name `chat`.
#[derive(Debug)]
pub struct Migration {
    pub version: i32,
    pub name: String,
    pub sql: String,
    pub checksum: String,
}

/// What a run did, for the caller to report.
#[derive(Debug, Default)]
pub struct Outcome {
    pub applied: Vec<String>,
    pub already_applied: usize,
    pub function_files: usize,
}

/// The function definitions, re-applied in file-name order (`10_users.sql` before `20_ledger.sql`,
/// so a later file may use an earlier file's functions).
const FUNCTIONS_DIR: &str = "functions";

/// Every routine the application owns: non-trigger routines in `public` not installed by an
/// extension. Rendered as one `DROP ROUTINE` list, so routines depending on each other go together
/// and anything else still depending on one (a view, a default) makes the run fail loudly.
const APPLICATION_ROUTINES: &str = "
    SELECT string_agg(p.oid::regprocedure::text, ', ')
    FROM pg_proc p
    JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'public'
      AND p.prorettype <> 'trigger'::regtype
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')";

/// Reads the migrations in `dir`, ordered by version. Fails on a malformed file name or on two
/// files with the same version, before touching any database.
pub fn load_migrations(dir: &Path) -> Result<Vec<Migration>> {
    let mut migrations = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|extension| extension == "sql") {
            migrations.push(load_migration(&path)?);
        }
    }
    migrations.sort_by_key(|migration| migration.version);
    ensure!(!migrations.is_empty(), "no migrations in {}", dir.display());
    for pair in migrations.windows(2) {
        ensure!(
            pair[0].version != pair[1].version,
            "two migrations share version {}: {} and {}",
            pair[0].version,
            pair[0].name,
            pair[1].name
        );
    }
    Ok(migrations)
}

fn load_migration(path: &PathBuf) -> Result<Migration> {
    let stem = path.file_stem().and_then(|stem| stem.to_str()).unwrap_or_default();
    let Some((version, name)) = stem.split_once('_') else {
        bail!("{}: expected a name like 0001_description.sql", path.display());
    };
    let version: i32 =
        version.parse().with_context(|| format!("{}: version prefix is not a number", path.display()))?;
    let sql = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let checksum = format!("{:x}", Sha256::digest(sql.as_bytes()));
    Ok(Migration { version, name: name.to_owned(), sql, checksum })
}

/// Reads `dir/functions/*.sql` in file-name order.
pub fn load_function_files(dir: &Path) -> Result<Vec<(String, String)>> {
    let functions_dir = dir.join(FUNCTIONS_DIR);
    let mut files = Vec::new();
    let entries = std::fs::read_dir(&functions_dir).with_context(|| format!("reading {}", functions_dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|extension| extension == "sql") {
            let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
            let sql = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            files.push((name, sql));
        }
    }
    files.sort();
    ensure!(!files.is_empty(), "no function files in {}", functions_dir.display());
    Ok(files)
}

/// Connects to `database_url` (TLS as its `sslmode` asks, the server verified against
/// `root_cert` when given: see `tls`), applies every pending migration from `dir` and replaces
/// the functions with `dir/functions/`.
pub async fn migrate(database_url: &str, root_cert: Option<&Path>, dir: &Path) -> Result<Outcome> {
    let migrations = load_migrations(dir)?;
    let function_files = load_function_files(dir)?;
    let (mut client, connection_task) = connect(database_url, root_cert).await?;
    let outcome = apply_locked(&mut client, &migrations, &function_files).await;
    drop(client);
    connection_task.await.ok();
    outcome
}

/// A connection to `database_url`, and the task that drives it (it ends once the client is
/// dropped).
pub async fn connect(database_url: &str, root_cert: Option<&Path>) -> Result<(Client, tokio::task::JoinHandle<()>)> {
    let config: tokio_postgres::Config = database_url.parse().context("reading the database URL")?;
    let (client, connection) = config.connect(tls::connector(root_cert)?).await.context("connecting to Postgres")?;
    let connection_task = tokio::spawn(async move {
        // The client sees any error of the connection's in its next call.
        let _ = connection.await;
    });
    Ok((client, connection_task))
}

async fn apply_locked(
    client: &mut Client,
    migrations: &[Migration],
    function_files: &[(String, String)],
) -> Result<Outcome> {
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY]).await?;
    let outcome = apply_all(client, migrations, function_files).await;
    client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY]).await?;
    outcome
}

/// Drops the application's routines, applies the pending migrations and creates the routines from
/// `function_files`, all in one transaction (see the module comment).
async fn apply_all(
    client: &mut Client,
    migrations: &[Migration],
    function_files: &[(String, String)],
) -> Result<Outcome> {
    client.batch_execute(CREATE_HISTORY_TABLE).await?;
    let transaction = client.transaction().await?;
    drop_application_routines(&transaction).await?;
    let mut outcome = apply_pending(&transaction, migrations).await?;
    for (name, sql) in function_files {
        transaction.batch_execute(sql).await.with_context(|| format!("applying functions/{name}"))?;
    }
    transaction.commit().await?;
    outcome.function_files = function_files.len();
    Ok(outcome)
}

async fn apply_pending(transaction: &Transaction<'_>, migrations: &[Migration]) -> Result<Outcome> {
    let mut outcome = Outcome::default();
    for migration in migrations {
        let recorded = transaction
            .query_opt("SELECT checksum FROM schema_migrations WHERE version = $1", &[&migration.version])
            .await?;
        match recorded {
            Some(row) => {
                let checksum: String = row.get(0);
                ensure!(
                    checksum == migration.checksum,
                    "migration {:04}_{} was changed after it was applied; add a new migration instead",
                    migration.version,
                    migration.name
                );
                outcome.already_applied += 1;
            }
            None => {
                apply_one(transaction, migration).await?;
                outcome.applied.push(format!("{:04}_{}", migration.version, migration.name));
            }
        }
    }
    Ok(outcome)
}

async fn drop_application_routines(transaction: &Transaction<'_>) -> Result<()> {
    let routines: Option<String> = transaction.query_one(APPLICATION_ROUTINES, &[]).await?.get(0);
    if let Some(routines) = routines {
        transaction
            .batch_execute(&format!("DROP ROUTINE {routines}"))
            .await
            .context("dropping the previous functions")?;
    }
    Ok(())
}

/// Runs one migration and records it, inside the run's transaction.
async fn apply_one(transaction: &Transaction<'_>, migration: &Migration) -> Result<()> {
    transaction
        .batch_execute(&migration.sql)
        .await
        .with_context(|| format!("applying migration {:04}_{}", migration.version, migration.name))?;
    transaction
        .execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            &[&migration.version, &migration.name, &migration.checksum],
        )
        .await?;
    Ok(())
}
