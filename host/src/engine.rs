//! The wasmtime engine, the linker with every interface a component may import, and the
//! store each instance runs in.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline};

use crate::bindings;
use crate::host_state::{ComponentContext, InstanceState};
use crate::postgres::Postgres;
use crate::redis_outbound::Redis;
use crate::variables_interface::Variables;

/// How often the engine's epoch advances. Each tick a running guest yields to the executor,
/// which is when an expired request deadline can take effect, and when the other connections of
/// its serving thread get their turn: a guest computing for long (bcrypt, or a loop) delays
/// them by about a tick per turn. Measured with a looping guest, 16 connections: p99 47 ms at
/// 10 ms, 10 ms at 2 ms, 5 ms at 1 ms; the cost on the trivial route was within noise at 2 ms.
const EPOCH_TICK: Duration = Duration::from_millis(2);

/// Resident memory kept per pooled slot when an instance is freed, so the next instance in the
/// slot does not fault its pages in again (measured: +40–50% requests/s on a trivial route).
const KEEP_RESIDENT_BYTES: usize = 2 << 20;

/// Linear memory one instance may grow to.
const MAX_MEMORY_BYTES: usize = 1 << 30;

pub fn new_engine() -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .wasm_component_model_async(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config()));
    Engine::new(&config).map_err(anyhow::Error::from).context("cannot create the wasmtime engine")
}

fn pooling_config() -> PoolingAllocationConfig {
    let mut pooling = PoolingAllocationConfig::default();
    pooling
        .max_memory_size(MAX_MEMORY_BYTES)
        .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
        .table_keep_resident(KEEP_RESIDENT_BYTES)
        .async_stack_keep_resident(KEEP_RESIDENT_BYTES);
    pooling
}

/// A linker with WASI 0.2 and 0.3, `wasi:http` 0.3 and the Spin interfaces. spin-sdk
/// components reach WASI 0.2 through the Rust standard library, so the full WASI 0.2 set is
/// linked, not only the proxy world.
pub fn new_linker(engine: &Engine) -> anyhow::Result<Linker<InstanceState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi::p3::add_to_linker(&mut linker)?;
    wasmtime_wasi_http::p3::add_to_linker(&mut linker)?;
    bindings::postgres_wit::add_to_linker::<_, Postgres>(&mut linker, |state| state)?;
    bindings::redis_wit::add_to_linker::<_, Redis>(&mut linker, |state| state)?;
    bindings::variables_wit::add_to_linker::<_, Variables>(&mut linker, |state| state)?;
    Ok(linker)
}

/// A store for one instance of `component`. The guest yields at every epoch tick, so a guest
/// that loops still lets the request deadline be enforced.
pub fn new_store(engine: &Engine, component: Arc<ComponentContext>) -> Store<InstanceState> {
    let mut store = Store::new(engine, InstanceState::new(component));
    // Yielding through `yield_now` rather than by waking at once: tokio then resumes the guest
    // only after polling for I/O, which a serving thread otherwise does only every 61 task polls,
    // 61 epoch ticks when a guest computes without pause (measured p99 786 ms with a looping
    // guest against 47 ms this way, both at a 10 ms tick).
    store.epoch_deadline_callback(|_| Ok(UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now()))));
    store.set_epoch_deadline(1);
    store
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let stop = stop.clone();
            move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            }
        });
        Self { stop, thread: Some(thread) }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
