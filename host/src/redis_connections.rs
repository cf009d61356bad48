//! Connections to Redis servers, shared by every instance of every component: one live
//! multiplexed connection per address. The host watches each connection's I/O task; once it ends
//! (Redis restarted, network cut) the connection is no longer handed out and the next `open`
//! reconnects, so a stale connection costs at most the commands that were in flight on it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr};
use tokio::net::TcpStream;

/// The host side of a guest's Redis `connection` resource.
pub struct RedisConnection {
    pub connection: MultiplexedConnection,
}

impl RedisConnection {
    pub fn new(live: &LiveConnection) -> Self {
        Self { connection: live.connection.clone() }
    }
}

/// A multiplexed connection and whether its I/O task is still running.
#[derive(Clone)]
pub struct LiveConnection {
    connection: MultiplexedConnection,
    alive: Arc<AtomicBool>,
}

impl LiveConnection {
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Connects to the plain-TCP server `address` names (the caller has checked that it does).
    async fn connect(address: &str) -> Result<Self, String> {
        let client = redis::Client::open(address).map_err(|error| error.to_string())?;
        let info = client.get_connection_info();
        let ConnectionAddr::Tcp(host, port) = &info.addr else {
            return Err(format!("{address} names no plain-TCP server"));
        };
        let stream = TcpStream::connect((host.as_str(), *port)).await.map_err(|error| error.to_string())?;
        // Small commands must not wait for Nagle's algorithm.
        stream.set_nodelay(true).map_err(|error| error.to_string())?;
        let (connection, io_task) =
            MultiplexedConnection::new_with_config(&info.redis, stream, AsyncConnectionConfig::new())
                .await
                .map_err(|error| error.to_string())?;
        let alive = Arc::new(AtomicBool::new(true));
        let flag = alive.clone();
        tokio::spawn(async move {
            io_task.await;
            flag.store(false, Ordering::Release);
        });
        Ok(Self { connection, alive })
    }
}

/// One live multiplexed connection per Redis address, shared by the whole process.
#[derive(Default)]
pub struct RedisConnections {
    // Instances keep their own copy of each handle, so this lock is taken once per instance
    // and address, not per request.
    connections: RwLock<HashMap<String, LiveConnection>>,
}

impl RedisConnections {
    pub async fn get_or_connect(&self, address: &str) -> Result<LiveConnection, String> {
        let cached = self.connections.read().expect("redis map poisoned").get(address).cloned();
        if let Some(connection) = cached.filter(LiveConnection::is_alive) {
            return Ok(connection);
        }
        let connection = LiveConnection::connect(address).await?;
        let mut connections = self.connections.write().expect("redis map poisoned");
        let entry = connections.entry(address.to_owned()).or_insert_with(|| connection.clone());
        if !entry.is_alive() {
            *entry = connection;
        }
        Ok(entry.clone())
    }
}
