//! Turns a validated manifest into ready-to-run triggers: variables resolved, network policies
//! parsed, every triggered component compiled (through the cache) and linked, and each checked
//! to export what its trigger calls. Nothing here listens or connects yet.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use bytes::Bytes;
use wasmtime::Engine;
use wasmtime::component::{InstancePre, Linker};
use wasmtime_wasi_http::p3::bindings::ServicePre;

use crate::bindings::redis_trigger::RedisTriggerPre;
use crate::cli::{CompileOptions, UpOptions};
use crate::compile_cache::CompileCache;
use crate::engine::{self, EpochTicker};
use crate::host_state::{ComponentContext, InstanceState, SharedServices};
use crate::http_server::HttpTrigger;
use crate::instance_pool::{HttpInstances, ReuseLimits};
use crate::logging;
use crate::manifest::{AppManifest, ComponentManifest, RedisTriggerManifest};
use crate::network_policy::AllowedHosts;
use crate::redis_trigger::{RedisHandler, RedisServer};
use crate::routing::Router;
use crate::variables::{self, ComponentVariables};

pub struct LoadedApp {
    pub http: Option<Arc<HttpTrigger>>,
    pub redis_servers: Vec<RedisServer>,
    /// Keeps request deadlines enforceable for as long as the app runs.
    pub _epoch_ticker: EpochTicker,
}

/// Loads and prepares everything `up` needs, failing with the first problem found.
pub fn load(options: &UpOptions) -> anyhow::Result<LoadedApp> {
    let manifest = AppManifest::load(&options.manifest_path)?;
    let application_values =
        variables::resolve_application_variables(&manifest.variables, |key| std::env::var(key).ok())?;
    let services = Arc::new(SharedServices::default());
    let engine = engine::new_engine()?;
    let linker = engine::new_linker(&engine)?;
    let cache = CompileCache::new(options.cache_dir.clone())?;
    let mut prepared = HashMap::new();
    for id in manifest.triggered_component_ids() {
        let component = &manifest.components[id];
        let context = component_context(id, component, &application_values, &services)
            .with_context(|| format!("component {id:?}"))?;
        let pre = compile(&engine, &linker, &cache, id, component)?;
        prepared.insert(id.to_owned(), (Arc::new(context), pre));
    }
    let http = http_trigger(&manifest, &engine, &prepared, options)?;
    let redis_servers = redis_servers(&manifest, &engine, &prepared, &application_values, options)?;
    Ok(LoadedApp { http, redis_servers, _epoch_ticker: EpochTicker::start(engine) })
}

/// `compile`: every triggered component of the manifest compiled into the cache, nothing run.
pub fn compile_all(options: &CompileOptions) -> anyhow::Result<()> {
    let manifest = AppManifest::load(&options.manifest_path)?;
    let engine = engine::new_engine()?;
    let cache = CompileCache::new(options.cache_dir.clone())?;
    for id in manifest.triggered_component_ids() {
        let started = Instant::now();
        let source = &manifest.components[id].source;
        cache.load(&engine, source).with_context(|| format!("component {id:?}: cannot load {}", source.display()))?;
        logging::info(format_args!("component {id:?} compiled in {} ms", started.elapsed().as_millis()));
    }
    Ok(())
}

type PreparedComponents = HashMap<String, (Arc<ComponentContext>, InstancePre<InstanceState>)>;

fn component_context(
    id: &str,
    component: &ComponentManifest,
    application_values: &HashMap<String, String>,
    services: &Arc<SharedServices>,
) -> anyhow::Result<ComponentContext> {
    let allowed_hosts = component
        .allowed_outbound_hosts
        .iter()
        .map(|template| template.render(application_values))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(ComponentContext {
        id: id.to_owned(),
        variables: ComponentVariables::resolve(id, &component.variables, application_values)?,
        allowed_hosts: AllowedHosts::parse(&allowed_hosts)?,
        environment: component.environment.clone().into_iter().collect(),
        services: services.clone(),
    })
}

