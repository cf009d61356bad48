//! A TCP forwarder a test can cut: put between the app and the shared Postgres, it makes the
//! database unreachable for that app alone (new connections are closed at once, open ones are cut
//! mid-stream, as when a server goes down), without stopping a server other tests use.
use std::io::copy;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;

pub struct TcpProxy {
    port: u16,
    state: Arc<ProxyState>,
}

#[derive(Default)]
struct ProxyState {
    cut: AtomicBool,
    stopped: AtomicBool,
    /// Both ends of every forwarded connection, to cut them.
    connections: Mutex<Vec<TcpStream>>,
}

impl TcpProxy {
    /// Forwards a free loopback port to `target` (`host:port`).
    pub fn start(target: &str) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(ProxyState::default());
        let target = target.to_owned();
        let accepting = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                if accepting.cut.load(Ordering::SeqCst) {
                    continue;
                }
                if let Err(error) = forward(client, &target, &accepting) {
                    eprintln!("tcp proxy to {target}: {error}");
                }
            }
        });
        Ok(Self { port, state })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Closes every forwarded connection and refuses new ones until [`Self::restore`].
    pub fn cut(&self) {
        self.state.cut.store(true, Ordering::SeqCst);
        let connections =
            std::mem::take(&mut *self.state.connections.lock().unwrap_or_else(|error| error.into_inner()));
        for connection in connections {
            let _ = connection.shutdown(Shutdown::Both);
        }
    }

    pub fn restore(&self) {
        self.state.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.state.stopped.store(true, Ordering::SeqCst);
        self.cut();
        // Wakes the accepting thread so it sees `stopped`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn forward(client: TcpStream, target: &str, state: &ProxyState) -> anyhow::Result<()> {
    let server = TcpStream::connect(target).with_context(|| format!("connecting to {target}"))?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    {
        let mut connections = state.connections.lock().unwrap_or_else(|error| error.into_inner());
        connections.push(client.try_clone()?);
        connections.push(server.try_clone()?);
    }
    for (mut from, mut to) in [(client.try_clone()?, server.try_clone()?), (server, client)] {
        std::thread::spawn(move || {
            let _ = copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Both);
        });
    }
    Ok(())
}
