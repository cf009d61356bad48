//! The subset of JSON Schema (2020-12, as OpenAPI 3.1 uses it) that openapi.yaml is written in,
//! and nothing more: [`Schemas::audit`] refuses a document that uses any other keyword, so no
//! constraint in the spec is ever silently ignored by the suite.
use std::collections::HashMap;

use regex_lite::Regex;
use serde_json::{Map, Value};

/// Keywords that constrain an instance; each is implemented in [`Schemas::check`].
const ASSERTIONS: &[&str] = &[
    "$ref",
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "const",
    "allOf",
    "anyOf",
    "oneOf",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
];

/// Keywords that only describe (JSON Schema's annotations).
const ANNOTATIONS: &[&str] =
    &["description", "title", "examples", "default", "deprecated", "contentEncoding", "readOnly", "writeOnly"];

/// The `format`s checked; any other is refused by the audit.
const FORMATS: &[&str] = &["date-time", "int64"];

/// A document's schemas, with every `pattern` compiled once.
pub struct Schemas {
    document: Value,
    patterns: HashMap<String, Regex>,
}

impl Schemas {
    /// Takes `document` after checking that every schema at `roots` (JSON pointers into it) uses
    /// only supported keywords, and compiles its patterns. Errors name the offending location.
    pub fn audit(document: Value, roots: &[String]) -> Result<Self, String> {
        let mut patterns = HashMap::new();
        for root in roots {
            let schema = document.pointer(root).ok_or(format!("{root}: no such location"))?;
            audit_schema(&document, &mut patterns, &format!("#{root}"), schema)?;
        }
        Ok(Self { document, patterns })
    }

    pub fn document(&self) -> &Value {
        &self.document
    }

    /// The value at a local reference (`#/components/schemas/User`).
    pub fn resolve(&self, reference: &str) -> Option<&Value> {
        resolve(&self.document, reference)
    }

    /// Every way `instance` (at `path`, e.g. `$.items[0]`) breaks `schema`; empty when it conforms.
    pub fn check(&self, schema: &Value, instance: &Value, path: &str) -> Vec<String> {
        let mut errors = Vec::new();
        let Value::Object(schema) = schema else { return errors };
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            match self.resolve(reference) {
                Some(target) => errors.extend(self.check(target, instance, path)),
                None => errors.push(format!("{path}: unresolvable {reference}")),
            }
        }
        if let Some(types) = schema.get("type")
            && !type_list(types).iter().any(|kind| has_type(instance, kind))
        {
            errors.push(format!("{path}: {} is not of type {types}", brief(instance)));
            return errors;
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(instance)
        {
            errors.push(format!("{path}: {} is not one of {}", brief(instance), Value::from(allowed.clone())));
        }
        if let Some(expected) = schema.get("const")
            && expected != instance
        {
            errors.push(format!("{path}: {} is not {expected}", brief(instance)));
        }
        self.check_combinators(schema, instance, path, &mut errors);
        match instance {
            Value::Object(object) => self.check_object(schema, object, path, &mut errors),
            Value::Array(items) => self.check_array(schema, items, path, &mut errors),
            Value::String(text) => self.check_string(schema, text, path, &mut errors),
            Value::Number(_) => check_number(schema, instance, path, &mut errors),
            _ => {}
        }
        errors
    }

    fn check_combinators(&self, schema: &Map<String, Value>, instance: &Value, path: &str, errors: &mut Vec<String>) {
        let branches = |keyword: &str| schema.get(keyword).and_then(Value::as_array).cloned().unwrap_or_default();
        for branch in branches("allOf") {
            errors.extend(self.check(&branch, instance, path));
        }
        for keyword in ["anyOf", "oneOf"] {
            let branches = branches(keyword);
            if branches.is_empty() {
                continue;
            }
            let outcomes: Vec<Vec<String>> = branches.iter().map(|branch| self.check(branch, instance, path)).collect();
            let passed = outcomes.iter().filter(|outcome| outcome.is_empty()).count();
            if passed == 0 || (keyword == "oneOf" && passed > 1) {
                let reasons: Vec<String> = outcomes.into_iter().flatten().collect();
                errors.push(format!(
                    "{path}: {} matches {passed} of the {keyword} branches ({})",
                    brief(instance),
                    reasons.join("; ")
                ));
            }
        }
    }

