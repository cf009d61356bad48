//! Compiled components cached on disk, keyed by the wasm's SHA-256 and the engine's
//! compatibility hash (wasmtime version and every code-generation setting), so a restart with
//! unchanged components skips compilation.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::logging;

/// Compiled components kept; the least recently used beyond this are deleted, so rebuilding
/// components during development does not fill the disk.
const MAX_CACHED_COMPONENTS: usize = 64;

pub struct CompileCache {
    directory: PathBuf,
}

impl CompileCache {
    /// The cache under `directory`, or the default location:
    /// `$SENDINCHAT_HOST_CACHE_DIR`, `$XDG_CACHE_HOME/sendinchat-host`, `~/.cache/sendinchat-host`.
    pub fn new(directory: Option<PathBuf>) -> anyhow::Result<Self> {
        let directory = match directory {
            Some(directory) => directory,
            None => default_directory().context("no cache directory: set --cache-dir or HOME")?,
        };
        std::fs::create_dir_all(&directory)
            .with_context(|| format!("cannot create cache directory {}", directory.display()))?;
        Ok(Self { directory })
    }

    /// Loads the component at `path`, compiling it only when no cached compilation exists.
    pub fn load(&self, engine: &Engine, path: &Path) -> anyhow::Result<Component> {
        let wasm = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let cached = self.directory.join(format!("{}.cwasm", cache_key(engine, &wasm)));
        if cached.exists() {
            // SAFETY: the file was written by `Engine::precompile_component` below, for an
            // engine with this compatibility hash, into a directory only this host writes.
            // wasmtime still checks the header and refuses an incompatible artifact.
            match unsafe { Component::deserialize_file(engine, &cached) } {
                Ok(component) => {
                    mark_used(&cached);
                    return Ok(component);
                }
                Err(error) => {
                    logging::warn(format_args!("ignoring unusable cache entry {}: {error}", cached.display()))
                }
            }
        }
        let compiled = engine
            .precompile_component(&wasm)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("{} is not a valid WebAssembly component", path.display()))?;
        self.store(&cached, &compiled);
        self.prune();
        // SAFETY: `compiled` was just produced by this engine.
        unsafe { Component::deserialize(engine, &compiled) }.map_err(anyhow::Error::from)
    }

    /// Writes through a temporary file and a rename, so a concurrent reader never sees half a
    /// file. A failure only costs the next start a compilation.
    fn store(&self, path: &Path, compiled: &[u8]) {
        let temporary = path.with_extension(format!("tmp{}", std::process::id()));
        let written = std::fs::write(&temporary, compiled).and_then(|()| std::fs::rename(&temporary, path));
        if let Err(error) = written {
            logging::warn(format_args!("cannot cache compiled component at {}: {error}", path.display()));
            let _ = std::fs::remove_file(&temporary);
        }
    }

    /// Deletes the least recently used entries beyond [`MAX_CACHED_COMPONENTS`].
    fn prune(&self) {
        let Ok(entries) = std::fs::read_dir(&self.directory) else {
            return;
        };
        let mut cached: Vec<(std::time::SystemTime, PathBuf)> = entries
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|extension| extension == "cwasm"))
            .filter_map(|path| Some((std::fs::metadata(&path).ok()?.modified().ok()?, path)))
            .collect();
        cached.sort_unstable_by_key(|(modified, _)| std::cmp::Reverse(*modified));
        for (_, path) in cached.into_iter().skip(MAX_CACHED_COMPONENTS) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Records a cache hit in the file's modification time, which pruning reads as last use.
fn mark_used(path: &Path) {
    if let Ok(file) = std::fs::File::options().append(true).open(path) {
        let _ = file.set_modified(std::time::SystemTime::now());
    }
}

fn default_directory() -> Option<PathBuf> {
    let non_empty = |name| std::env::var_os(name).filter(|value| !value.is_empty()).map(PathBuf::from);
    non_empty("SENDINCHAT_HOST_CACHE_DIR")
        .or_else(|| non_empty("XDG_CACHE_HOME").map(|cache| cache.join("sendinchat-host")))
        .or_else(|| non_empty("HOME").map(|home| home.join(".cache").join("sendinchat-host")))
}

fn cache_key(engine: &Engine, wasm: &[u8]) -> String {
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.update(wasm);
    hasher.0.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Feeds what `Hash` writes into SHA-256, to fold the engine's compatibility hash into the key.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().expect("SHA-256 has 32 bytes"))
    }
}
