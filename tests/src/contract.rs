//! The API contract, openapi.yaml at the workspace root, as the referee of everything the suite
//! receives: [`check_response`] runs on every response of `TestApp::request`, and
//! [`check_server_event`] on every WebSocket text frame a `ChatSocket` reads. A test whose
//! request got something the spec does not declare fails, naming the request and each violation.
//!
//! A response conforms to an operation when:
//! - its status is one of the operation's declared responses;
//! - every header the response declares `required` is present, and every declared header that is
//!   present conforms to its schema (`Retry-After` is read as an integer);
//! - a response that declares no content has an empty body; otherwise its media type is one the
//!   response declares, and a JSON body conforms to that media type's schema. Objects in the spec
//!   are closed (`additionalProperties: false`), so an undeclared field fails.
//!
//! Requests outside the spec, which tests make on purpose, follow two rules:
//! - **No such route**: a path that no path template matches gets `404` with the error envelope
//!   and code `not_found` (from the component owning the prefix, or the host for other paths).
//! - **Wrong method**: a method that no operation of the matched path has gets `405` with code
//!   `method_not_allowed`, or a `404` envelope, because components refuse a path parameter that
//!   names nothing before they look at the method (`GET /chat/rooms/abc/members` is
//!   `404 room_not_found`).
mod schema;

use std::sync::OnceLock;

use serde_json::Value;

use crate::app::Response;
use crate::processes::build::workspace_root;
pub use schema::Schemas;

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
const ERROR_ENVELOPE: &str = "#/components/schemas/Error";
const SERVER_EVENT: &str = "#/components/schemas/ServerEvent";

/// openapi.yaml, parsed and audited, with its path templates ready for matching.
pub struct Contract {
    schemas: Schemas,
    templates: Vec<PathTemplate>,
}

struct PathTemplate {
    /// As written in the spec, e.g. `/chat/rooms/{room_id}/members`.
    template: String,
    /// `Some(literal)` or `None` for a `{parameter}`.
    segments: Vec<Option<String>>,
}

impl Contract {
    /// The workspace's openapi.yaml, loaded once per test process.
    pub fn global() -> &'static Contract {
        static CONTRACT: OnceLock<Contract> = OnceLock::new();
        CONTRACT.get_or_init(|| {
            let path = workspace_root().join("openapi.yaml");
            let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            Contract::from_yaml(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        })
    }

    pub fn from_yaml(text: &str) -> Result<Contract, String> {
        let document: Value = serde_norway::from_str(text).map_err(|error| error.to_string())?;
        if !document["openapi"].as_str().is_some_and(|version| version.starts_with("3.1")) {
            return Err("not an OpenAPI 3.1 document".to_owned());
        }
        let paths = document["paths"].as_object().ok_or("no paths")?;
        let mut templates: Vec<PathTemplate> = paths
            .keys()
            .map(|template| PathTemplate {
                template: template.clone(),
                segments: segments(template)
                    .map(|segment| (!segment.starts_with('{')).then(|| segment.to_owned()))
                    .collect(),
            })
            .collect();
        // Literal segments beat parameters, position by position (OpenAPI's matching rule).
        templates.sort_by_key(|template| template.segments.iter().map(Option::is_none).collect::<Vec<_>>());
        let mut roots = Vec::new();
        schema_roots(&document, String::new(), &mut roots);
        let schemas = Schemas::audit(document, &roots)?;
        let contract = Contract { schemas, templates };
        contract.audit_responses()?;
        Ok(contract)
    }

    /// The number of operations (method and path pairs) the spec declares.
    pub fn operation_count(&self) -> usize {
        self.templates.iter().map(|template| self.operations(&template.template).count()).sum()
    }

