//! Building what the tests run: the host binary (dev profile) and wasm components, each once
//! per test process however many tests ask.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use anyhow::{Context, bail};

/// The workspace root (the directory holding spin.toml).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits inside the workspace").to_path_buf()
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
