//! A [`VariableSource`] for native unit tests of the components' settings loaders: it answers
//! like a deployment that keeps spin.toml's defaults and records every name asked, so a test can
//! check that a loader reads exactly the variables spin.toml gives its component:
//!
//! ```ignore
//! assert_reads_exactly_the_variables_given("fintech", |variables| run_now(read(variables)));
//! ```
//!
//! Only in builds with the `test-support` feature, which components enable through
//! dev-dependencies: never in a wasm build.
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use super::VariableSource;
use crate::ApiError;

/// The start of the answer for a variable that has no default (required ones, all secrets or
/// connection strings), which ends with the variable's name: long enough to be accepted as a
/// secret, and different for each secret.
const REQUIRED_VALUE: &str = "required-value-of-sixty-four-characters-0123456789abcdef01234567";

pub struct RecordingVariables {
    /// What each variable of the component resolves to.
    values: BTreeMap<String, String>,
    read: RefCell<BTreeSet<String>>,
}

impl RecordingVariables {
    /// The variables `[component.<component>.variables]` in spin.toml gives the component, each
    /// with its template resolved against the application variables' defaults.
    pub fn for_component(component: &str) -> Self {
        let manifest = manifest();
        let defaults = application_defaults(&manifest);
        let given = manifest["component"][component].get("variables").and_then(toml::Value::as_table);
        let values = given
            .into_iter()
            .flatten()
            .map(|(name, template)| {
                let template = template.as_str().unwrap_or_else(|| panic!("{component}.{name} is not a string"));
                (name.clone(), resolve(template, &defaults))
            })
            .collect();
        Self { values, read: RefCell::default() }
    }

    /// Answers `name` with `value` instead (e.g. to take another branch of a loader).
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.values.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Every name asked so far.
    pub fn names_read(&self) -> BTreeSet<String> {
        self.read.borrow().clone()
    }

    /// The names spin.toml gives the component.
    pub fn names_given(&self) -> BTreeSet<String> {
        self.values.keys().cloned().collect()
    }
}

impl VariableSource for RecordingVariables {
    async fn get(&self, name: &str) -> Result<String, ApiError> {
        self.read.borrow_mut().insert(name.to_owned());
        // Spin would refuse a name the component is not given; answering anyway lets the loader
        // go on, and the test then reports every such name at once.
        Ok(self.values.get(name).cloned().unwrap_or_else(|| REQUIRED_VALUE.to_owned()))
    }
}

/// Runs `load`, and the loader of the variables `shared` reads on every component's behalf
/// ([`crate::request_log::read_level`]), against `component`'s variables (spin.toml's defaults)
/// and asserts that they accept them and read exactly the variables spin.toml gives the
/// component: no more (Spin would refuse the read) and no fewer (a variable that configures
/// nothing).
pub fn assert_reads_exactly_the_variables_given<T>(
    component: &str,
    load: impl FnOnce(&RecordingVariables) -> Result<T, ApiError>,
) {
    let variables = RecordingVariables::for_component(component);
    if let Err(error) = load(&variables) {
        panic!("{component} refuses spin.toml's defaults: {error:?}");
    }
    if let Err(error) = run_now(crate::request_log::read_level(&variables)) {
        panic!("{component}'s log_level is unusable: {error:?}");
    }
    let (read, given) = (variables.names_read(), variables.names_given());
    let not_given: Vec<&String> = read.difference(&given).collect();
    let never_read: Vec<&String> = given.difference(&read).collect();
    assert!(
        not_given.is_empty() && never_read.is_empty(),
        "{component} reads {not_given:?}, not given to it in spin.toml, and is given {never_read:?}, which it never reads"
    );
}

/// Runs a loader to completion. A loader awaits nothing but its variable source, which answers
/// at once, so one poll finishes it.
pub fn run_now<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a settings loader waited on something other than its variables"),
    }
}

fn manifest() -> toml::Table {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../spin.toml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{path}: {error}"));
    text.parse().unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// Each application variable's default; [`REQUIRED_VALUE`] and the name for those without one.
fn application_defaults(manifest: &toml::Table) -> BTreeMap<String, String> {
    let variables = manifest["variables"].as_table().expect("spin.toml has [variables]");
    variables
        .iter()
        .map(|(name, spec)| {
            let default = spec.get("default").and_then(toml::Value::as_str).map(str::to_owned);
            (name.clone(), default.unwrap_or_else(|| format!("{REQUIRED_VALUE}-{name}")))
        })
        .collect()
}

/// `template` with every `{{ name }}` replaced by that application variable's value.
fn resolve(template: &str, defaults: &BTreeMap<String, String>) -> String {
    let mut resolved = String::new();
    let mut rest = template;
    while let Some((before, after)) = rest.split_once("{{") {
        let (name, after) = after.split_once("}}").unwrap_or_else(|| panic!("unclosed {{{{ in {template:?}"));
        let name = name.trim();
        resolved.push_str(before);
        resolved.push_str(defaults.get(name).unwrap_or_else(|| panic!("{template:?} names undeclared {name}")));
        rest = after;
    }
    resolved.push_str(rest);
    resolved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_resolve_against_defaults() {
        let defaults = BTreeMap::from([("host".to_owned(), "db:5432".to_owned())]);
        assert_eq!(resolve("postgres://{{ host }}/x", &defaults), "postgres://db:5432/x");
        assert_eq!(resolve("{{host}}{{ host }}", &defaults), "db:5432db:5432");
        assert_eq!(resolve("plain", &defaults), "plain");
    }

    #[test]
    fn every_name_asked_is_recorded_and_overrides_win() {
        let variables = RecordingVariables::for_component("fintech").with("default_currency", "EUR");
        assert_eq!(run_now(variables.text("default_currency")).unwrap(), "EUR");
        assert_eq!(run_now(variables.text("jwt_issuer")).unwrap(), "sendinchat", "spin.toml's default");
        let required = run_now(variables.secret("jwt_secret")).unwrap();
        assert_eq!(required, format!("{REQUIRED_VALUE}-jwt_secret"), "required: no default, one value per name");
        run_now(variables.text("not_given_to_fintech")).unwrap();
        let read = ["default_currency", "jwt_issuer", "jwt_secret", "not_given_to_fintech"];
        assert_eq!(variables.names_read(), read.map(str::to_owned).into());
        assert!(variables.names_given().contains("admin_token"));
    }
}
