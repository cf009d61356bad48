//! Connection pools, one per component and connection string, shared by every instance of the
//! component: as in Spin, whose outbound-pg factor keeps a pool per component, so one
//! component's slow clients cannot take the connections the others need.
//!
//! A guest's `connection` resource holds one pooled connection for its whole life, so statements
//! issued one call at a time on it (BEGIN, ..., COMMIT) form a real transaction. When the
//! resource is dropped the connection goes back to the pool, and its session is reset before it
//! is used again (see `session`): an open transaction is rolled back (with a warning naming the
//! component: under Spin it would leak into the next request) and session state is discarded.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::ThreadId;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::config::SslMode;
use tokio_postgres::{AsyncMessage, Config, NoTls};

use super::pool_metrics::PoolMetrics;
use super::session::{Release, Session};
use crate::{logging, metrics};

/// Most connections one component may have open to one connection string, as in Spin.
const CONNECTIONS_PER_POOL: usize = 64;

/// Most pools (connection strings) one component keeps, as Spin's pool cache holds 16: past it the
/// least recently used pool is closed. Without a bound a guest varying its connection string
/// (`application_name`, `options`) would keep an idle connection per string until Postgres
/// refused every client.
const POOLS_PER_COMPONENT_MAX: usize = 16;

/// Orders pools by their last use, for closing the least recently used.
static USE_CLOCK: AtomicU64 = AtomicU64::new(0);

/// Connecting gives up after this unless the connection string sets `connect_timeout`: an
/// unreachable server must fail the guest's call, not hold it until the request deadline.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A component waiting longer than this for a pooled connection gets an error (which the app answers
/// with a retryable 503) instead of waiting out its request deadline behind a saturated pool.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Cleaning a released connection gives up after this; the connection is then discarded, so a
/// stuck server cannot hold the pool's capacity.
const CLEAN_TIMEOUT: Duration = Duration::from_secs(5);

/// The SQLSTATE of Postgres' "there is no transaction in progress" warning.
const NO_TRANSACTION_IN_PROGRESS: &str = "25P01";

/// Every pool the process has opened, by component and connection string.
#[derive(Default)]
pub struct PostgresPools {
    // Written once per component and connection string; instances cache the `Arc` so this lock
    // is taken once per instance, not per request.
    pools: RwLock<HashMap<(String, String), Arc<Pool>>>,
}

impl PostgresPools {
    pub fn pool(&self, component: &str, address: &str) -> anyhow::Result<Arc<Pool>> {
        let key = (component.to_owned(), address.to_owned());
        if let Some(pool) = self.pools.read().expect("pool map poisoned").get(&key) {
            return Ok(pool.clone());
        }
        let pool = Arc::new(Pool::new(component, address)?);
        let mut pools = self.pools.write().expect("pool map poisoned");
        let pool = pools.entry(key).or_insert(pool).clone();
        close_least_recently_used_past_bound(&mut pools, component);
        Ok(pool)
    }
}

fn close_least_recently_used_past_bound(pools: &mut HashMap<(String, String), Arc<Pool>>, component: &str) {
    let owned = || pools.iter().filter(|((owner, _), _)| owner == component);
    if owned().count() <= POOLS_PER_COMPONENT_MAX {
        return;
    }
    let least_recently_used = owned().min_by_key(|(_, pool)| pool.last_used.load(Ordering::SeqCst));
    let key = least_recently_used.map(|(key, _)| key.clone()).expect("the component has pools");
    if let Some(pool) = pools.remove(&key) {
        pool.close();
    }
}

pub struct Pool {
    config: Config,
    idle: Mutex<Vec<Session>>,
    /// When it was last checked out from (`USE_CLOCK`).
    last_used: AtomicU64,
    /// Put out of use past the component's bound: it keeps no idle connection.
    closed: AtomicBool,
    capacity: Arc<Semaphore>,
    metrics: Arc<PoolMetrics>,
}

impl Pool {
    fn new(component: &str, address: &str) -> anyhow::Result<Self> {
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
        let metrics = Arc::new(PoolMetrics::new(component, &config));
        Ok(Self {
            config,
            idle: Mutex::new(Vec::new()),
            last_used: AtomicU64::new(USE_CLOCK.fetch_add(1, Ordering::SeqCst)),
            closed: AtomicBool::new(false),
            capacity: Arc::new(Semaphore::new(CONNECTIONS_PER_POOL)),
            metrics,
        })
    }

    /// Takes an idle connection or opens one, waiting while the pool is at capacity.
    pub async fn checkout(self: &Arc<Self>, component_id: &str) -> anyhow::Result<PooledConnection> {
        let started = std::time::Instant::now();
        self.last_used.store(USE_CLOCK.fetch_add(1, Ordering::SeqCst), Ordering::SeqCst);
        let Ok(permit) = tokio::time::timeout(ACQUIRE_TIMEOUT, self.capacity.clone().acquire_owned()).await else {
            self.metrics.acquire_timeouts.inc();
            bail!("no pooled Postgres connection became free within {ACQUIRE_TIMEOUT:?}");
        };
        let permit = permit?;
        let session = match self.take_idle(std::thread::current().id()) {
            Some(session) if !session.is_closed() => session,
            _ => self.connect().await?,
        };
        metrics::observe(&self.metrics.acquire_duration, started.elapsed());
        self.metrics.in_use.inc();
        Ok(PooledConnection {
            session: Some(session),
            pool: self.clone(),
            component_id: component_id.to_owned(),
            permit: Some(permit),
        })
    }

