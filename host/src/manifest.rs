//! Reading and validating `spin.toml` (manifest version 2).
//!
//! Everything that can be checked without running anything is checked here, before the host
//! listens, and each error names the component, trigger, variable or route at fault. Spin
//! features this host does not implement are rejected by name rather than silently ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use serde::Deserialize;

use crate::routing::{HttpRoute, Router};
use crate::template::Template;
use crate::variables::{self, VariableDeclaration};

/// A validated manifest; templates are parsed but not yet rendered.
#[derive(Debug)]
pub struct AppManifest {
    pub name: String,
    pub version: Option<String>,
    pub variables: BTreeMap<String, VariableDeclaration>,
    pub components: BTreeMap<String, ComponentManifest>,
    pub http_routes: Vec<HttpRoute>,
    pub redis_triggers: Vec<RedisTriggerManifest>,
}

#[derive(Debug)]
pub struct ComponentManifest {
    pub source: PathBuf,
    pub allowed_outbound_hosts: Vec<Template>,
    pub variables: BTreeMap<String, Template>,
    pub environment: BTreeMap<String, String>,
}

#[derive(Debug)]
pub struct RedisTriggerManifest {
    pub address: Template,
    pub channel: Template,
    pub component: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    spin_manifest_version: toml::Value,
    application: RawApplication,
    #[serde(default)]
    variables: BTreeMap<String, RawVariable>,
    #[serde(default)]
    trigger: BTreeMap<String, Vec<toml::Table>>,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApplication {
    name: String,
    version: Option<String>,
    #[serde(rename = "description")]
    _description: Option<String>,
    #[serde(rename = "authors")]
    _authors: Option<Vec<String>>,
    #[serde(rename = "targets")]
    _targets: Option<toml::Value>,
    #[serde(default)]
    trigger: BTreeMap<String, toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariable {
    default: Option<String>,
    #[serde(default)]
    required: bool,
    #[serde(default, rename = "secret")]
    _secret: bool,
    #[serde(rename = "description")]
    _description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    source: toml::Value,
    #[serde(rename = "description")]
    _description: Option<String>,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(rename = "build")]
    _build: Option<toml::Value>,
    #[serde(rename = "tool")]
    _tool: Option<toml::Value>,
    // Spin features this host does not provide: accepted by the parser so the error can say so.
    files: Option<toml::Value>,
    exclude_files: Option<toml::Value>,
    allowed_http_hosts: Option<toml::Value>,
    key_value_stores: Option<toml::Value>,
    sqlite_databases: Option<toml::Value>,
    ai_models: Option<toml::Value>,
    dependencies: Option<toml::Value>,
    dependencies_inherit_configuration: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpTrigger {
    route: RawRoute,
    component: String,
    #[serde(rename = "id")]
    _id: Option<String>,
    executor: Option<toml::Value>,
    static_response: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawRoute {
    Path(String),
    Private { private: bool },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedisTrigger {
    channel: String,
    component: String,
    address: Option<String>,
    #[serde(rename = "id")]
    _id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRedisApplicationTrigger {
    address: Option<String>,
}

impl AppManifest {
    /// Reads and validates the manifest at `path`. Component sources are resolved relative to
    /// the manifest's directory, as Spin does.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read manifest {}", path.display()))?;
        let directory = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::parse(&text, &directory).with_context(|| format!("invalid manifest {}", path.display()))
    }

    pub fn parse(text: &str, directory: &Path) -> anyhow::Result<Self> {
        let raw: RawManifest = toml::from_str(text)?;
        ensure!(
            raw.spin_manifest_version.as_integer() == Some(2),
            "spin_manifest_version must be 2 (found {:?})",
            raw.spin_manifest_version
        );
        let variables = parse_variables(raw.variables)?;
        let components = raw
            .component
            .into_iter()
            .map(|(id, component)| {
                let parsed = parse_component(&id, component, directory, &variables)
                    .with_context(|| format!("component {id:?}"))?;
                Ok((id, parsed))
            })
            .collect::<anyhow::Result<BTreeMap<_, _>>>()?;
        let (http_routes, redis_triggers) =
            parse_triggers(raw.trigger, &raw.application.trigger, &components, &variables)?;
        Ok(Self {
            name: raw.application.name,
            version: raw.application.version,
            variables,
            components,
            http_routes,
            redis_triggers,
        })
    }

    /// Ids of the components some trigger uses, i.e. the ones worth compiling.
    pub fn triggered_component_ids(&self) -> impl Iterator<Item = &str> {
        let http = self.http_routes.iter().map(|route| route.component.as_str());
        let redis = self.redis_triggers.iter().map(|trigger| trigger.component.as_str());
        let mut ids: Vec<&str> = http.chain(redis).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter()
    }
}

fn parse_variables(raw: BTreeMap<String, RawVariable>) -> anyhow::Result<BTreeMap<String, VariableDeclaration>> {
    raw.into_iter()
        .map(|(name, variable)| {
            variables::validate_name(&name).map_err(|reason| anyhow::anyhow!("invalid variable name {reason}"))?;
            match (&variable.default, variable.required) {
                (Some(_), true) => {
                    bail!("variable {name:?} is required and has a default; choose one")
                }
                (None, false) => {
                    bail!("variable {name:?} must either have a default or be required")
                }
                _ => Ok((name, VariableDeclaration { default: variable.default })),
            }
        })
        .collect()
}

fn parse_component(
    id: &str,
    raw: RawComponent,
    directory: &Path,
    variables: &BTreeMap<String, VariableDeclaration>,
) -> anyhow::Result<ComponentManifest> {
    validate_component_id(id)?;
    reject_unsupported_component_fields(&raw)?;
    let source = match raw.source {
        toml::Value::String(path) => directory.join(path),
        _ => bail!("source must be a local file path; URL and registry sources are not supported by this host"),
    };
    let parse_template = |text: &String| {
        let template = Template::parse(text)?;
        ensure_variables_declared(&template, variables)?;
        Ok(template)
    };
    let allowed_outbound_hosts = raw
        .allowed_outbound_hosts
        .iter()
        .map(parse_template)
        .collect::<anyhow::Result<_>>()
        .context("allowed_outbound_hosts")?;
    let component_variables = raw
        .variables
        .iter()
        .map(|(name, value)| {
            variables::validate_name(name).map_err(|reason| anyhow::anyhow!("invalid variable name {reason}"))?;
            Ok((name.clone(), parse_template(value).with_context(|| format!("variable {name:?}"))?))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(ComponentManifest {
        source,
        allowed_outbound_hosts,
        variables: component_variables,
        environment: raw.environment,
    })
}

/// Spin component ids are kebab-case: lower-case letters and digits in words joined by `-`.
fn validate_component_id(id: &str) -> anyhow::Result<()> {
    let valid_word =
        |word: &str| !word.is_empty() && word.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    ensure!(
        id.starts_with(|c: char| c.is_ascii_lowercase()) && id.split('-').all(valid_word),
        "component id {id:?} must be kebab-case (lower-case letters and digits, words joined by '-')"
    );
    Ok(())
}

fn reject_unsupported_component_fields(raw: &RawComponent) -> anyhow::Result<()> {
    let unsupported = [
        ("files", &raw.files),
        ("exclude_files", &raw.exclude_files),
        ("allowed_http_hosts", &raw.allowed_http_hosts),
        ("key_value_stores", &raw.key_value_stores),
        ("sqlite_databases", &raw.sqlite_databases),
        ("ai_models", &raw.ai_models),
        ("dependencies", &raw.dependencies),
        ("dependencies_inherit_configuration", &raw.dependencies_inherit_configuration),
    ];
    match unsupported.iter().find(|(_, value)| value.is_some()) {
        Some((field, _)) => bail!("`{field}` is not supported by this host"),
        None => Ok(()),
    }
}

fn ensure_variables_declared(
    template: &Template,
    variables: &BTreeMap<String, VariableDeclaration>,
) -> anyhow::Result<()> {
    match template.variable_names().find(|name| !variables.contains_key(*name)) {
        Some(name) => {
            bail!("template refers to unknown variable {name:?}; declare it under [variables]")
        }
        None => Ok(()),
    }
}

type Triggers = (Vec<HttpRoute>, Vec<RedisTriggerManifest>);

fn parse_triggers(
    triggers: BTreeMap<String, Vec<toml::Table>>,
    application_triggers: &BTreeMap<String, toml::Table>,
    components: &BTreeMap<String, ComponentManifest>,
    variables: &BTreeMap<String, VariableDeclaration>,
) -> anyhow::Result<Triggers> {
    let mut http_routes = Vec::new();
    let mut redis_triggers = Vec::new();
    for (trigger_type, entries) in triggers {
        for (index, entry) in entries.into_iter().enumerate() {
            let context = || format!("[[trigger.{trigger_type}]] #{}", index + 1);
            match trigger_type.as_str() {
                "http" => http_routes.extend(parse_http_trigger(entry, components).with_context(context)?),
                "redis" => {
                    let application = application_triggers.get("redis").cloned().unwrap_or_default();
                    redis_triggers
                        .push(parse_redis_trigger(entry, application, components, variables).with_context(context)?);
                }
                other => bail!("trigger type {other:?} is not supported by this host (only http and redis)"),
            }
        }
    }
    if let Some(other) = application_triggers.keys().find(|key| !matches!(key.as_str(), "http" | "redis")) {
        bail!("[application.trigger.{other}] is not supported by this host");
    }
    if let Some(http) = application_triggers.get("http") {
        let base = http.get("base").and_then(toml::Value::as_str);
        ensure!(
            http.keys().all(|key| key == "base") && base.is_none_or(|base| base == "/"),
            "[application.trigger.http] may only set base = \"/\"; other bases are not supported by this host"
        );
    }
    ensure!(
        !http_routes.is_empty() || !redis_triggers.is_empty(),
        "the manifest has no [[trigger.http]] or [[trigger.redis]]; there is nothing to run"
    );
    Router::build(&http_routes).context("invalid HTTP routes")?;
    Ok((http_routes, redis_triggers))
}

fn parse_http_trigger(
    entry: toml::Table,
    components: &BTreeMap<String, ComponentManifest>,
) -> anyhow::Result<Option<HttpRoute>> {
    let raw: RawHttpTrigger = toml::Value::Table(entry).try_into()?;
    ensure!(raw.executor.is_none(), "`executor` (WAGI) is not supported by this host");
    ensure!(raw.static_response.is_none(), "`static_response` is not supported by this host");
    ensure_component_exists(&raw.component, components)?;
    match raw.route {
        RawRoute::Path(route) => Ok(Some(HttpRoute { route, component: raw.component })),
        RawRoute::Private { private: true } => Ok(None),
        RawRoute::Private { private: false } => {
            bail!(
                "route must be a string pattern or '{{ private = true }}': component {:?} has {{ private = false }}",
                raw.component
            )
        }
    }
}

fn parse_redis_trigger(
    entry: toml::Table,
    application: toml::Table,
    components: &BTreeMap<String, ComponentManifest>,
    variables: &BTreeMap<String, VariableDeclaration>,
) -> anyhow::Result<RedisTriggerManifest> {
    let raw: RawRedisTrigger = toml::Value::Table(entry).try_into()?;
    let application: RawRedisApplicationTrigger =
        toml::Value::Table(application).try_into().context("[application.trigger.redis]")?;
    ensure_component_exists(&raw.component, components)?;
    let address = raw.address.or(application.address).with_context(|| {
        format!(
            "no Redis address for component {:?}: set [application.trigger.redis] address or the trigger's address",
            raw.component
        )
    })?;
    let parse_template = |text: &str, what: &str| -> anyhow::Result<Template> {
        let template = Template::parse(text).with_context(|| what.to_owned())?;
        ensure_variables_declared(&template, variables).with_context(|| what.to_owned())?;
        Ok(template)
    };
    Ok(RedisTriggerManifest {
        address: parse_template(&address, "address")?,
        channel: parse_template(&raw.channel, "channel")?,
        component: raw.component,
    })
}

fn ensure_component_exists(component: &str, components: &BTreeMap<String, ComponentManifest>) -> anyhow::Result<()> {
    ensure!(
        components.contains_key(component),
        "trigger refers to unknown component {component:?}; there is no [component.{component}]"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"
        spin_manifest_version = 2
        [application]
        name = "demo"
        [application.trigger.redis]
        address = "redis://{{ redis_host }}"
        [variables]
        redis_host = { default = "127.0.0.1:6379" }
        token = { required = true, secret = true }
        [[trigger.http]]
        route = "/api/..."
        component = "api"
        [[trigger.http]]
        route = { private = true }
        component = "worker"
        [[trigger.redis]]
        channel = "events"
        component = "worker"
        [component.api]
        source = "api.wasm"
        allowed_outbound_hosts = ["redis://{{ redis_host }}"]
        [component.api.variables]
        token = "Bearer {{ token }}"
        [component.api.build]
        command = "make"
        [component.worker]
        source = "worker.wasm"
    "#;

    fn parse(text: &str) -> anyhow::Result<AppManifest> {
        AppManifest::parse(text, Path::new("/app"))
    }

    fn error_of(text: &str) -> String {
        format!("{:#}", parse(text).unwrap_err())
    }

    #[test]
    fn a_valid_manifest_yields_routes_triggers_and_resolved_sources() {
        let manifest = parse(VALID).unwrap();
        assert_eq!(manifest.http_routes.len(), 1, "private routes are not routable");
        assert_eq!(manifest.redis_triggers[0].component, "worker");
        assert_eq!(manifest.components["api"].source, Path::new("/app/api.wasm"));
        assert_eq!(manifest.triggered_component_ids().collect::<Vec<_>>(), ["api", "worker"]);
    }

    #[test]
    fn each_mistake_is_named() {
        let cases = [
            (VALID.replace("component = \"api\"", "component = \"nope\""), "unknown component \"nope\""),
            (VALID.replace("/api/...", "/api/:"), "params must be named"),
            (VALID.replace("{{ token }}", "{{ tokn }}"), "unknown variable \"tokn\""),
            (VALID.replace("required = true, ", ""), "must either have a default or be required"),
            (VALID.replace("[component.worker]", "[component.Worker]"), "kebab-case"),
            (VALID.replace("source = \"worker.wasm\"", "source = \"worker.wasm\"\nfiles = []"), "`files`"),
            (VALID.replace("[[trigger.redis]]", "[[trigger.mqtt]]"), "trigger type \"mqtt\""),
            (VALID.replace("spin_manifest_version = 2", "spin_manifest_version = 1"), "must be 2"),
            (VALID.replace("source = \"api.wasm\"", "sauce = \"api.wasm\""), "unknown field `sauce`"),
            (
                VALID.replace("[variables]", "[application.trigger.http]\nbase = \"/api\"\n[variables]"),
                "may only set base",
            ),
        ];
        for (manifest, expected) in cases {
            let error = error_of(&manifest);
            assert!(error.contains(expected), "expected {expected:?} in {error:?}");
        }
    }
}
