//! SIGINT/SIGTERM: the signal every trigger watches to stop taking work and finish what it has.

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::logging;

#[derive(Clone)]
pub struct ShutdownSignal {
    requested: watch::Receiver<bool>,
}

impl ShutdownSignal {
    /// Starts listening for SIGINT and SIGTERM. Must be called inside the tokio runtime.
    pub fn listen() -> anyhow::Result<Self> {
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
        let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        let (sender, requested) = watch::channel(false);
        tokio::spawn(async move {
            let name = tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            };
            logging::info(format_args!("{name} received; shutting down"));
            let _ = sender.send(true);
        });
        Ok(Self { requested })
    }

    /// Completes once shutdown has been requested.
    pub async fn requested(&self) {
        let mut requested = self.requested.clone();
        // An error means the sender is gone, which only happens once it has fired.
        let _ = requested.wait_for(|requested| *requested).await;
    }
}
