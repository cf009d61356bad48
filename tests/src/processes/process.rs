//! Child processes that cannot outlive the test process, and the host launched as one.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::build;

/// Runs `"$@"` and kills it (SIGTERM) when this script's stdin reaches end of file, i.e. when
/// the test process that holds the other end exits, however it exits. Needed because cargo
/// runs tests on threads, where `PR_SET_PDEATHSIG` would fire when the spawning thread ends.
/// A SIGTERM/SIGINT sent to the script is forwarded, and the script exits with the child's
/// status.
const WATCHDOG_SCRIPT: &str = r#"
exec 3<&0
"$@" </dev/null &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
( while read -r _ <&3; do :; done; kill -TERM "$child" 2>/dev/null ) &
watchdog=$!
status=0
wait "$child" || status=$?
while kill -0 "$child" 2>/dev/null; do wait "$child"; status=$?; done
kill "$watchdog" 2>/dev/null
exit "$status"
"#;

/// A child process tied to the test process's lifetime, with its output collected.
pub(crate) struct WatchedChild {
    child: Child,
    /// Dropping this closes the watchdog's stdin, which stops the child.
    lifeline: Option<ChildStdin>,
    /// The threads copying stdout and stderr into `log`; joined once the child has exited, so
    /// the log is complete when a caller reads it after `wait`.
    readers: Vec<JoinHandle<()>>,
    log: Arc<Mutex<String>>,
}

