//! Application variables: values from `SPIN_VARIABLE_<NAME>` or the manifest defaults, and the
//! per-component `{{ var }}` expansions (read by components through `variables_interface`).
//!
//! Spin resolves a variable on every `get`; its environment provider reads values that cannot
//! change while the process runs, so resolving everything once at start is equivalent, and it
//! lets a missing required variable stop `up` before it listens, as Spin does.

use std::collections::{BTreeMap, HashMap};

use anyhow::bail;

use crate::bindings::variables_wit::Error as VariablesError;
use crate::template::Template;

/// The prefix of Spin's environment variable provider.
const ENVIRONMENT_PREFIX: &str = "SPIN_VARIABLE_";

/// An application variable as declared under `[variables]`.
#[derive(Debug, Clone)]
pub struct VariableDeclaration {
    pub default: Option<String>,
}

/// Checks a variable name against Spin's rules, returning the reason it is invalid.
pub fn validate_name(name: &str) -> Result<(), String> {
    let reason = if name.is_empty() {
        "must not be empty".to_owned()
    } else if let Some(invalid) = name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')) {
        format!(
            "invalid character {invalid:?}. Variable names may contain only lower-case letters, numbers, and underscores."
        )
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        "must start with a lowercase ASCII letter".to_owned()
    } else if !name.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        "must end with a lowercase ASCII letter or digit".to_owned()
    } else if name.contains("__") {
        "must not contain multiple consecutive underscores".to_owned()
    } else {
        return Ok(());
    };
    Err(format!("{name:?}: {reason}"))
}

/// Resolves every application variable: the environment first, then the default. Fails naming
/// every required variable that has neither.
pub fn resolve_application_variables(
    declarations: &BTreeMap<String, VariableDeclaration>,
    environment: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<HashMap<String, String>> {
    let mut values = HashMap::new();
    let mut missing = Vec::new();
    for (name, declaration) in declarations {
        let from_environment = environment(&environment_key(name));
        match from_environment.or_else(|| declaration.default.clone()) {
            Some(value) => {
                values.insert(name.clone(), value);
            }
            None => missing.push(format!("{name} (set {})", environment_key(name))),
        }
    }
    if !missing.is_empty() {
        bail!("required variable(s) not set: {}", missing.join(", "));
    }
    Ok(values)
}

fn environment_key(name: &str) -> String {
    format!("{ENVIRONMENT_PREFIX}{}", name.to_ascii_uppercase())
}

/// The variables one component sees: its `[component.x.variables]` with templates expanded.
#[derive(Debug, Default)]
pub struct ComponentVariables {
    component_id: String,
    values: HashMap<String, String>,
}

impl ComponentVariables {
    pub fn resolve(
        component_id: &str,
        templates: &BTreeMap<String, Template>,
        application_values: &HashMap<String, String>,
    ) -> anyhow::Result<Self> {
        let values = templates
            .iter()
            .map(|(name, template)| Ok((name.clone(), template.render(application_values)?)))
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { component_id: component_id.to_owned(), values })
    }

    /// The value of `name`, with Spin's error cases and messages.
    pub fn get(&self, name: &str) -> Result<String, VariablesError> {
        validate_name(name).map_err(VariablesError::InvalidName)?;
        self.values
            .get(name)
            .cloned()
            .ok_or_else(|| VariablesError::Undefined(format!("no variable for {:?}.{name:?}", self.component_id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_spin_rules() {
        assert!(validate_name("database_url").is_ok());
        assert!(validate_name("a1").is_ok());
        for invalid in ["", "Database", "1abc", "abc_", "a__b", "with-dash"] {
            assert!(validate_name(invalid).is_err(), "{invalid:?} should be invalid");
        }
    }

    #[test]
    fn environment_overrides_default_and_missing_required_names_every_variable() {
        let declarations = BTreeMap::from([
            ("with_default".to_owned(), VariableDeclaration { default: Some("d".to_owned()) }),
            ("required_a".to_owned(), VariableDeclaration { default: None }),
            ("required_b".to_owned(), VariableDeclaration { default: None }),
        ]);
        let environment = |key: &str| (key == "SPIN_VARIABLE_WITH_DEFAULT").then(|| "e".to_owned());
        let error = resolve_application_variables(&declarations, environment).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("required_a") && message.contains("SPIN_VARIABLE_REQUIRED_B"));

        let environment = |key: &str| match key {
            "SPIN_VARIABLE_WITH_DEFAULT" => Some("e".to_owned()),
            "SPIN_VARIABLE_REQUIRED_A" | "SPIN_VARIABLE_REQUIRED_B" => Some("r".to_owned()),
            _ => None,
        };
        let values = resolve_application_variables(&declarations, environment).unwrap();
        assert_eq!(values["with_default"], "e");
    }

    #[test]
    fn component_lookup_reports_invalid_and_undefined_names() {
        let templates = BTreeMap::from([("greeting".to_owned(), Template::parse("hi {{ who }}").unwrap())]);
        let application = HashMap::from([("who".to_owned(), "there".to_owned())]);
        let variables = ComponentVariables::resolve("probe", &templates, &application).unwrap();
        assert_eq!(variables.get("greeting").unwrap(), "hi there");
        assert!(matches!(variables.get("Bad"), Err(VariablesError::InvalidName(_))));
        assert!(matches!(variables.get("absent"), Err(VariablesError::Undefined(_))));
    }
}
