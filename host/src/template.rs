//! `{{ variable }}` templates, as Spin accepts them in component variables,
//! `allowed_outbound_hosts` and Redis trigger settings.

use std::collections::HashMap;

use anyhow::{Context, bail};

#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    Variable(String),
}

impl Template {
    /// Splits `text` into literals and `{{ name }}` references. As in Spin, the name is trimmed
    /// and the first `}}` closes a reference; an unclosed `{{` is an error.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut parts = Vec::new();
        let mut remainder = text;
        while !remainder.is_empty() {
            if let Some(after_open) = remainder.strip_prefix("{{") {
                let (name, rest) =
                    after_open.split_once("}}").with_context(|| format!("unmatched '{{{{' in template {text:?}"))?;
                parts.push(Part::Variable(name.trim().to_owned()));
                remainder = rest;
            } else {
                let literal_end = remainder.find("{{").unwrap_or(remainder.len());
                parts.push(Part::Literal(remainder[..literal_end].to_owned()));
                remainder = &remainder[literal_end..];
            }
        }
        Ok(Self { parts })
    }

    pub fn variable_names(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|part| match part {
            Part::Variable(name) => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// Substitutes every reference from `values`, which must hold each name referenced.
    pub fn render(&self, values: &HashMap<String, String>) -> anyhow::Result<String> {
        let mut rendered = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(literal) => rendered.push_str(literal),
                Part::Variable(name) => match values.get(name) {
                    Some(value) => rendered.push_str(value),
                    None => bail!("unknown variable {name:?}"),
                },
            }
        }
        Ok(rendered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_literals_and_trimmed_references() {
        let template = Template::parse("postgres://{{ host }}:{{port}}/db").unwrap();
        let values =
            HashMap::from([("host".to_owned(), "127.0.0.1".to_owned()), ("port".to_owned(), "5432".to_owned())]);
        assert_eq!(template.variable_names().collect::<Vec<_>>(), ["host", "port"]);
        assert_eq!(template.render(&values).unwrap(), "postgres://127.0.0.1:5432/db");
    }

    #[test]
    fn rejects_unclosed_references_and_unknown_names() {
        assert!(Template::parse("{{ host").is_err());
        let template = Template::parse("{{ missing }}").unwrap();
        assert!(template.render(&HashMap::new()).is_err());
    }
}
