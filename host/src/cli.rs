//! Command-line parsing for `sendinchat-host up`.
//!
//! Hand-rolled rather than clap: the host has one command and a dozen flags, and the parser is
//! smaller than clap's dependency tree.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};

pub const USAGE: &str = "\
Runs a Spin application (spin.toml) locally, the way `spin up` does.

Usage: sendinchat-host up [OPTIONS]
       sendinchat-host compile [--from <PATH>] [--cache-dir <PATH>]

`compile` fills the compiled-component cache for a manifest and exits, so that hosts started
later (several at once, as the test suite does) start in milliseconds instead of each compiling
every component.

Options of `up`:
  -f, --from <PATH>                     spin.toml to run [default: spin.toml]
      --listen <ADDR>                   address to serve HTTP on; port 0 picks a free port
                                        [default: 127.0.0.1:3000]
      --request-timeout <DURATION>      deadline for each request and Redis message, e.g. 30s,
                                        500ms [default: 30s]
      --max-request-body-bytes <N>      larger request bodies get 413 [default: 10485760]
      --max-instance-reuse-count <N>    requests one instance serves before it is replaced
                                        [default: 128]
      --max-instance-concurrent-reuse-count <N>
                                        requests one instance serves at once [default: 16]
      --shutdown-timeout <DURATION>     how long SIGINT/SIGTERM waits for requests in flight
                                        [default: 10s]
      --cache-dir <PATH>                compiled-component cache [default: $SENDINCHAT_HOST_CACHE_DIR,
                                        else $XDG_CACHE_HOME/sendinchat-host, else
                                        ~/.cache/sendinchat-host]
  -q, --quiet                           no per-request log lines (for benchmarks)
      --metrics-listen <ADDR>           serve Prometheus metrics (text format) on this address,
                                        e.g. 127.0.0.1:9464 [default: off]
      --mimic-spin-sockets              serve like Spin 4.1's HTTP trigger: no TCP_NODELAY on
                                        accepted sockets, responses written in the pieces hyper
                                        makes (reproduces Spin's ~40 ms keep-alive stall)
  -h, --help                            print this help

Variables come from the environment as SPIN_VARIABLE_<NAME> (upper case), like Spin's
environment provider.";

const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// 10 MiB: far above any JSON body the app accepts, low enough to stop a client filling memory.
const DEFAULT_MAX_REQUEST_BODY_BYTES: u64 = 10 * 1024 * 1024;
/// The defaults of Spin and `wasmtime serve` for WASIp3 components.
const DEFAULT_MAX_INSTANCE_REUSE_COUNT: usize = 128;
const DEFAULT_MAX_INSTANCE_CONCURRENT_REUSE_COUNT: usize = 16;
const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// What the user asked for.
pub enum Command {
    Up(UpOptions),
    Compile(CompileOptions),
    Help,
}

/// `compile`: which manifest's components to compile, and into which cache.
#[derive(Debug, Clone)]
pub struct CompileOptions {
    pub manifest_path: PathBuf,
    pub cache_dir: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct UpOptions {
    pub manifest_path: PathBuf,
    pub listen_address: SocketAddr,
    pub request_timeout: Duration,
    pub max_request_body_bytes: u64,
    pub max_instance_reuse_count: usize,
    pub max_instance_concurrent_reuse_count: usize,
    pub shutdown_timeout: Duration,
    pub cache_dir: Option<PathBuf>,
    pub quiet: bool,
    pub metrics_listen: Option<SocketAddr>,
    pub mimic_spin_sockets: bool,
}

impl Default for UpOptions {
    fn default() -> Self {
        Self {
            manifest_path: PathBuf::from("spin.toml"),
            listen_address: SocketAddr::from(([127, 0, 0, 1], 3000)),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_request_body_bytes: DEFAULT_MAX_REQUEST_BODY_BYTES,
            max_instance_reuse_count: DEFAULT_MAX_INSTANCE_REUSE_COUNT,
            max_instance_concurrent_reuse_count: DEFAULT_MAX_INSTANCE_CONCURRENT_REUSE_COUNT,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            cache_dir: None,
            quiet: false,
            metrics_listen: None,
            mimic_spin_sockets: false,
        }
    }
}

/// Parses the arguments after the program name.
pub fn parse(arguments: impl IntoIterator<Item = String>) -> anyhow::Result<Command> {
    let mut arguments = arguments.into_iter();
    match arguments.next().as_deref() {
        Some("up") => parse_up(arguments).map(Command::Up),
        Some("compile") => parse_compile(arguments).map(Command::Compile),
        Some("-h" | "--help" | "help") | None => Ok(Command::Help),
        Some(other) => bail!("unknown command {other:?}; the commands are `up` and `compile`"),
    }
}

fn parse_up(arguments: impl Iterator<Item = String>) -> anyhow::Result<UpOptions> {
    let mut options = UpOptions::default();
    parse_flags(arguments, |flag, value| {
        match flag {
            "-f" | "--from" | "--file" => options.manifest_path = PathBuf::from(value()?),
            "--listen" => options.listen_address = parse_listen_address(&value()?)?,
            "--request-timeout" => options.request_timeout = parse_duration(&value()?)?,
            "--max-request-body-bytes" => options.max_request_body_bytes = parse_number(flag, &value()?)?,
            "--max-instance-reuse-count" => options.max_instance_reuse_count = parse_positive(flag, &value()?)?,
            "--max-instance-concurrent-reuse-count" => {
                options.max_instance_concurrent_reuse_count = parse_positive(flag, &value()?)?
            }
            "--shutdown-timeout" => options.shutdown_timeout = parse_duration(&value()?)?,
            "--cache-dir" => options.cache_dir = Some(PathBuf::from(value()?)),
            "-q" | "--quiet" => options.quiet = true,
            "--metrics-listen" => options.metrics_listen = Some(parse_listen_address(&value()?)?),
            "--mimic-spin-sockets" => options.mimic_spin_sockets = true,
            other => bail!("unknown option {other:?} for `up`; see `sendinchat-host --help`"),
        }
        Ok(())
    })?;
    Ok(options)
}

fn parse_compile(arguments: impl Iterator<Item = String>) -> anyhow::Result<CompileOptions> {
    let defaults = UpOptions::default();
    let mut options = CompileOptions { manifest_path: defaults.manifest_path, cache_dir: defaults.cache_dir };
    parse_flags(arguments, |flag, value| {
        match flag {
            "-f" | "--from" | "--file" => options.manifest_path = PathBuf::from(value()?),
            "--cache-dir" => options.cache_dir = Some(PathBuf::from(value()?)),
            other => bail!("unknown option {other:?} for `compile`; see `sendinchat-host --help`"),
        }
        Ok(())
    })?;
    Ok(options)
}

/// Hands each flag to `apply` with a way to take its value, accepting both `--flag value` and
/// `--flag=value`.
fn parse_flags(
    mut arguments: impl Iterator<Item = String>,
    mut apply: impl FnMut(&str, &mut dyn FnMut() -> anyhow::Result<String>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    while let Some(argument) = arguments.next() {
        let (flag, inline_value) = match argument.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.to_owned())),
            _ => (argument, None),
        };
        let mut value =
            || inline_value.clone().or_else(|| arguments.next()).with_context(|| format!("{flag} needs a value"));
        apply(&flag, &mut value)?;
    }
    Ok(())
}

