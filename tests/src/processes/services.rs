//! The shared Postgres and Redis the tests use, located by environment variables.

use anyhow::{Context, bail};

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable";
const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

#[derive(Debug, Clone)]
pub struct TestServices {
    /// A URL with rights to create databases (`SENDINCHAT_TEST_DATABASE_URL`).
    pub admin_database_url: String,
    /// `SENDINCHAT_TEST_REDIS_URL`.
    pub redis_url: String,
}

impl TestServices {
    pub fn from_env() -> Self {
        let variable = |name: &str, default: &str| {
            std::env::var(name).ok().filter(|value| !value.is_empty()).unwrap_or_else(|| default.to_owned())
        };
        Self {
            admin_database_url: variable("SENDINCHAT_TEST_DATABASE_URL", DEFAULT_DATABASE_URL),
            redis_url: variable("SENDINCHAT_TEST_REDIS_URL", DEFAULT_REDIS_URL),
        }
    }

    /// Creates database `name` unless it exists, and returns a URL for it (the admin URL with
    /// the database name replaced).
    pub fn database(&self, name: &str) -> anyhow::Result<String> {
        if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
            bail!("database name {name:?} must be lower-case letters, digits and underscores");
        }
        let mut admin = postgres::Client::connect(&self.admin_database_url, postgres::NoTls)
            .with_context(|| format!("cannot connect to {}", self.admin_database_url))?;
        // Tests running side by side may ask for the same database at once, and two concurrent
        // CREATE DATABASE of one name can fail with a unique violation on the catalog rather
        // than "already exists"; a session advisory lock (CREATE DATABASE cannot run inside a
        // transaction) makes check-then-create one step. The lock ends with the connection.
        admin.execute("SELECT pg_advisory_lock(hashtext('sendinchat-tests:database'))", &[])?;
        let exists = admin.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])?.is_some();
        if !exists {
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .with_context(|| format!("cannot create database {name}"))?;
        }
        Ok(with_database_name(&self.admin_database_url, name))
    }

    /// `host:port` of a `scheme://[user@]host:port/...` URL, as `allowed_outbound_hosts` entries
    /// and the manifests' `*_host` variables name it.
    pub fn host_and_port(url: &str) -> String {
        let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
        let authority = after_scheme.split(['/', '?']).next().unwrap_or_default();
        authority.rsplit_once('@').map_or(authority, |(_, host)| host).to_owned()
    }
}

fn with_database_name(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(base, query)| (base, Some(query)));
    let scheme_end = base.find("://").map_or(0, |index| index + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_keep_credentials_and_options() {
        assert_eq!(
            with_database_name("postgres://u:p@h:5432/postgres?sslmode=disable", "scratch"),
            "postgres://u:p@h:5432/scratch?sslmode=disable"
        );
        assert_eq!(with_database_name("postgres://h", "scratch"), "postgres://h/scratch");
        assert_eq!(TestServices::host_and_port("postgres://u:p@h:5432/db?x=1"), "h:5432");
        assert_eq!(TestServices::host_and_port("redis://127.0.0.1:6379"), "127.0.0.1:6379");
    }
}