    async fn connect(&self) -> anyhow::Result<Session> {
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
        Ok(Session::new(client, std::thread::current().id(), no_transaction_warnings, self.metrics.clone()))
    }

    /// The most recently idle connection driven by `thread`, else the most recently idle one.
    ///
    /// A connection's task runs on the thread that opened it. Every statement passes between the
    /// guest's task and that task twice; on one thread a hand-off is a queue push, across threads
    /// it wakes the other thread through the kernel, so connections are kept to their threads.
    fn take_idle(&self, thread: ThreadId) -> Option<Session> {
        let mut idle = self.idle.lock().expect("idle list poisoned");
        let index = idle.iter().rposition(|session| session.driver_thread() == thread);
        let session = match index {
            Some(index) => Some(idle.remove(index)),
            None => idle.pop(),
        };
        if session.is_some() {
            self.metrics.idle.dec();
        }
        session
    }

    fn put_idle(&self, session: Session) {
        let mut idle = self.idle.lock().expect("idle list poisoned");
        // Checked under the lock `close` takes, so no session is left idle in a closed pool.
        if !self.closed.load(Ordering::SeqCst) {
            idle.push(session);
            self.metrics.idle.inc();
        }
    }

    /// Closes the idle connections, and those in use as they come back. Instances that still
    /// hold the pool open a new one (see `InstanceState::cached_postgres_pool`).
    fn close(&self) {
        let mut idle = self.idle.lock().expect("idle list poisoned");
        self.closed.store(true, Ordering::SeqCst);
        // Counted per label, which pools of other connection strings to the same database share.
        self.metrics.idle.dec_by(idle.len() as i64);
        idle.clear();
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Puts the connection back. Its session is reset when its next user runs a statement (in
    /// the same round trip), unless its user began a transaction block or took a session-level
    /// advisory lock: then it is cleaned now, before it is idle, so a transaction left open or a
    /// lock left taken is not held while nobody uses it. A connection whose user left a statement
    /// unfinished has the statement cancelled (it would hold its locks until it ended, and the
    /// next user would wait behind it) and is closed. The capacity permit is released only once
    /// the connection is idle or closed, so connections being cleaned still count against the
    /// pool's limit.
    fn give_back(self: Arc<Self>, session: Session, permit: OwnedSemaphorePermit, component_id: String) {
        self.metrics.in_use.dec();
        if session.is_closed() {
            return;
        }
        match session.release() {
            Release::Idle => self.put_idle(session),
            Release::Clean => {
                tokio::spawn(async move {
                    self.clean(session, &component_id).await;
                    drop(permit);
                });
            }
            Release::Close => {
                logging::warn(format_args!("a Postgres session could not be reset; closed the connection"));
                drop(session);
                drop(permit);
            }
            Release::Cancel => {
                tokio::spawn(async move {
                    match tokio::time::timeout(CLEAN_TIMEOUT, session.cancel_statement()).await {
                        Ok(Ok(())) => logging::warn(format_args!(
                            "component {component_id:?} left a Postgres statement unfinished (stopped at \
                             its deadline, or its rows unread); cancelled it and closed the connection"
                        )),
                        Ok(Err(error)) => logging::warn(format_args!("cancelling a Postgres statement: {error}")),
                        Err(_) => logging::warn(format_args!(
                            "cancelling a Postgres statement took longer than {CLEAN_TIMEOUT:?}"
                        )),
                    }
                    drop(session);
                    drop(permit);
                });
            }
        }
    }

    /// Rolls back and resets a connection whose user began a transaction block (or took a
    /// session-level advisory lock), then makes it idle; one that cannot be cleaned is dropped,
    /// and closes.
    async fn clean(&self, session: Session, component_id: &str) {
        match tokio::time::timeout(CLEAN_TIMEOUT, session.clean()).await {
            Ok(Ok(had_open_transaction)) => {
                if had_open_transaction {
                    logging::warn(format_args!(
                        "component {component_id:?} released a Postgres connection inside an open \
                         transaction; rolled it back (under Spin the transaction would stay open \
                         for the next user of the connection)"
                    ));
                }
                self.put_idle(session);
            }
            Ok(Err(error)) => logging::warn(format_args!("discarding a Postgres connection: {error}")),
            Err(_) => logging::warn(format_args!(
                "discarding a Postgres connection: cleaning took longer than {CLEAN_TIMEOUT:?}"
            )),
        }
    }
}

/// A connection checked out of a pool; it goes back when dropped.
pub struct PooledConnection {
    session: Option<Session>,
    pool: Arc<Pool>,
    component_id: String,
    permit: Option<OwnedSemaphorePermit>,
}

impl PooledConnection {
    pub fn session(&self) -> &Session {
        self.session.as_ref().expect("present until dropped")
    }
}

impl Drop for PooledConnection {
    fn drop(&mut self) {
        if let (Some(session), Some(permit)) = (self.session.take(), self.permit.take()) {
            let component_id = std::mem::take(&mut self.component_id);
            self.pool.clone().give_back(session, permit, component_id);
        }
    }
}