fn parse_listen_address(text: &str) -> anyhow::Result<SocketAddr> {
    text.parse().with_context(|| format!("--listen {text:?} is not an address like 127.0.0.1:3000"))
}

fn parse_number<T: std::str::FromStr>(flag: &str, text: &str) -> anyhow::Result<T> {
    text.parse().map_err(|_| anyhow::anyhow!("{flag} {text:?} is not a non-negative whole number"))
}

fn parse_positive(flag: &str, text: &str) -> anyhow::Result<usize> {
    match parse_number(flag, text)? {
        0 => bail!("{flag} must be at least 1"),
        number => Ok(number),
    }
}

/// Parses `250ms`, `30s`, `2m`, or a bare number of seconds, like Spin's duration flags.
pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let digits_end = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let number: u64 = number.parse().with_context(|| format!("{text:?} is not a duration like 30s or 500ms"))?;
    let duration = match unit {
        "ms" => Duration::from_millis(number),
        "" | "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number * 60),
        _ => bail!("{text:?} has an unknown unit; use ms, s or m"),
    };
    if duration.is_zero() {
        bail!("{text:?}: a duration must be greater than zero");
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(arguments: &[&str]) -> anyhow::Result<UpOptions> {
        let arguments = std::iter::once("up").chain(arguments.iter().copied()).map(String::from);
        match parse(arguments)? {
            Command::Up(options) => Ok(options),
            _ => panic!("expected `up`"),
        }
    }

    #[test]
    fn reads_every_flag_in_both_spellings() {
        let options = up(&[
            "--from=app.toml",
            "--listen",
            "127.0.0.1:0",
            "--request-timeout",
            "250ms",
            "--max-request-body-bytes=1024",
            "--max-instance-reuse-count",
            "1",
            "--max-instance-concurrent-reuse-count",
            "2",
            "--shutdown-timeout",
            "3",
            "--cache-dir",
            "/tmp/cache",
            "--quiet",
            "--metrics-listen=127.0.0.1:9464",
            "--mimic-spin-sockets",
        ])
        .unwrap();
        assert_eq!(options.manifest_path, PathBuf::from("app.toml"));
        assert_eq!(options.listen_address.port(), 0);
        assert_eq!(options.request_timeout, Duration::from_millis(250));
        assert_eq!(options.max_request_body_bytes, 1024);
        assert_eq!(options.max_instance_reuse_count, 1);
        assert_eq!(options.max_instance_concurrent_reuse_count, 2);
        assert_eq!(options.shutdown_timeout, Duration::from_secs(3));
        assert_eq!(options.cache_dir, Some(PathBuf::from("/tmp/cache")));
        assert!(options.quiet && options.mimic_spin_sockets);
        assert_eq!(options.metrics_listen, Some(SocketAddr::from(([127, 0, 0, 1], 9464))));
    }

    #[test]
    fn compile_reads_the_manifest_and_cache_flags_only() {
        let arguments = ["compile", "--from", "app.toml", "--cache-dir=/tmp/cache"].map(String::from);
        let Command::Compile(options) = parse(arguments).unwrap() else { panic!("expected `compile`") };
        assert_eq!(options.manifest_path, PathBuf::from("app.toml"));
        assert_eq!(options.cache_dir, Some(PathBuf::from("/tmp/cache")));
        assert!(parse(["compile", "--listen", "127.0.0.1:0"].map(String::from)).is_err());
    }

    #[test]
    fn rejects_unknown_flags_zero_counts_and_bad_durations() {
        assert!(up(&["--bogus"]).is_err());
        assert!(up(&["--max-instance-reuse-count", "0"]).is_err());
        assert!(up(&["--request-timeout", "10h"]).is_err());
        assert!(up(&["--request-timeout", "0s"]).is_err());
        assert!(up(&["--listen"]).is_err());
    }
}
