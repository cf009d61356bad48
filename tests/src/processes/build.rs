//! Building what the tests run: the host binary (dev profile), wasm components, and their
//! compiled (native) form in the host's cache, each once per test process however many tests ask.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use anyhow::{Context, bail};

/// The workspace root (the directory holding spin.toml).
pub fn workspace_root() -> PathBuf {
    // cargo sets CARGO_MANIFEST_DIR when it runs a test: preferring it keeps a test binary built in
    // another checkout (a copied target directory) from testing that checkout instead of this one.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    PathBuf::from(manifest_dir).parent().expect("tests/ sits inside the workspace").to_path_buf()
}

/// The `sendinchat-host` binary: `$SENDINCHAT_HOST_BIN` if set, otherwise built with cargo (a
/// no-op when it is up to date) into the workspace's target directory.
pub fn host_binary() -> anyhow::Result<PathBuf> {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BINARY
        .get_or_init(|| locate_or_build_host().map_err(|error| format!("{error:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn locate_or_build_host() -> anyhow::Result<PathBuf> {
    if let Some(binary) = std::env::var_os("SENDINCHAT_HOST_BIN") {
        return Ok(PathBuf::from(binary));
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "-p", "sendinchat-host"])
        .current_dir(workspace_root())
        .status()
        .context("cannot run cargo to build sendinchat-host")?;
    if !status.success() {
        bail!("building sendinchat-host failed ({status})");
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"));
    Ok(target.join("debug").join("sendinchat-host"))
}

/// Builds the named wasm component packages with `scripts/build-components.sh`, skipping any
/// already built by this process.
pub fn wasm_components(packages: &[&str]) -> anyhow::Result<()> {
    static BUILT: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    // Held for the whole build: two cargo builds of the same packages would only contend.
    let mut built = BUILT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let built = built.get_or_insert_with(HashSet::new);
    let missing: Vec<&str> = packages.iter().copied().filter(|p| !built.contains(*p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let output = Command::new(workspace_root().join("scripts/build-components.sh"))
        .args(&missing)
        .current_dir(workspace_root())
        .output()
        .context("cannot run scripts/build-components.sh")?;
    if !output.status.success() {
        bail!("building {missing:?} failed ({}):\n{}", output.status, String::from_utf8_lossy(&output.stderr));
    }
    built.extend(missing.into_iter().map(str::to_owned));
    Ok(())
}

/// Fills the host's compiled-component cache for `manifest` (`sendinchat-host compile`), once per
/// manifest per test process. Without it, every host the suite starts at once would compile the
/// same components side by side on a cold cache. Best effort: a manifest that cannot compile is
/// left for `up` to report, which is what tests of start-up failures expect.
pub fn compiled_components(manifest: &Path) -> anyhow::Result<()> {
    static COMPILED: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
    // Held while compiling: a second host of the same manifest should wait for the cache.
    let mut compiled = COMPILED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let compiled = compiled.get_or_insert_with(HashSet::new);
    if compiled.contains(manifest) {
        return Ok(());
    }
    let output = Command::new(host_binary()?)
        .arg("compile")
        .arg("--from")
        .arg(manifest)
        .output()
        .context("cannot run sendinchat-host compile")?;
    if output.status.success() {
        compiled.insert(manifest.to_path_buf());
    }
    Ok(())
}