    /// The `operationId` of every operation, sorted.
    pub fn operation_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .templates
            .iter()
            .flat_map(|template| self.operations(&template.template))
            .filter_map(|(_, operation)| operation["operationId"].as_str().map(str::to_owned))
            .collect();
        ids.sort();
        ids
    }

    fn operations<'a>(&'a self, template: &str) -> impl Iterator<Item = (&'a str, &'a Value)> {
        let item = &self.schemas.document()["paths"][template];
        METHODS.into_iter().filter_map(move |method| item.get(method).map(|operation| (method, operation)))
    }

    /// Refuses response keys the checks below do not implement (`default`, `2XX`), so every
    /// status a test accepts is one the spec names.
    fn audit_responses(&self) -> Result<(), String> {
        for template in &self.templates {
            for (method, operation) in self.operations(&template.template) {
                let name = format!("{method} {}", template.template);
                let responses = operation["responses"].as_object().ok_or(format!("{name}: no responses"))?;
                for status in responses.keys() {
                    if status.len() != 3 || !status.bytes().all(|byte| byte.is_ascii_digit()) {
                        return Err(format!("{name}: response key {status:?} is not a status code"));
                    }
                }
            }
        }
        Ok(())
    }

    /// Every way a response breaks the contract; empty when it conforms.
    pub fn violations(
        &self,
        method: &str,
        path_and_query: &str,
        status: u16,
        headers: &http::HeaderMap,
        body: &str,
    ) -> Vec<String> {
        let path = path_and_query.split(['?', '#']).next().unwrap_or_default();
        let Some(template) = self.match_path(path) else {
            return self.rule_violations("no such route", status, &[404], &["not_found"], body);
        };
        let method = method.to_ascii_lowercase();
        let Some(operation) = self.schemas.document()["paths"][&template.template].get(&method) else {
            let codes: &[&str] = if status == 405 { &["method_not_allowed"] } else { &[] };
            return self.rule_violations("wrong method", status, &[404, 405], codes, body);
        };
        let Some(response) = operation["responses"].get(status.to_string()) else {
            let declared: Vec<&String> =
                operation["responses"].as_object().map(|map| map.keys().collect()).unwrap_or_default();
            return vec![format!(
                "status {status} is not declared for {method} {} (declared: {declared:?})",
                template.template
            )];
        };
        let response = self.follow(response);
        let mut errors = self.header_violations(response, headers);
        errors.extend(self.body_violations(response, headers, body));
        errors
    }

    /// A response to a request outside the spec: one of `statuses`, with the error envelope and,
    /// when `codes` is not empty, one of those codes.
    fn rule_violations(&self, rule: &str, status: u16, statuses: &[u16], codes: &[&str], body: &str) -> Vec<String> {
        if !statuses.contains(&status) {
            return vec![format!("{rule}: expected status {statuses:?}, got {status}")];
        }
        let envelope = match serde_json::from_str::<Value>(body) {
            Ok(envelope) => envelope,
            Err(error) => return vec![format!("{rule}: the body is not the JSON error envelope ({error})")],
        };
        let mut errors = self.schemas.check(&reference(ERROR_ENVELOPE), &envelope, "$");
        let code = envelope["error"]["code"].as_str().unwrap_or_default();
        if !codes.is_empty() && !codes.contains(&code) {
            errors.push(format!("{rule}: expected code {codes:?}, got {code:?}"));
        }
        errors
    }

    fn header_violations(&self, response: &Value, headers: &http::HeaderMap) -> Vec<String> {
        let mut errors = Vec::new();
        for (name, header) in response["headers"].as_object().into_iter().flatten() {
            let header = self.follow(header);
            match headers.get(name.to_ascii_lowercase().as_str()).map(|value| value.to_str()) {
                None if header["required"] == true => errors.push(format!("header {name} is required but missing")),
                None => {}
                Some(Err(_)) => errors.push(format!("header {name} is not visible ASCII")),
                Some(Ok(raw)) => {
                    let instance = self.header_value(&header["schema"], raw);
                    errors.extend(self.schemas.check(&header["schema"], &instance, &format!("header {name}")));
                }
            }
        }
        errors
    }

    /// A header's text as the JSON value its schema describes: an integer when the schema says
    /// integer and the text is one, the text otherwise.
    fn header_value(&self, schema: &Value, raw: &str) -> Value {
        let schema = self.follow(schema);
        match (schema["type"].as_str(), raw.parse::<i64>()) {
            (Some("integer"), Ok(number)) => Value::from(number),
            _ => Value::from(raw),
        }
    }

    fn body_violations(&self, response: &Value, headers: &http::HeaderMap, body: &str) -> Vec<String> {
        let Some(content) = response["content"].as_object().filter(|content| !content.is_empty()) else {
            return if body.is_empty() {
                Vec::new()
            } else {
                vec!["a body was sent where none is declared".to_owned()]
            };
        };
        let media_type = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(|value| value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
        let Some(media_type) = media_type else {
            return vec!["Content-Type is missing".to_owned()];
        };
        let Some(declared) = content.get(&media_type) else {
            return vec![format!(
                "Content-Type {media_type} is not declared (declared: {:?})",
                content.keys().collect::<Vec<_>>()
            )];
        };
        if !(media_type == "application/json" || media_type.ends_with("+json")) {
            return Vec::new();
        }
        match serde_json::from_str::<Value>(body) {
            Ok(instance) => self.schemas.check(&declared["schema"], &instance, "$"),
            Err(error) => vec![format!("the body is not JSON ({error})")],
        }
    }

    /// The best template for a concrete path: literal segments beat parameters.
    fn match_path(&self, path: &str) -> Option<&PathTemplate> {
        let trimmed = match path.trim_end_matches('/') {
            "" => "/",
            trimmed => trimmed,
        };
        let parts: Vec<&str> = segments(trimmed).collect();
        self.templates.iter().find(|template| {
            template.segments.len() == parts.len()
                && template.segments.iter().zip(&parts).all(|(segment, part)| match segment {
                    Some(literal) => literal == part,
                    None => !part.is_empty(),
                })
        })
    }

    /// A `$ref`'d object (response, header, schema) replaced by its target.
    fn follow<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value.get("$ref").and_then(Value::as_str).and_then(|target| self.schemas.resolve(target)) {
            Some(target) => self.follow(target),
            None => value,
        }
    }

    /// Every way a WebSocket event breaks the `ServerEvent` schema.
    pub fn event_violations(&self, event: &Value) -> Vec<String> {
        self.schemas.check(&reference(SERVER_EVENT), event, "$")
    }
}