fn compile(
    engine: &Engine,
    linker: &Linker<InstanceState>,
    cache: &CompileCache,
    id: &str,
    component: &ComponentManifest,
) -> anyhow::Result<InstancePre<InstanceState>> {
    let started = Instant::now();
    let compiled = cache
        .load(engine, &component.source)
        .with_context(|| format!("component {id:?}: cannot load {}", component.source.display()))?;
    let pre = linker
        .instantiate_pre(&compiled)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("component {id:?} imports something this host does not provide"))?;
    logging::info(format_args!("component {id:?} ready in {} ms", started.elapsed().as_millis()));
    Ok(pre)
}

fn http_trigger(
    manifest: &AppManifest,
    engine: &Engine,
    prepared: &PreparedComponents,
    options: &UpOptions,
) -> anyhow::Result<Option<Arc<HttpTrigger>>> {
    if manifest.http_routes.is_empty() {
        return Ok(None);
    }
    let limits = ReuseLimits {
        max_requests: options.max_instance_reuse_count,
        max_concurrent: options.max_instance_concurrent_reuse_count,
        request_timeout: options.request_timeout,
    };
    let mut components = HashMap::new();
    for route in &manifest.http_routes {
        if components.contains_key(&route.component) {
            continue;
        }
        let (context, pre) = &prepared[&route.component];
        let Ok(service) = ServicePre::new(pre.clone()) else {
            bail!(
                "component {:?} is routed by [[trigger.http]] but does not export wasi:http/handler@0.3.0 \
                 (build it with spin-sdk 7's #[http_service])",
                route.component
            );
        };
        let instances = HttpInstances::new(engine.clone(), service, context.clone(), limits);
        components.insert(route.component.clone(), instances);
    }
    Ok(Some(Arc::new(HttpTrigger {
        router: Router::build(&manifest.http_routes)?,
        components,
        max_request_body_bytes: options.max_request_body_bytes,
        request_timeout: options.request_timeout,
        app_info: app_info(manifest),
        mimic_spin_sockets: options.mimic_spin_sockets,
    })))
}

fn app_info(manifest: &AppManifest) -> Bytes {
    let info = serde_json::json!({ "name": manifest.name, "version": manifest.version });
    Bytes::from(info.to_string())
}

fn redis_servers(
    manifest: &AppManifest,
    engine: &Engine,
    prepared: &PreparedComponents,
    application_values: &HashMap<String, String>,
    options: &UpOptions,
) -> anyhow::Result<Vec<RedisServer>> {
    let mut servers: BTreeMap<String, HashMap<String, Vec<RedisHandler>>> = BTreeMap::new();
    for trigger in &manifest.redis_triggers {
        let (address, channel) = render_redis_trigger(trigger, application_values)?;
        let (context, pre) = &prepared[&trigger.component];
        let Ok(pre) = RedisTriggerPre::new(pre.clone()) else {
            bail!(
                "component {:?} is subscribed by [[trigger.redis]] but does not export \
                 spin:redis/inbound-redis@3.0.0 (build it with spin-sdk 7's #[redis_subscriber])",
                trigger.component
            );
        };
        let handler =
            RedisHandler { engine: engine.clone(), pre, component: context.clone(), timeout: options.request_timeout };
        servers.entry(address).or_default().entry(channel).or_default().push(handler);
    }
    Ok(servers.into_iter().map(|(address, channels)| RedisServer { address, channels }).collect())
}

fn render_redis_trigger(
    trigger: &RedisTriggerManifest,
    application_values: &HashMap<String, String>,
) -> anyhow::Result<(String, String)> {
    let context = || format!("[[trigger.redis]] of component {:?}", trigger.component);
    let address = trigger.address.render(application_values).with_context(context)?;
    let channel = trigger.channel.render(application_values).with_context(context)?;
    Ok((address, channel))
}
