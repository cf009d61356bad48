//! `sendinchat-migrate --database-url postgres://... [--dir sql] [--ssl-root-cert ca.pem]`
//!
//! The database URL may also come from `DATABASE_URL`, the root certificate that verifies the
//! server (with `sslmode=prefer` or `require`) from `PGSSLROOTCERT`, as for libpq. Exits non-zero
//! on any failure; prints the migrations it applied.
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

struct Arguments {
    database_url: String,
    root_cert: Option<PathBuf>,
    dir: PathBuf,
}

fn parse_arguments() -> Result<Arguments> {
    let mut database_url = std::env::var("DATABASE_URL").ok();
    let mut root_cert = std::env::var_os("PGSSLROOTCERT").map(PathBuf::from);
    let mut dir = PathBuf::from("sql");
    let mut arguments = std::env::args().skip(1);
    while let Some(argument) = arguments.next() {
        match argument.as_str() {
            "--database-url" => database_url = arguments.next(),
            "--dir" => dir = arguments.next().context("--dir needs a value")?.into(),
            "--ssl-root-cert" => root_cert = Some(arguments.next().context("--ssl-root-cert needs a file")?.into()),
            "-h" | "--help" => {
                println!(
                    "usage: sendinchat-migrate --database-url <url> [--dir <sql dir>] [--ssl-root-cert <pem file>]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    let database_url = database_url.context("give --database-url or set DATABASE_URL")?;
    Ok(Arguments { database_url, root_cert, dir })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let arguments = parse_arguments()?;
    let outcome =
        sendinchat_migrate::migrate(&arguments.database_url, arguments.root_cert.as_deref(), &arguments.dir).await?;
    for name in &outcome.applied {
        println!("applied {name}");
    }
    println!(
        "migrations: {} applied now, {} already applied; functions: {} files re-applied",
        outcome.applied.len(),
        outcome.already_applied,
        outcome.function_files
    );
    Ok(())
}