/// Panics, naming the request and every violation, unless `response` conforms to the contract.
pub fn check_response(method: &str, path: &str, response: &Response) {
    let violations = Contract::global().violations(method, path, response.status, &response.headers, &response.text);
    if !violations.is_empty() {
        panic!(
            "{method} {path} -> {}: the response breaks the API contract (openapi.yaml):\n  - {}\nbody: {}",
            response.status,
            violations.join("\n  - "),
            truncate(&response.text)
        );
    }
}

/// Parses a WebSocket text frame from the server and panics unless it is a `ServerEvent`.
pub fn check_server_event(text: &str) -> Value {
    let event: Value = serde_json::from_str(text)
        .unwrap_or_else(|error| panic!("the server sent a text frame that is not JSON ({error}): {}", truncate(text)));
    let violations = Contract::global().event_violations(&event);
    if !violations.is_empty() {
        panic!(
            "a WebSocket event breaks the API contract (openapi.yaml, ServerEvent):\n  - {}\nevent: {}",
            violations.join("\n  - "),
            truncate(text)
        );
    }
    event
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').skip(1).filter(move |_| path != "/")
}

fn reference(target: &str) -> Value {
    serde_json::json!({ "$ref": target })
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(2000) {
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], text.len()),
        None => text.to_owned(),
    }
}

