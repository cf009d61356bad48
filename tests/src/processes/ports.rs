//! Ports for the servers tests start (Pushpin, Redis, the run command), chosen before they bind.

use std::net::TcpListener;
use std::sync::Mutex;

/// Where the kernel's ephemeral range starts when `/proc` does not say (Linux's default).
const EPHEMERAL_PORT_LOW_DEFAULT: u16 = 32768;
/// The lowest port handed out; below it sit well-known and registered services' ports.
const PORT_LOW: u16 = 20000;

/// A port no one listens on, for a server a test is about to start.
///
/// Taken from below the kernel's ephemeral range: ports there are never the local end of an
/// outgoing connection. A port from that range (what binding port 0 gives) can become one between
/// the check and the server's bind (the suite's clients, apps and their Postgres pools open
/// connections all the time), and the server then fails to start, as a Pushpin node once did.
/// Never returns the same port twice in one test process: tests start servers concurrently, and a
/// port handed to one (but not yet bound) must not be handed to another.
pub fn free_port() -> anyhow::Result<u16> {
    static NEXT: Mutex<Option<u16>> = Mutex::new(None);
    let mut next = NEXT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let high = ephemeral_port_low();
    anyhow::ensure!(high > PORT_LOW, "the ephemeral port range starts at {high}, below {PORT_LOW}");
    let span = u32::from(high - PORT_LOW);
    // Test processes running side by side (a suite and a benchmark) start at different ports.
    let start = u32::from(*next.get_or_insert(PORT_LOW + (std::process::id() % span) as u16) - PORT_LOW);
    for step in 0..span {
        // Below `high`, so it fits a u16.
        let port = PORT_LOW + ((start + step) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            *next = Some(PORT_LOW + ((u32::from(port - PORT_LOW) + 1) % span) as u16);
            return Ok(port);
        }
    }
    anyhow::bail!("no free port in {PORT_LOW}..{high}")
}

/// The first port of the kernel's ephemeral range (`net.ipv4.ip_local_port_range`).
fn ephemeral_port_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(EPHEMERAL_PORT_LOW_DEFAULT)
}
