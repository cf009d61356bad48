//! `spin.toml`, where the components are described: each component's built interface (what it
//! exports and imports) and the manifest's consistency with itself. Whether each component's code
//! reads exactly the variables given to it here is checked by the component's own unit test
//! (`src/settings.rs`), which runs its settings loader.
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use sendinchat_tests::processes::build::{wasm_components, workspace_root};
use wasmparser::{Parser, Payload};

const APP_COMPONENTS: [&str; 7] = ["auth", "fintech", "chat", "chat-fanout", "health", "docs", "web"];

/// The names a component exports and imports at its top level (not those of nested modules).
fn interface_of(wasm: &[u8]) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut exports, mut imports) = (BTreeSet::new(), BTreeSet::new());
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.expect("a valid component") {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentExportSection(section) if depth == 0 => {
                exports.extend(section.into_iter().map(|export| export.unwrap().name.name.to_owned()));
            }
            Payload::ComponentImportSection(section) if depth == 0 => {
                imports.extend(section.into_iter().map(|import| import.unwrap().name.name.to_owned()));
            }
            _ => {}
        }
    }
    (exports, imports)
}

fn component_wasm(package: &str) -> Vec<u8> {
    wasm_components(&[package]).expect("components build");
    let file: PathBuf =
        workspace_root().join(format!("target/wasm32-wasip2/release/{}.wasm", package.replace('-', "_")));
    std::fs::read(&file).unwrap_or_else(|error| panic!("{}: {error}", file.display()))
}

#[test]
fn each_component_exports_its_trigger_interface_and_imports_only_spin_and_wasi() {
    for package in APP_COMPONENTS {
        let (exports, imports) = interface_of(&component_wasm(package));
        let expected_export = match package {
            "chat-fanout" => "spin:redis/inbound-redis@3.0.0",
            _ => "wasi:http/handler@0.3.0",
        };
        assert!(exports.contains(expected_export), "{package} exports {exports:?}");
        // Portability: a component that imported anything else would not run under real Spin.
        let foreign: Vec<&String> =
            imports.iter().filter(|name| !name.starts_with("wasi:") && !name.starts_with("spin:")).collect();
        assert!(foreign.is_empty(), "{package} imports {foreign:?}");
    }
}

/// spin.toml; the parser refuses a variable (or any key) declared twice.
fn manifest() -> toml::Table {
    let text = std::fs::read_to_string(workspace_root().join("spin.toml")).expect("spin.toml");
    text.parse().expect("spin.toml is TOML")
}

/// The `{{ name }}` references in a template.
fn template_references(template: &str) -> Vec<String> {
    template
        .split("{{")
        .skip(1)
        .filter_map(|rest| rest.split_once("}}").map(|(name, _)| name.trim().to_owned()))
        .collect()
}

/// Whether `component` has the unit test that runs its settings loader against spin.toml: the
/// loader is the only place its code reads variables (clippy's `disallowed-methods` refuses any
/// other), and the test fails unless it reads exactly the variables given here.
/// Whether the component's `src/settings.rs` (or, for one without settings of its own, its
/// `src/lib.rs`) runs the settings-loader test.
fn has_settings_loader_test(component: &str) -> bool {
    let sources = workspace_root().join("components").join(component).join("src");
    ["settings.rs", "lib.rs"].iter().any(|file| {
        std::fs::read_to_string(sources.join(file))
            .is_ok_and(|code| code.contains(&format!("assert_reads_exactly_the_variables_given(\"{component}\"")))
    })
}

#[test]
fn the_manifest_is_consistent_with_itself() {
    let manifest = manifest();
    assert_eq!(manifest["spin_manifest_version"].as_integer(), Some(2));
    let declared: BTreeMap<String, toml::Table> = manifest["variables"]
        .as_table()
        .unwrap()
        .iter()
        .map(|(name, spec)| (name.clone(), spec.as_table().unwrap().clone()))
        .collect();
    for (name, spec) in &declared {
        let required = spec.get("required").and_then(|value| value.as_bool()) == Some(true);
        assert!(required != spec.contains_key("default"), "{name}: exactly one of required and default");
        if spec.get("secret").and_then(|value| value.as_bool()) == Some(true) {
            assert!(required, "secret {name} must not have a usable default");
        }
    }

    let components = manifest["component"].as_table().unwrap();
    assert_eq!(components.keys().map(String::as_str).collect::<BTreeSet<_>>(), BTreeSet::from(APP_COMPONENTS));
    let mut used = BTreeSet::new();
    for (id, component) in components {
        let component = component.as_table().unwrap();
        let source = component["source"].as_str().unwrap();
        assert!(source.ends_with(&format!("{}.wasm", id.replace('-', "_"))), "{id}: {source}");
        let build = component["build"]["command"].as_str().unwrap();
        assert!(build.ends_with(&format!("build-components.sh {id}")), "{id}: {build}");

        let variables = component.get("variables").and_then(|value| value.as_table()).cloned().unwrap_or_default();
        let hosts = component["allowed_outbound_hosts"].as_array().unwrap();
        let templates = variables.values().chain(hosts.iter()).map(|value| value.as_str().unwrap());
        for reference in templates.flat_map(template_references) {
            assert!(declared.contains_key(&reference), "{id} refers to undeclared variable {reference}");
            used.insert(reference);
        }
        assert!(
            variables.is_empty() || has_settings_loader_test(id),
            "{id} is given variables but has no settings loader test (see components/fintech/src/settings.rs)"
        );
        // Least privilege: a component may reach Postgres or Redis only if it reads their URL.
        for (scheme, variable) in [("postgres://", "database_url"), ("redis://", "redis_url")] {
            let reaches = hosts.iter().any(|host| host.as_str().unwrap().starts_with(scheme));
            assert_eq!(reaches, variables.contains_key(variable), "{id}: {scheme} access vs {variable}");
        }
    }
    for trigger in
        manifest["trigger"]["http"].as_array().unwrap().iter().chain(manifest["trigger"]["redis"].as_array().unwrap())
    {
        let component = trigger["component"].as_str().unwrap();
        assert!(components.contains_key(component), "trigger names unknown component {component}");
        for reference in trigger.get("channel").and_then(|c| c.as_str()).map(template_references).unwrap_or_default() {
            used.insert(reference);
        }
    }
    used.extend(template_references(manifest["application"]["trigger"]["redis"]["address"].as_str().unwrap()));
    let unused: Vec<&String> = declared.keys().filter(|name| !used.contains(*name)).collect();
    assert!(unused.is_empty(), "declared but never used: {unused:?}");
}