impl WatchedChild {
    /// Starts `command` under the watchdog. Every stdout line is also sent to the returned
    /// receiver, so the caller can wait for start-up lines.
    pub(crate) fn spawn(
        program: &str,
        args: &[String],
        env: &[(String, String)],
        removed_env: &[String],
    ) -> anyhow::Result<(Self, Receiver<String>)> {
        let mut command = Command::new("sh");
        for key in removed_env {
            command.env_remove(key);
        }
        let mut child = command
            .arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg("watchdog")
            .arg(program)
            .args(args)
            .envs(env.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {program}"))?;
        let log = Arc::new(Mutex::new(String::new()));
        let (lines, receiver) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let file = crate::secrets_seen::process_log(child.id()).map(Arc::new);
        let readers = vec![
            collect_lines(stdout, log.clone(), file.clone(), Some(lines)),
            collect_lines(stderr, log.clone(), file, None),
        ];
        let lifeline = child.stdin.take();
        Ok((Self { child, lifeline, readers, log }, receiver))
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Sends SIGTERM (forwarded to the child) and waits for the exit status.
    pub(crate) fn terminate(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().context("cannot run kill")?;
        self.wait(timeout)
    }

    /// Waits for the child to exit by itself.
    pub(crate) fn wait(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                // The pipes close with the process; what it wrote last is read by now or soon.
                for reader in self.readers.drain(..) {
                    let _ = reader.join();
                }
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("process still running after {timeout:?}; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for WatchedChild {
    fn drop(&mut self) {
        // Closing the lifeline makes the watchdog stop the child; then reap the script.
        self.lifeline.take();
        if self.wait(Duration::from_secs(15)).is_err() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn collect_lines(
    stream: impl Read + Send + 'static,
    log: Arc<Mutex<String>>,
    file: Option<Arc<Mutex<std::fs::File>>>,
    lines: Option<Sender<String>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).split(b'\n') {
            let Ok(line) = line else { break };
            let line = String::from_utf8_lossy(&line).into_owned();
            {
                let mut log = log.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
            if let Some(file) = &file {
                crate::secrets_seen::write_process_line(file, &line);
            }
            if let Some(lines) = &lines {
                let _ = lines.send(line);
            }
        }
    })
}

/// How to start the host.
#[derive(Debug, Clone)]
pub struct HostOptions {
    pub manifest: PathBuf,
    /// Extra environment, e.g. `SPIN_VARIABLE_DATABASE_URL`.
    pub env: Vec<(String, String)>,
    /// Variables of the test process's environment the host must not inherit.
    pub removed_env: Vec<String>,
    /// Extra `up` flags, e.g. `--request-timeout 2s`.
    pub args: Vec<String>,
    /// How long start-up (compiling components, connecting Redis) may take.
    pub startup_timeout: Duration,
}

impl HostOptions {
    pub fn new(manifest: impl Into<PathBuf>) -> Self {
        Self {
            manifest: manifest.into(),
            env: Vec::new(),
            removed_env: Vec::new(),
            args: Vec::new(),
            startup_timeout: Duration::from_secs(120),
        }
    }

    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Makes sure `key` is unset in the host's environment.
    pub fn without_env(mut self, key: &str) -> Self {
        self.env.retain(|(existing, _)| existing != key);
        self.removed_env.push(key.to_owned());
        self
    }

    pub fn arg(mut self, argument: impl Into<String>) -> Self {
        self.args.push(argument.into());
        self
    }
}

/// `sendinchat-host up` running on a free port.
pub struct HostProcess {
    process: WatchedChild,
    base_url: Option<String>,
    metrics_url: Option<String>,
}

/// How a start attempt ended: ready to serve, or exited before that.
pub enum StartOutcome {
    Ready(HostProcess),
    Exited { status: ExitStatus, log: String },
}

impl HostProcess {
    /// Starts the host and waits for its `ready` line; fails (with the host's log) if it exits
    /// or takes longer than `options.startup_timeout`.
    pub fn start(options: &HostOptions) -> anyhow::Result<Self> {
        match Self::try_start(options)? {
            StartOutcome::Ready(host) => Ok(host),
            StartOutcome::Exited { status, log } => {
                bail!("the host exited during start-up ({status}):\n{log}")
            }
        }
    }

    /// Starts the host and reports whether it became ready or exited, for tests of start-up
    /// failures.
    pub fn try_start(options: &HostOptions) -> anyhow::Result<StartOutcome> {
        let mut args = vec![
            "up".to_owned(),
            "--from".to_owned(),
            options.manifest.display().to_string(),
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
        ];
        args.extend(options.args.iter().cloned());
        let binary = build::host_binary()?;
        build::compiled_components(&options.manifest)?;
        let (process, lines) =
            WatchedChild::spawn(&binary.display().to_string(), &args, &options.env, &options.removed_env)?;
        let mut host = Self { process, base_url: None, metrics_url: None };
        let deadline = Instant::now() + options.startup_timeout;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(remaining) {
                Ok(line) if line == "ready" => return Ok(StartOutcome::Ready(host)),
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("listening on ") {
                        host.base_url = Some(url.to_owned());
                    }
                    if let Some(url) = line.strip_prefix("metrics on ") {
                        host.metrics_url = Some(url.to_owned());
                    }
                }
                // Stdout closed: the host exited.
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = host.process.wait(Duration::from_secs(10))?;
                    return Ok(StartOutcome::Exited { status, log: host.log() });
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    bail!("the host was not ready within {:?}; log:\n{}", options.startup_timeout, host.log())
                }
            }
        }
    }

    /// `http://127.0.0.1:PORT`; fails if the manifest has no HTTP trigger.
    pub fn base_url(&self) -> &str {
        self.base_url.as_deref().expect("the host serves HTTP (the manifest has [[trigger.http]])")
    }

    /// The host's metrics endpoint; fails unless it was started with `--metrics-listen`.
    pub fn metrics_url(&self) -> &str {
        self.metrics_url.as_deref().expect("the host serves metrics (started with --metrics-listen)")
    }

    /// Everything the host wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while !self.log().contains(needle) {
            if Instant::now() > deadline {
                bail!("{needle:?} did not appear in the host log within {timeout:?}; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Sends SIGTERM and waits for the host to exit.
    pub fn terminate(mut self, timeout: Duration) -> anyhow::Result<(ExitStatus, String)> {
        let status = self.process.terminate(timeout)?;
        Ok((status, self.log()))
    }
}

/// The app the tests talk to: one the tests started, or one already running elsewhere.
pub struct AppUnderTest {
    base_url: String,
    host: Option<HostProcess>,
}

impl AppUnderTest {
    /// Uses the app at the URL in `$external_url_variable` when that is set (e.g. an app
    /// running under real `spin up`); otherwise starts the host with `options`.
    pub fn external_or_start(
        external_url_variable: &str,
        options: impl FnOnce() -> anyhow::Result<HostOptions>,
    ) -> anyhow::Result<Self> {
        if let Some(base_url) = std::env::var(external_url_variable).ok().filter(|url| !url.is_empty()) {
            return Ok(Self { base_url: base_url.trim_end_matches('/').to_owned(), host: None });
        }
        let host = HostProcess::start(&options()?)?;
        Ok(Self { base_url: host.base_url().to_owned(), host: Some(host) })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The host this process started, or `None` for an external app (whose log and process
    /// the tests cannot see).
    pub fn host(&self) -> Option<&HostProcess> {
        self.host.as_ref()
    }
}
