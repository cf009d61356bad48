//! Connection pools, one per connection string, shared by every instance of every component.
//!
//! A guest's `connection` resource holds one pooled connection for its whole life, so statements
//! issued one call at a time on it (BEGIN, ..., COMMIT) form a real transaction. When the
//! resource is dropped the connection is cleaned in the background before it is reused: an open
//! transaction is rolled back (with a warning naming the component: under Spin it would leak
//! into the next request) and session state is discarded.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::config::SslMode;
use tokio_postgres::{AsyncMessage, Client, Config, NoTls};

use crate::logging;

/// Most connections one connection string may have open, as in Spin.
const CONNECTIONS_PER_POOL: usize = 64;

/// Connecting gives up after this unless the connection string sets `connect_timeout`: an
/// unreachable server must fail the guest's call, not hold it until the request deadline.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Cleaning a released connection gives up after this; the connection is then discarded, so a
/// stuck server cannot hold the pool's capacity.
const CLEAN_TIMEOUT: Duration = Duration::from_secs(5);

/// The SQLSTATE of Postgres' "there is no transaction in progress" warning.
const NO_TRANSACTION_IN_PROGRESS: &str = "25P01";

/// Every pool the process has opened, by connection string.
#[derive(Default)]
pub struct PostgresPools {
    // Written once per connection string; instances cache the `Arc` so this lock is taken once
    // per instance, not per request.
    pools: RwLock<HashMap<String, Arc<Pool>>>,
}

impl PostgresPools {
    pub fn pool(&self, address: &str) -> anyhow::Result<Arc<Pool>> {
        if let Some(pool) = self.pools.read().expect("pool map poisoned").get(address) {
            return Ok(pool.clone());
        }
        let pool = Arc::new(Pool::new(address)?);
        let mut pools = self.pools.write().expect("pool map poisoned");
        Ok(pools.entry(address.to_owned()).or_insert(pool).clone())
    }
}

pub struct Pool {
    config: Config,
    idle: Mutex<Vec<PooledClient>>,
    capacity: Arc<Semaphore>,
}

/// A physical connection and the count of "no transaction in progress" warnings its server
/// has sent, which tells a cleanup ROLLBACK whether a transaction was open.
struct PooledClient {
    client: Client,
    no_transaction_warnings: Arc<AtomicU64>,
}

impl Pool {
    fn new(address: &str) -> anyhow::Result<Self> {
        let mut config: Config = address.parse().context("invalid Postgres connection string")?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        if config.get_ssl_mode() == SslMode::Require {
            bail!(
                "sslmode=require: this local host does not speak TLS to Postgres; use a local \
                 server with sslmode=disable (Spin itself supports TLS)"
            );
        }
        Ok(Self { config, idle: Mutex::new(Vec::new()), capacity: Arc::new(Semaphore::new(CONNECTIONS_PER_POOL)) })
    }

    /// Takes an idle connection or opens one, waiting while the pool is at capacity.
    pub async fn checkout(self: &Arc<Self>, component_id: &str) -> anyhow::Result<PooledConnection> {
        let permit = self.capacity.clone().acquire_owned().await?;
        let idle = self.idle.lock().expect("idle list poisoned").pop();
        let pooled = match idle {
            Some(pooled) if !pooled.client.is_closed() => pooled,
            _ => self.connect().await?,
        };
        Ok(PooledConnection {
            pooled: Some(pooled),
            pool: self.clone(),
            component_id: component_id.to_owned(),
            permit: Some(permit),
        })
    }

    async fn connect(&self) -> anyhow::Result<PooledClient> {
        // tokio-postgres sets TCP_NODELAY on the socket it opens.
        let (client, mut connection) = self.config.connect(NoTls).await?;
        let no_transaction_warnings = Arc::new(AtomicU64::new(0));
        let warnings = no_transaction_warnings.clone();
        tokio::spawn(async move {
            // Drives the connection; notices are read in order with the replies, so a warning
            // is counted before the reply to the statement that caused it is delivered.
            while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                match message {
                    Ok(AsyncMessage::Notice(notice)) if notice.code().code() == NO_TRANSACTION_IN_PROGRESS => {
                        warnings.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
        Ok(PooledClient { client, no_transaction_warnings })
    }

    /// Cleans the connection and puts it back; the capacity permit is released only then, so
    /// connections being cleaned still count against the pool's limit.
    fn give_back(self: Arc<Self>, pooled: PooledClient, permit: OwnedSemaphorePermit, component_id: String) {
        tokio::spawn(async move {
            match clean(&pooled).await {
                Ok(had_open_transaction) => {
                    if had_open_transaction {
                        logging::warn(format_args!(
                            "component {component_id:?} released a Postgres connection inside an open \
                             transaction; rolled it back (under Spin the transaction would stay open \
                             for the next user of the connection)"
                        ));
                    }
                    self.idle.lock().expect("idle list poisoned").push(pooled);
                }
                // A connection that cannot be cleaned is dropped, and closes.
                Err(error) => logging::warn(format_args!("discarding a Postgres connection: {error}")),
            }
            drop(permit);
        });
    }
}

/// What Spin's pool (deadpool-postgres, `RecyclingMethod::Clean`) runs on a recycled connection:
/// session settings, cursors, listeners, advisory locks and temporary objects are reset, while
/// cached plans survive (unlike `DISCARD ALL`), so SQL functions are not re-planned on every call.
const RESET_SESSION: &str = "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; UNLISTEN *; \
    SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES;";

/// Rolls back any open transaction and resets session state. Returns whether a transaction
/// was open. Both are sent together, costing one round trip.
async fn clean(pooled: &PooledClient) -> anyhow::Result<bool> {
    let warnings_before = pooled.no_transaction_warnings.load(Ordering::SeqCst);
    let statements =
        async { futures::join!(pooled.client.simple_query("ROLLBACK"), pooled.client.simple_query(RESET_SESSION)) };
    let (rollback, reset) = tokio::time::timeout(CLEAN_TIMEOUT, statements)
        .await
        .map_err(|_| anyhow::anyhow!("cleaning took longer than {CLEAN_TIMEOUT:?}"))?;
    rollback?;
    reset?;
    let warnings_after = pooled.no_transaction_warnings.load(Ordering::SeqCst);
    Ok(warnings_after == warnings_before)
}

/// A connection checked out of a pool; it goes back (cleaned) when dropped.
pub struct PooledConnection {
    pooled: Option<PooledClient>,
    pool: Arc<Pool>,
    component_id: String,
    permit: Option<OwnedSemaphorePermit>,
}

impl PooledConnection {
    pub fn client(&self) -> &Client {
        &self.pooled.as_ref().expect("present until dropped").client
    }
}

impl Drop for PooledConnection {
    fn drop(&mut self) {
        if let (Some(pooled), Some(permit)) = (self.pooled.take(), self.permit.take()) {
            let component_id = std::mem::take(&mut self.component_id);
            self.pool.clone().give_back(pooled, permit, component_id);
        }
    }
}