    fn check_object(
        &self,
        schema: &Map<String, Value>,
        object: &Map<String, Value>,
        path: &str,
        errors: &mut Vec<String>,
    ) {
        let properties = schema.get("properties").and_then(Value::as_object);
        for required in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            if let Some(name) = required.as_str()
                && !object.contains_key(name)
            {
                errors.push(format!("{path}: required field {name:?} is missing"));
            }
        }
        for (name, value) in object {
            let here = format!("{path}.{name}");
            match (properties.and_then(|properties| properties.get(name)), schema.get("additionalProperties")) {
                (Some(property), _) => errors.extend(self.check(property, value, &here)),
                (None, Some(Value::Bool(false))) => errors.push(format!("{here}: field not declared by the contract")),
                (None, Some(additional @ Value::Object(_))) => errors.extend(self.check(additional, value, &here)),
                (None, _) => {}
            }
        }
    }

    fn check_array(&self, schema: &Map<String, Value>, items: &[Value], path: &str, errors: &mut Vec<String>) {
        check_size(schema, ("minItems", "maxItems"), items.len(), "items", path, errors);
        if let Some(item_schema) = schema.get("items") {
            for (index, item) in items.iter().enumerate() {
                errors.extend(self.check(item_schema, item, &format!("{path}[{index}]")));
            }
        }
    }

    fn check_string(&self, schema: &Map<String, Value>, text: &str, path: &str, errors: &mut Vec<String>) {
        check_size(schema, ("minLength", "maxLength"), text.chars().count(), "characters", path, errors);
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
            match self.patterns.get(pattern) {
                Some(regex) if regex.is_match(text) => {}
                Some(_) => errors.push(format!("{path}: {text:?} does not match {pattern}")),
                None => errors.push(format!("{path}: pattern {pattern} was not compiled by the audit")),
            }
        }
        if schema.get("format").and_then(Value::as_str) == Some("date-time") && !is_rfc3339_date_time(text) {
            errors.push(format!("{path}: {text:?} is not an RFC 3339 date-time"));
        }
    }
}

fn audit_schema(
    document: &Value,
    patterns: &mut HashMap<String, Regex>,
    location: &str,
    schema: &Value,
) -> Result<(), String> {
    let Value::Object(schema) = schema else {
        return Err(format!("{location}: a schema must be an object"));
    };
    for (keyword, value) in schema {
        let here = format!("{location}/{keyword}");
        match keyword.as_str() {
            "properties" => {
                for (name, property) in value.as_object().ok_or(format!("{here}: not an object"))? {
                    audit_schema(document, patterns, &format!("{here}/{name}"), property)?;
                }
            }
            "items" => audit_schema(document, patterns, &here, value)?,
            "additionalProperties" if !value.is_boolean() => audit_schema(document, patterns, &here, value)?,
            "allOf" | "anyOf" | "oneOf" => {
                for (index, branch) in value.as_array().ok_or(format!("{here}: not an array"))?.iter().enumerate() {
                    audit_schema(document, patterns, &format!("{here}/{index}"), branch)?;
                }
            }
            "$ref" => {
                let target = value.as_str().ok_or(format!("{here}: not a string"))?;
                resolve(document, target).ok_or(format!("{here}: {target} does not exist"))?;
            }
            "pattern" => {
                let pattern = value.as_str().ok_or(format!("{here}: not a string"))?;
                let regex = Regex::new(pattern).map_err(|error| format!("{here}: {error}"))?;
                patterns.insert(pattern.to_owned(), regex);
            }
            "format" if !value.as_str().is_some_and(|format| FORMATS.contains(&format)) => {
                return Err(format!("{here}: format {value} is not checked by the suite"));
            }
            keyword if ASSERTIONS.contains(&keyword) || ANNOTATIONS.contains(&keyword) => {}
            keyword => return Err(format!("{here}: keyword {keyword:?} is not supported by tests/src/contract")),
        }
    }
    Ok(())
}

