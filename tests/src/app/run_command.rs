//! The README's run command (`scripts/run.sh`) as a child process, for testing it end to end.
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::processes::build::{host_binary, workspace_root};
use crate::processes::process::WatchedChild;

pub struct RunCommand {
    process: WatchedChild,
    pub base_url: String,
    pub ws_base_url: String,
    pub metrics_url: String,
}

/// The ports a run command listens on.
pub struct RunPorts {
    pub app: u16,
    pub web_socket: u16,
    pub metrics: u16,
}

impl RunCommand {
    /// Starts `scripts/run.sh` on the given ports with its data under `data` (and `extra_args`,
    /// e.g. `--seed`), and waits for its `ready` line (first runs create a Postgres cluster and
    /// apply migrations).
    pub fn start(data: &Path, ports: &RunPorts, extra_args: &[&str], timeout: Duration) -> anyhow::Result<Self> {
        let script = workspace_root().join("scripts/run.sh");
        let args: Vec<String> = [
            "--data",
            &data.display().to_string(),
            "--port",
            &ports.app.to_string(),
            "--ws-port",
            &ports.web_socket.to_string(),
            "--metrics-port",
            &ports.metrics.to_string(),
        ]
        .into_iter()
        .chain(extra_args.iter().copied())
        .map(str::to_owned)
        .collect();
        // The suite already built the host; the run command would otherwise build it in release.
        let env = [("SENDINCHAT_HOST_BIN".to_owned(), host_binary()?.display().to_string())];
        let (process, lines) = WatchedChild::spawn(&script.display().to_string(), &args, &env, &[])?;
        let run = Self {
            process,
            base_url: format!("http://127.0.0.1:{}", ports.app),
            ws_base_url: format!("ws://127.0.0.1:{}", ports.web_socket),
            metrics_url: format!("http://127.0.0.1:{}/metrics", ports.metrics),
        };
        run.wait_for_ready(&lines, timeout)?;
        Ok(run)
    }

    /// Waits for the `ready` line, then briefly for a second one, which would be a bug: the run
    /// command promises exactly one.
    fn wait_for_ready(&self, lines: &Receiver<String>, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let next_ready = |until: Instant| loop {
            match lines.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(line) if line == "ready" => return Ok(true),
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) => return Ok(false),
                Err(RecvTimeoutError::Disconnected) => bail!("the run command exited; log:\n{}", self.log()),
            }
        };
        if !next_ready(deadline)? {
            bail!("no ready line within {timeout:?}; log:\n{}", self.log());
        }
        if next_ready(Instant::now() + Duration::from_secs(1))? {
            bail!("more than one ready line; log:\n{}", self.log());
        }
        Ok(())
    }

    pub fn log(&self) -> String {
        self.process.log()
    }

    /// Stops the script (SIGTERM, handled like Ctrl-C), which stops everything it started.
    pub fn stop(mut self, timeout: Duration) -> anyhow::Result<String> {
        self.process.terminate(timeout)?;
        Ok(self.log())
    }
}

/// A scratch folder for a run command's data, readable by the postgres user.
pub fn scratch_data_folder(label: &str) -> anyhow::Result<PathBuf> {
    let folder = std::env::temp_dir().join(format!("sendinchat-{label}-{}", super::unique_suffix()));
    std::fs::create_dir_all(&folder)?;
    Ok(folder)
}
