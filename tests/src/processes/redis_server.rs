//! A private `redis-server` on a port of its own, for tests that stop and restart Redis.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::bail;

use super::ports::free_port;
use super::process::WatchedChild;

pub struct RedisServer {
    port: u16,
    process: Option<WatchedChild>,
}

impl RedisServer {
    /// Starts `redis-server` on a free loopback port, without persistence, and waits until it
    /// accepts connections.
    pub fn start() -> anyhow::Result<Self> {
        let port = free_port()?;
        let mut server = Self { port, process: None };
        server.restart()?;
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `host:port`, as `allowed_outbound_hosts` entries name it.
    pub fn host_and_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGTERM) and waits for it to exit.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut process) = self.process.take() {
            process.terminate(Duration::from_secs(10))?;
        }
        Ok(())
    }

    /// Starts the server again on the same port.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop()?;
        let args: Vec<String> =
            ["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
                .iter()
                .map(|argument| argument.to_string())
                .collect();
        let (process, _) = WatchedChild::spawn("redis-server", &args, &[], &[])?;
        self.process = Some(process);
        self.wait_until_accepting(Duration::from_secs(10))
    }

    fn wait_until_accepting(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > deadline {
                let log = self.process.as_ref().map(WatchedChild::log).unwrap_or_default();
                bail!("redis-server did not accept connections on port {} within {timeout:?}:\n{log}", self.port);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}
