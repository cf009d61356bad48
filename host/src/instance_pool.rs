//! Instances of an HTTP component, reused across requests the way `wasmtime serve` and Spin
//! reuse WASIp3 instances.
//!
//! wasmtime-wasi-http's `ProxyHandler` runs each instance as a worker task that accepts up to
//! `max_concurrent` requests at once and `max_requests` in its lifetime, spawning workers as
//! load requires; this module supplies how to instantiate and when an instance must go: when a
//! request overruns its deadline (the instance is killed, since the guest may be stuck), or
//! after sitting idle. Each HTTP serving thread has its own `ProxyHandler` per component (see
//! `http_threads`), so its worker tasks run on the thread that serves their requests.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use wasmtime::component::GuestTaskId;
use wasmtime::{Engine, Store, StoreContextMut};
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, Proxy, ProxyHandler, ShouldAccept, ViewFn, WorkerExpiration, WorkerState, WorkerStatus,
};
use wasmtime_wasi_http::p3::WasiHttpView;
use wasmtime_wasi_http::p3::bindings::ServicePre;

use prometheus_client::metrics::counter::Counter;

use crate::engine;
use crate::host_state::{ComponentContext, InstanceState};
use crate::logging;
use crate::metrics::{self, ComponentLabels};

/// An idle instance is kept this long for the next request, as in Spin and `wasmtime serve`.
const IDLE_INSTANCE_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
pub struct ReuseLimits {
    pub max_requests: usize,
    pub max_concurrent: usize,
    pub request_timeout: Duration,
}

pub type HttpComponentHandler = ProxyHandler<HttpInstances>;

/// Set when the instance answering a request stops with an error (its deadline, a trap) while
/// the response may still be streaming. wasmtime ends such a body as if it were complete, so
/// the server reads this to abort the response instead of finishing a truncated one cleanly.
#[derive(Debug, Default)]
pub struct InstanceFailed(AtomicBool);

impl InstanceFailed {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// How to make instances of one HTTP component.
#[derive(Clone)]
pub struct HttpInstances {
    engine: Engine,
    pre: ServicePre<InstanceState>,
    component: Arc<ComponentContext>,
    limits: ReuseLimits,
}

impl HttpInstances {
    pub fn new(
        engine: Engine,
        pre: ServicePre<InstanceState>,
        component: Arc<ComponentContext>,
        limits: ReuseLimits,
    ) -> Self {
        Self { engine, pre, component, limits }
    }

    /// A new, empty set of reusable instances; its workers run on the runtime that hands it
    /// requests.
    pub fn handler(&self) -> HttpComponentHandler {
        ProxyHandler::new(self.clone())
    }
}

impl HandlerState for HttpInstances {
    type StoreData = InstanceState;
    type WorkerExpiration = InstanceExpiration;
    type WorkerState = InstanceWorker;

    async fn instantiate(&self) -> wasmtime::Result<Instance<InstanceState, InstanceExpiration, InstanceWorker>> {
        let mut store = engine::new_store(&self.engine, self.component.clone());
        // Instantiation runs guest start-up code, which must not hang a worker either.
        let service = tokio::time::timeout(self.limits.request_timeout, self.pre.instantiate_async(&mut store))
            .await
            .map_err(|_| wasmtime::format_err!("instantiation timed out"))??;
        let labels = ComponentLabels { component: self.component.id.clone() };
        let metrics = metrics::get();
        metrics.instances_created.get_or_create(&labels).inc();
        Ok(Instance {
            store,
            proxy: Proxy::P3(service),
            view: ViewFn::P3(<InstanceState as WasiHttpView>::http),
            expiration: InstanceExpiration {
                request_timeout: self.limits.request_timeout,
                sleep: Box::pin(tokio::time::sleep(Duration::MAX)),
                killed_by_deadline: metrics.instances_killed_by_deadline.get_or_create_owned(&labels),
            },
            state: InstanceWorker {
                limits: self.limits,
                component_id: self.component.id.clone(),
                requests_started: AtomicUsize::new(0),
                reused: metrics.instances_reused.get_or_create_owned(&labels),
                requests: Mutex::new(Vec::new()),
            },
        })
    }
}

/// Decides, from outside the instance's event loop, when an instance has expired: a guest
/// stuck in a loop only yields at epoch ticks, and this is what notices the deadline then.
pub struct InstanceExpiration {
    request_timeout: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
    killed_by_deadline: Counter,
}

impl WorkerExpiration for InstanceExpiration {
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>, status: WorkerStatus, since: Instant) -> Poll<()> {
        let expiration = self.get_mut();
        let timeout = match status {
            WorkerStatus::Idle => IDLE_INSTANCE_TIMEOUT,
            WorkerStatus::Requests | WorkerStatus::PostReturn => expiration.request_timeout,
        };
        let Some(deadline) = since.checked_add(timeout).map(tokio::time::Instant::from_std) else {
            return Poll::Pending;
        };
        if expiration.sleep.deadline() != deadline {
            expiration.sleep.as_mut().reset(deadline);
        }
        ready!(expiration.sleep.as_mut().poll(cx));
        if !matches!(status, WorkerStatus::Idle) {
            expiration.killed_by_deadline.inc();
        }
        Poll::Ready(())
    }
}

pub struct InstanceWorker {
    limits: ReuseLimits,
    component_id: String,
    requests_started: AtomicUsize,
    reused: Counter,
    /// The requests this instance has taken whose responses may still be read.
    requests: Mutex<Vec<Weak<InstanceFailed>>>,
}

impl WorkerState for InstanceWorker {
    type StoreData = InstanceState;
    type RequestId = Arc<InstanceFailed>;

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= self.limits.max_requests {
            ShouldAccept::Never
        } else if concurrent >= self.limits.max_concurrent {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        _: StoreContextMut<'_, InstanceState>,
        failed: Arc<InstanceFailed>,
        _: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        if self.requests_started.fetch_add(1, Ordering::Relaxed) > 0 {
            self.reused.inc();
        }
        let mut requests = self.requests.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        requests.retain(|request| request.strong_count() > 0);
        requests.push(Arc::downgrade(&failed));
        Box::pin(tokio::time::sleep(self.limits.request_timeout))
    }

    fn drop(&self, store: Store<InstanceState>, result: wasmtime::Result<()>) {
        if let Err(error) = result {
            logging::warn(format_args!("instance of component {:?} stopped: {error:#}", self.component_id));
            // Before the store goes: dropping it ends the bodies still streaming from it.
            let requests = self.requests.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            for failed in requests.iter().filter_map(Weak::upgrade) {
                failed.0.store(true, Ordering::Release);
            }
        }
        drop(store);
    }
}
