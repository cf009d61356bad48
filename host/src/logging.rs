//! The host's log: one line per event on stderr, a timestamp and a level first.
//!
//! Stdout is kept for the machine-readable start-up lines (`listening on ...`, `ready`) so that
//! scripts and tests can read it without parsing log noise.

use std::fmt::Display;
use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// Off with `--quiet`: at tens of thousands of requests per second the log line is the
/// bottleneck, not the request.
static REQUEST_LOG_ENABLED: AtomicBool = AtomicBool::new(true);

pub fn set_request_log_enabled(enabled: bool) {
    REQUEST_LOG_ENABLED.store(enabled, Ordering::Relaxed);
}

pub fn info(message: impl Display) {
    write_line("INFO", message);
}

pub fn warn(message: impl Display) {
    write_line("WARN", message);
}

pub fn error(message: impl Display) {
    write_line("ERROR", message);
}

/// The one line logged for every HTTP request.
pub fn request(method: &str, path: &str, component: &str, status: u16, duration: Duration) {
    if REQUEST_LOG_ENABLED.load(Ordering::Relaxed) {
        let milliseconds = duration.as_secs_f64() * 1000.0;
        info(format_args!("{method} {path} component={component} status={status} duration_ms={milliseconds:.2}"));
    }
}

/// The one line logged for every Redis message delivered to a component.
pub fn redis_message(channel: &str, component: &str, outcome: &str, duration: Duration) {
    if REQUEST_LOG_ENABLED.load(Ordering::Relaxed) {
        let milliseconds = duration.as_secs_f64() * 1000.0;
        info(format_args!(
            "redis message channel={channel} component={component} outcome={outcome} duration_ms={milliseconds:.2}"
        ));
    }
}

fn write_line(level: &str, message: impl Display) {
    let timestamp = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
    // One write of a whole line under the lock, so lines from concurrent tasks never interleave.
    let line = format!("{timestamp} {level} {message}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Which of the component's standard streams a [`ComponentOutput`] carries.
#[derive(Clone, Copy)]
pub enum StandardStream {
    Stdout,
    Stderr,
}

impl StandardStream {
    fn name(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

/// A component's stdout or stderr, written to the host log line by line with the component id
/// in front, so output from concurrent instances stays attributable.
#[derive(Clone)]
pub struct ComponentOutput {
    prefix: Arc<str>,
}

impl ComponentOutput {
    pub fn new(component_id: &str, stream: StandardStream) -> Self {
        Self { prefix: format!("[{component_id}] {}: ", stream.name()).into() }
    }
}

impl IsTerminal for ComponentOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for ComponentOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter { prefix: self.prefix.clone(), pending: Vec::new() })
    }
}

/// Longest partial line kept waiting for its newline; a guest printing without newlines still
/// gets logged, in pieces of this size.
const MAX_PENDING_LINE_BYTES: usize = 16 * 1024;

struct LineWriter {
    prefix: Arc<str>,
    pending: Vec<u8>,
}

impl LineWriter {
    fn emit_complete_lines(&mut self) {
        while let Some(newline) = self.pending.iter().position(|byte| *byte == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=newline).collect();
            self.emit(&line[..line.len() - 1]);
        }
        if self.pending.len() > MAX_PENDING_LINE_BYTES {
            self.emit_pending();
        }
    }

    fn emit_pending(&mut self) {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.emit(&line);
        }
    }

    fn emit(&self, line: &[u8]) {
        info(format_args!("{}{}", self.prefix, String::from_utf8_lossy(line)));
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, bytes: &[u8]) -> Poll<std::io::Result<usize>> {
        let writer = self.get_mut();
        writer.pending.extend_from_slice(bytes);
        writer.emit_complete_lines();
        Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.get_mut().emit_pending();
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        self.emit_pending();
    }
}
