//! `up` validates everything before it listens and exits non-zero naming the problem.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use sendinchat_tests::processes::{HostOptions, HostProcess, RedisServer, StartOutcome, build};

use super::{conformance_options, manifest};

/// A copy of the conformance manifest, changed by `edit`, in a directory of its own; the
/// component sources are made absolute so the copy still finds them.
struct EditedManifest {
    directory: PathBuf,
}

impl EditedManifest {
    fn new(edit: impl FnOnce(String) -> String) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let directory = std::env::temp_dir().join(format!(
            "host-startup-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&directory).unwrap();
        let target = build::workspace_root().join("target");
        let original = std::fs::read_to_string(manifest()).unwrap();
        let absolute = original.replace("\"../../target", &format!("\"{}", target.display()));
        std::fs::write(directory.join("spin.toml"), edit(absolute)).unwrap();
        Self { directory }
    }

    fn path(&self) -> PathBuf {
        self.directory.join("spin.toml")
    }
}

impl Drop for EditedManifest {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

/// Starts the host on `manifest` and returns its log, asserting it failed before listening.
fn start_up_failure(manifest: &Path, extra: impl FnOnce(HostOptions) -> HostOptions) -> String {
    let mut options = extra(conformance_options(None).unwrap());
    options.manifest = manifest.to_path_buf();
    match HostProcess::try_start(&options).unwrap() {
        StartOutcome::Ready(host) => panic!("the host started; log:\n{}", host.log()),
        StartOutcome::Exited { status, log } => {
            assert!(!status.success(), "{log}");
            assert!(!log.contains("\nready\n"), "{log}");
            log
        }
    }
}

fn assert_manifest_rejected(edit: impl FnOnce(String) -> String, expected: &str) {
    let edited = EditedManifest::new(edit);
    let log = start_up_failure(&edited.path(), |options| options);
    assert!(log.contains(expected), "expected {expected:?} in:\n{log}");
}

#[test]
fn a_trigger_naming_an_unknown_component_is_rejected() {
    assert_manifest_rejected(
        |text| text.replacen("component = \"probe\"", "component = \"missing\"", 1),
        "unknown component \"missing\"",
    );
}

#[test]
fn a_malformed_route_is_rejected() {
    assert_manifest_rejected(|text| text.replace("\"/routes/exact\"", "\"/routes/:\""), "params must be named");
}

#[test]
fn an_unparsable_component_is_rejected() {
    let edited = EditedManifest::new(|text| text);
    let garbage = edited.directory.join("garbage.wasm");
    std::fs::write(&garbage, b"not wasm at all").unwrap();
    let text = std::fs::read_to_string(edited.path()).unwrap();
    let probe_source = text.lines().find(|line| line.contains("probe.wasm")).unwrap().to_owned();
    let text = text.replace(&probe_source, &format!("source = \"{}\"", garbage.display()));
    std::fs::write(edited.path(), text).unwrap();
    let log = start_up_failure(&edited.path(), |options| options);
    assert!(log.contains("component \"probe\"") && log.contains("not a valid WebAssembly component"), "{log}");
}

#[test]
fn a_component_without_the_http_export_cannot_be_routed() {
    assert_manifest_rejected(
        |text| text.replacen("component = \"probe\"", "component = \"recorder\"", 1),
        "does not export wasi:http/handler@0.3.0",
    );
}

#[test]
fn an_unreachable_redis_trigger_server_stops_start_up() {
    let mut redis = RedisServer::start().unwrap();
    let unreachable = redis.url();
    redis.stop().unwrap();
    let log = start_up_failure(&manifest(), |options| options.env("SPIN_VARIABLE_REDIS_URL", unreachable));
    assert!(log.contains("Redis trigger cannot subscribe"), "{log}");
}

#[test]
fn a_taken_port_stops_start_up() {
    let taken = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let mut options = conformance_options(None).unwrap();
    // The later --listen wins over the harness's port 0.
    options.args.extend(["--listen".to_owned(), address.clone()]);
    match HostProcess::try_start(&options).unwrap() {
        StartOutcome::Ready(_) => panic!("the host listened on a taken port"),
        StartOutcome::Exited { status, log } => {
            assert!(!status.success());
            assert!(log.contains(&format!("cannot listen on {address}")), "{log}");
        }
    }
}