/// JSON pointers to every schema in the document: those under `components/schemas` and every
/// `schema` of a parameter, header or media type.
fn schema_roots(value: &Value, pointer: String, roots: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            for (key, child) in object {
                let child_pointer = format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"));
                if key == "schema" || pointer == "/components/schemas" {
                    roots.push(child_pointer);
                } else {
                    schema_roots(child, child_pointer, roots);
                }
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                schema_roots(item, format!("{pointer}/{index}"), roots);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        pairs.iter().map(|(name, value)| (name.parse().unwrap(), value.parse().unwrap())).collect()
    }

    fn json() -> http::HeaderMap {
        headers(&[("content-type", "application/json")])
    }

    const USER: &str = r#"{"id":7,"username":"alice","created_at":"2026-11-24T21:07:03.123456Z"}"#;

    #[test]
    fn the_workspace_spec_loads_and_names_every_operation_once() {
        let contract = Contract::global();
        let ids = contract.operation_ids();
        assert_eq!(ids.len(), contract.operation_count(), "every operation has an operationId");
        assert!(ids.windows(2).all(|pair| pair[0] != pair[1]), "operationIds are unique: {ids:?}");
        assert!(ids.iter().any(|id| id == "transfer") && ids.iter().any(|id| id == "openRoomSocket"));
    }

    #[test]
    fn a_declared_status_and_shape_conform() {
        let contract = Contract::global();
        assert_eq!(contract.violations("GET", "/users/7", 200, &json(), USER), Vec::<String>::new());
        assert_eq!(contract.violations("GET", "/users?username=alice", 200, &json(), USER), Vec::<String>::new());
    }

    #[test]
    fn an_undeclared_status_or_field_is_a_violation() {
        let contract = Contract::global();
        assert_eq!(contract.violations("GET", "/users/7", 409, &json(), "{}").len(), 1);
        let with_secret = USER.replace('}', r#","password_hash":"x"}"#);
        let violations = contract.violations("GET", "/users/me", 200, &json(), &with_secret);
        assert!(violations.iter().any(|violation| violation.contains("password_hash")), "{violations:?}");
        let wrong_code = r#"{"error":{"code":"teapot","message":"x"}}"#;
        assert_eq!(contract.violations("POST", "/users/register", 409, &json(), wrong_code).len(), 1);
    }

    #[test]
    fn required_headers_are_checked() {
        let contract = Contract::global();
        let unauthorized = r#"{"error":{"code":"unauthorized","message":"no"}}"#;
        assert_eq!(contract.violations("GET", "/users/me", 401, &json(), unauthorized).len(), 1);
        let with_challenge = headers(&[("content-type", "application/json"), ("www-authenticate", "Bearer")]);
        assert!(contract.violations("GET", "/users/me", 401, &with_challenge, unauthorized).is_empty());
        let limited = r#"{"error":{"code":"rate_limited","message":"later"}}"#;
        let retry = |value: &str| headers(&[("content-type", "application/json"), ("retry-after", value)]);
        assert!(contract.violations("POST", "/users/token", 429, &retry("3"), limited).is_empty());
        assert_eq!(contract.violations("POST", "/users/token", 429, &retry("soon"), limited).len(), 1);
    }

    #[test]
    fn literal_segments_beat_parameters() {
        let contract = Contract::global();
        assert_eq!(contract.match_path("/fintech/transactions/sent").unwrap().template, "/fintech/transactions/sent");
        assert_eq!(
            contract.match_path("/fintech/transactions/12").unwrap().template,
            "/fintech/transactions/{transfer_id}"
        );
        assert_eq!(contract.match_path("/users/me/").unwrap().template, "/users/me");
        assert!(contract.match_path("/users/a/b/c").is_none());
    }

    #[test]
    fn requests_outside_the_spec_follow_the_documented_rules() {
        let contract = Contract::global();
        let not_found = r#"{"error":{"code":"not_found","message":"no such route"}}"#;
        let not_allowed = r#"{"error":{"code":"method_not_allowed","message":"this route allows POST"}}"#;
        assert!(contract.violations("GET", "/nowhere", 404, &json(), not_found).is_empty());
        assert_eq!(contract.violations("GET", "/nowhere", 200, &json(), "{}").len(), 1);
        assert!(contract.violations("GET", "/users/register", 405, &json(), not_allowed).is_empty());
        assert_eq!(contract.violations("GET", "/users/register", 405, &json(), not_found).len(), 1);
        assert_eq!(contract.violations("GET", "/users/register", 200, &json(), USER).len(), 1);
    }

    /// Every object the API sends or takes as JSON is closed, so an undeclared field fails.
    #[test]
    fn every_json_object_schema_is_closed() {
        fn open_objects(schema: &Value, location: &str, open: &mut Vec<String>) {
            let Value::Object(keywords) = schema else { return };
            if keywords.get("type") == Some(&Value::from("object"))
                && keywords.get("additionalProperties") != Some(&Value::Bool(false))
            {
                open.push(location.to_owned());
            }
            for (keyword, value) in keywords {
                match (keyword.as_str(), value) {
                    ("properties", Value::Object(properties)) => {
                        for (name, property) in properties {
                            open_objects(property, &format!("{location}/properties/{name}"), open);
                        }
                    }
                    ("items" | "additionalProperties", _) => {
                        open_objects(value, &format!("{location}/{keyword}"), open)
                    }
                    ("allOf" | "anyOf" | "oneOf", Value::Array(branches)) => {
                        for (index, branch) in branches.iter().enumerate() {
                            open_objects(branch, &format!("{location}/{keyword}/{index}"), open);
                        }
                    }
                    _ => {}
                }
            }
        }
        let document = Contract::global().schemas.document();
        let mut roots = Vec::new();
        schema_roots(document, String::new(), &mut roots);
        let mut open = Vec::new();
        // The YAML document served at /openapi.yaml is described, not closed.
        for root in roots.iter().filter(|root| !root.contains("/application~1yaml/")) {
            open_objects(document.pointer(root).unwrap(), root, &mut open);
        }
        assert!(open.is_empty(), "object schemas without additionalProperties: false: {open:#?}");
    }

    #[test]
    fn websocket_events_are_server_events() {
        let contract = Contract::global();
        assert!(
            contract.event_violations(&serde_json::json!({"type": "typing", "room_id": 1, "user_id": 2})).is_empty()
        );
        assert!(!contract.event_violations(&serde_json::json!({"type": "typing", "room_id": 1})).is_empty());
        assert!(!contract.event_violations(&serde_json::json!({"type": "shout"})).is_empty());
    }
}
