//! The data each wasmtime `Store` carries: WASI and `wasi:http` state, the component's resolved
//! configuration, and handles to the process-wide connection pools.

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::WasiHttpCtx;
use wasmtime_wasi_http::p3::{WasiHttpCtxView, WasiHttpView};

use crate::logging::{ComponentOutput, StandardStream};
use crate::network_policy::AllowedHosts;
use crate::outbound_http::{HttpClient, OutboundHttp};
use crate::postgres::pool::{Pool, PostgresPools};
use crate::redis_connections::{LiveConnection, RedisConnections};
use crate::variables::ComponentVariables;

/// Connection pools and clients shared by every instance of every component.
#[derive(Default)]
pub struct SharedServices {
    pub postgres: PostgresPools,
    pub redis: RedisConnections,
    pub http_client: HttpClient,
}

/// A component's configuration after variables are resolved; shared by all its instances.
pub struct ComponentContext {
    pub id: String,
    pub variables: ComponentVariables,
    pub allowed_hosts: AllowedHosts,
    pub environment: Vec<(String, String)>,
    pub services: Arc<SharedServices>,
}

pub struct InstanceState {
    component: Arc<ComponentContext>,
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    outbound_http: OutboundHttp,
    /// Per-instance copies of shared handles, so requests after the first do not touch the
    /// process-wide maps.
    postgres_pools: HashMap<String, Arc<Pool>>,
    redis_connections: HashMap<String, LiveConnection>,
}

impl InstanceState {
    pub fn new(component: Arc<ComponentContext>) -> Self {
        let wasi = WasiCtx::builder()
            .stdout(ComponentOutput::new(&component.id, StandardStream::Stdout))
            .stderr(ComponentOutput::new(&component.id, StandardStream::Stderr))
            .envs(&component.environment)
            .build();
        Self {
            outbound_http: OutboundHttp::new(&component.id, &component.allowed_hosts, &component.services.http_client),
            component,
            table: ResourceTable::new(),
            wasi,
            http: WasiHttpCtx::new(),
            postgres_pools: HashMap::new(),
            redis_connections: HashMap::new(),
        }
    }

    pub fn component(&self) -> &Arc<ComponentContext> {
        &self.component
    }

    pub fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    pub fn cached_postgres_pool(&mut self, address: &str) -> anyhow::Result<Arc<Pool>> {
        if let Some(pool) = self.postgres_pools.get(address).filter(|pool| !pool.is_closed()) {
            return Ok(pool.clone());
        }
        let pool = self.component.services.postgres.pool(&self.component.id, address)?;
        self.postgres_pools.insert(address.to_owned(), pool.clone());
        Ok(pool)
    }

    pub fn cached_redis_connection(&self, address: &str) -> Option<LiveConnection> {
        self.redis_connections.get(address).cloned()
    }

    pub fn cache_redis_connection(&mut self, address: &str, connection: &LiveConnection) {
        self.redis_connections.insert(address.to_owned(), connection.clone());
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.outbound_http }
    }
}