fn resolve<'a>(document: &'a Value, reference: &str) -> Option<&'a Value> {
    document.pointer(reference.strip_prefix('#')?)
}

fn type_list(types: &Value) -> Vec<&str> {
    match types {
        Value::String(kind) => vec![kind.as_str()],
        Value::Array(kinds) => kinds.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn has_type(instance: &Value, kind: &str) -> bool {
    match (kind, instance) {
        ("null", Value::Null) | ("boolean", Value::Bool(_)) | ("string", Value::String(_)) => true,
        ("object", Value::Object(_)) | ("array", Value::Array(_)) | ("number", Value::Number(_)) => true,
        ("integer", Value::Number(number)) => number.is_i64() || number.is_u64(),
        _ => false,
    }
}

/// A bound keyword, the orderings of instance against bound it allows, and how to say it is broken.
type Bound = (&'static str, fn(std::cmp::Ordering) -> bool, &'static str);

const BOUNDS: [Bound; 3] = [
    ("minimum", std::cmp::Ordering::is_ge, "less than"),
    ("maximum", std::cmp::Ordering::is_le, "more than"),
    ("exclusiveMinimum", std::cmp::Ordering::is_gt, "not more than"),
];

fn check_number(schema: &Map<String, Value>, instance: &Value, path: &str, errors: &mut Vec<String>) {
    for (keyword, allowed, violation) in BOUNDS {
        if let Some(limit) = schema.get(keyword).filter(|bound| bound.is_number())
            && !compare(instance, limit).is_some_and(allowed)
        {
            errors.push(format!("{path}: {instance} is {violation} {limit}"));
        }
    }
    if schema.get("format").and_then(Value::as_str) == Some("int64") && instance.as_i64().is_none() {
        errors.push(format!("{path}: {instance} is not a 64-bit integer"));
    }
}

/// Compares two JSON numbers exactly when both are integers (ids reach 2^63 - 1, beyond f64's
/// precision), else as floats.
fn compare(left: &Value, right: &Value) -> Option<std::cmp::Ordering> {
    match (left.as_i64(), right.as_i64()) {
        (Some(left), Some(right)) => Some(left.cmp(&right)),
        _ => left.as_f64()?.partial_cmp(&right.as_f64()?),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` with each field in range (RFC 3339 §5.6).
fn is_rfc3339_date_time(text: &str) -> bool {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = text.get(range)?;
        part.bytes().all(|byte| byte.is_ascii_digit()).then(|| part.parse().ok())?
    };
    let (Some(_year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) =
        (digits(0..4), digits(5..7), digits(8..10), digits(11..13), digits(14..16), digits(17..19))
    else {
        return false;
    };
    let separators = bytes.len() > 19
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && matches!(bytes[10], b'T' | b't')
        && bytes[13] == b':'
        && bytes[16] == b':';
    let in_range = (1..=12).contains(&month) && (1..=31).contains(&day) && hour < 24 && minute < 60 && second <= 60;
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        rest = &fraction[digits..];
    }
    let zone = match rest.as_bytes() {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|byte| byte.is_ascii_digit()),
        _ => false,
    };
    separators && in_range && zone
}

/// A short rendering of a value for error messages.
fn brief(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(80) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Checks `size` (of `unit`s) against the schema's lower and upper bound keywords.
fn check_size(
    schema: &Map<String, Value>,
    (minimum_key, maximum_key): (&str, &str),
    size: usize,
    unit: &str,
    path: &str,
    errors: &mut Vec<String>,
) {
    let size = size as u64;
    if let Some(minimum) = schema.get(minimum_key).and_then(Value::as_u64)
        && size < minimum
    {
        errors.push(format!("{path}: {size} {unit}, fewer than {minimum}"));
    }
    if let Some(maximum) = schema.get(maximum_key).and_then(Value::as_u64)
        && size > maximum
    {
        errors.push(format!("{path}: {size} {unit}, more than {maximum}"));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn errors(schema: Value, instance: Value) -> Vec<String> {
        let document = json!({"components": {"schemas": {"S": schema, "Id": {"type": "integer", "minimum": 1}}}});
        let schemas = Schemas::audit(document, &["/components/schemas/S".to_owned()]).unwrap();
        schemas.check(&json!({"$ref": "#/components/schemas/S"}), &instance, "$")
    }

    #[test]
    fn closed_objects_refuse_undeclared_and_missing_fields() {
        let schema = json!({"type": "object", "required": ["id"], "additionalProperties": false,
                            "properties": {"id": {"$ref": "#/components/schemas/Id"}}});
        assert!(errors(schema.clone(), json!({"id": 3})).is_empty());
        assert_eq!(
            errors(schema.clone(), json!({"id": 3, "extra": 1})),
            ["$.extra: field not declared by the contract"]
        );
        assert_eq!(errors(schema.clone(), json!({})), ["$: required field \"id\" is missing"]);
        assert_eq!(errors(schema, json!({"id": 0})), ["$.id: 0 is less than 1"]);
    }

    #[test]
    fn types_nullability_enums_and_patterns() {
        let nullable_text = json!({"type": ["string", "null"], "pattern": "^[0-9]+$"});
        assert!(errors(nullable_text.clone(), json!(null)).is_empty());
        assert!(errors(nullable_text.clone(), json!("10")).is_empty());
        assert_eq!(errors(nullable_text.clone(), json!("x")).len(), 1);
        assert_eq!(errors(nullable_text, json!(10)).len(), 1);
        assert_eq!(errors(json!({"enum": ["a", "b"]}), json!("c")).len(), 1);
        assert_eq!(errors(json!({"type": "integer"}), json!(1.5)).len(), 1);
        assert_eq!(
            errors(json!({"type": "integer", "format": "int64"}), json!(18_446_744_073_709_551_615u64)).len(),
            1
        );
    }

    #[test]
    fn one_of_needs_exactly_one_branch() {
        let schema = json!({"oneOf": [{"type": "integer"}, {"type": "number"}]});
        assert!(errors(schema.clone(), json!(1.5)).is_empty());
        assert_eq!(errors(schema, json!(1)).len(), 1, "an integer is also a number");
        assert!(errors(json!({"anyOf": [{"type": "integer"}, {"type": "number"}]}), json!(1)).is_empty());
    }

    #[test]
    fn date_times_are_rfc_3339() {
        for good in ["2026-11-24T21:07:03.123456Z", "2026-11-24T21:07:03Z", "2026-11-24t21:07:03+01:00"] {
            assert!(is_rfc3339_date_time(good), "{good}");
        }
        for bad in ["2026-11-24 21:07:03Z", "2026-13-24T21:07:03Z", "2026-11-24T21:07:03", "2026-11-24T21:07:03.Z", ""]
        {
            assert!(!is_rfc3339_date_time(bad), "{bad}");
        }
    }

    #[test]
    fn unsupported_keywords_and_formats_are_refused_when_loading() {
        for schema in [
            json!({"type": "string", "format": "email"}),
            json!({"if": {"type": "string"}}),
            json!({"$ref": "#/nowhere"}),
        ] {
            let document = json!({"components": {"schemas": {"S": schema.clone()}}});
            assert!(Schemas::audit(document, &["/components/schemas/S".to_owned()]).is_err(), "{schema}");
        }
    }
}
