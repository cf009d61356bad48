//! The listener's accept loop and the threads that serve its connections: one per core, each
//! running a single-threaded tokio runtime with its own instances of every component.
//!
//! A request passes between its connection's task and the task driving its instance several
//! times (request, response, body). On tokio's multi-threaded runtime those hand-offs often
//! cross threads, and the benchmark's trivial route cost about 1.6 times the CPU per request
//! that it costs when the connection and the instance share a thread (95 against 57 µs, wrk
//! on bench/host.sh's route, 2 cores). Here a connection and the instances answering it stay
//! on one thread, and one such thread per core uses the cores; each new connection goes to the
//! thread with the fewest open.
//!
//! The price: no other thread takes over the connections of a thread whose guest computes for
//! long (bcrypt, or a loop until its deadline); they get their turns between the guest's epoch
//! yields, a tick apart (see `engine`).
//!
//! Tasks that the shared pools spawn while serving a request (Postgres, Redis and outbound HTTP
//! connections) run on that thread's runtime but may be used from any thread, so every serving
//! runtime keeps running until the whole app has stopped, when [`HttpThreads`] is dropped.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use crate::http_server::{ConnectionServer, HttpTrigger};
use crate::logging;
use crate::shutdown::ShutdownSignal;

/// A connection accepted by the listener, not yet tied to any runtime.
struct AcceptedConnection {
    stream: std::net::TcpStream,
    client: SocketAddr,
}

pub struct HttpThreads {
    threads: Vec<HttpThread>,
}

struct HttpThread {
    /// Dropped to tell the thread that no more connections will come.
    connections: Option<mpsc::UnboundedSender<(AcceptedConnection, OpenConnection)>>,
    open_connections: Arc<AtomicUsize>,
    /// Completes once no more connections come and the thread's last connection has closed.
    drained: Option<oneshot::Receiver<()>>,
    /// Dropped to end the thread.
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl HttpThreads {
    /// Starts one serving thread per available core.
    pub fn start(trigger: &Arc<HttpTrigger>) -> anyhow::Result<Self> {
        let count = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        let threads =
            (0..count).map(|index| HttpThread::start(index, trigger.clone())).collect::<anyhow::Result<_>>()?;
        Ok(Self { threads })
    }

    /// Accepts connections until `shutdown` fires, handing each to a thread, then stops accepting
    /// and gives requests in flight up to `shutdown_timeout` to finish.
    pub async fn serve(&mut self, listener: TcpListener, shutdown: ShutdownSignal, shutdown_timeout: Duration) {
        loop {
            let accepted = tokio::select! {
                accepted = accept(&listener) => accepted,
                () = shutdown.requested() => break,
            };
            match accepted {
                Ok(connection) => self.dispatch(connection),
                // Running out of file descriptors must not end the server; wait and retry.
                Err(error) => {
                    logging::warn(format_args!("accept failed: {error}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        drop(listener);
        logging::info("HTTP: no longer accepting connections; finishing requests in flight");
        if tokio::time::timeout(shutdown_timeout, self.drain()).await.is_err() {
            logging::warn(format_args!(
                "HTTP: requests still running after {}s; stopping anyway",
                shutdown_timeout.as_secs()
            ));
        }
    }

    /// Hands `connection` to the thread with the fewest open connections.
    fn dispatch(&self, connection: AcceptedConnection) {
        let thread = self
            .threads
            .iter()
            .min_by_key(|thread| thread.open_connections.load(Ordering::Relaxed))
            .expect("at least one serving thread");
        let open = OpenConnection::new(&thread.open_connections);
        let sent = thread.connections.as_ref().is_some_and(|connections| connections.send((connection, open)).is_ok());
        if !sent {
            logging::error("an HTTP serving thread has stopped; dropping a connection");
        }
    }

    /// Hands out no more connections and waits until every thread's connections have closed.
    async fn drain(&mut self) {
        for thread in &mut self.threads {
            thread.connections = None;
        }
        for thread in &mut self.threads {
            if let Some(drained) = thread.drained.take() {
                // An error means the thread is gone, which also means it is drained.
                let _ = drained.await;
            }
        }
    }
}

impl Drop for HttpThreads {
    fn drop(&mut self) {
        for thread in &mut self.threads {
            thread.connections = None;
            thread.stop = None;
        }
        for thread in &mut self.threads {
            if let Some(handle) = thread.handle.take()
                && handle.join().is_err()
            {
                logging::error("an HTTP serving thread panicked");
            }
        }
    }
}

impl HttpThread {
    fn start(index: usize, trigger: Arc<HttpTrigger>) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime of an HTTP serving thread")?;
        let (connections, incoming) = mpsc::unbounded_channel();
        let (drained_sender, drained) = oneshot::channel();
        let (stop, stopped) = oneshot::channel();
        let handle = std::thread::Builder::new()
            .name(format!("http-{index}"))
            .spawn(move || runtime.block_on(serve(trigger, incoming, drained_sender, stopped)))
            .context("cannot start an HTTP serving thread")?;
        Ok(Self {
            connections: Some(connections),
            open_connections: Arc::new(AtomicUsize::new(0)),
            drained: Some(drained),
            stop: Some(stop),
            handle: Some(handle),
        })
    }
}

/// The body of a serving thread: serves the connections it is handed until there are no more,
/// lets them finish, then keeps its runtime running until told to stop.
async fn serve(
    trigger: Arc<HttpTrigger>,
    mut incoming: mpsc::UnboundedReceiver<(AcceptedConnection, OpenConnection)>,
    drained: oneshot::Sender<()>,
    mut stopped: oneshot::Receiver<()>,
) {
    let server = ConnectionServer::new(trigger);
    let graceful = GracefulShutdown::new();
    while let Some((connection, open)) = incoming.recv().await {
        match TcpStream::from_std(connection.stream) {
            Ok(stream) => server.serve(stream, connection.client, open, &graceful),
            Err(error) => logging::warn(format_args!("cannot serve a connection: {error}")),
        }
    }
    tokio::select! {
        () = graceful.shutdown() => {
            let _ = drained.send(());
        }
        _ = &mut stopped => return,
    }
    let _ = stopped.await;
}

/// Waits for a client. No count of connections is kept, as in Spin: a cap would let one client
/// holding that many idle sockets keep everyone else waiting in the listen backlog. The limit is
/// the process's file descriptors (raised to the hard limit at start, `fd_limit`).
async fn accept(listener: &TcpListener) -> std::io::Result<AcceptedConnection> {
    let (stream, client) = listener.accept().await?;
    // Detached from this runtime, so that the serving thread's runtime can take the socket over.
    Ok(AcceptedConnection { stream: stream.into_std()?, client })
}

/// Counts a connection as open on its thread until dropped.
struct OpenConnection(Arc<AtomicUsize>);

impl OpenConnection {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
