//! Reading request bodies and parameters, with limits, into values handlers can trust.
//!
//! Errors name the offending field but never echo its value: a value may be a password.
use std::fmt;

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::{BodyExt, Limited};
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};
use spin_sdk::http::Request;

use crate::ApiError;

/// Default limit for JSON request bodies.
pub const BODY_BYTES_MAX: usize = 16 * 1024;

/// Reads the whole body, refusing more than `limit` bytes with 413.
pub async fn read_body(request: Request, limit: usize) -> Result<(http::request::Parts, Bytes), ApiError> {
    let (parts, body) = request.into_parts();
    let declared_too_large = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|length| length.to_str().ok()?.parse::<usize>().ok())
        .is_some_and(|length| length > limit);
    if declared_too_large {
        return Err(payload_too_large(limit));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok((parts, collected.to_bytes())),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(payload_too_large(limit)),
        Err(error) => Err(ApiError::bad_request("unreadable_body", format!("could not read the body: {error}"))),
    }
}

fn payload_too_large(limit: usize) -> ApiError {
    ApiError::new(
        http::StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("request body exceeds {limit} bytes"),
    )
}

/// The media type of the request, lower-cased, without parameters.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(http::header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next().unwrap_or_default().trim();
    Some(essence.to_ascii_lowercase())
}

pub fn is_json(headers: &HeaderMap) -> bool {
    media_type(headers).is_some_and(|media| media == "application/json" || media.ends_with("+json"))
}

pub fn is_form(headers: &HeaderMap) -> bool {
    media_type(headers).is_some_and(|media| media == "application/x-www-form-urlencoded")
}

fn utf8(body: &[u8]) -> Result<&str, ApiError> {
    std::str::from_utf8(body).map_err(|_| ApiError::bad_request("invalid_encoding", "request body is not valid UTF-8"))
}

/// A JSON object body whose fields are taken one by one, each into its domain type. Fields nobody
/// took are refused by [`JsonObject::finish`], so a misspelt field is an error, not a silent no-op.
#[derive(Debug)]
pub struct JsonObject(Map<String, Value>);

impl JsonObject {
    /// Parses a body that must be `application/json` holding one object.
    pub fn from_json_body(headers: &HeaderMap, body: &[u8]) -> Result<Self, ApiError> {
        if !is_json(headers) {
            return Err(unsupported_media_type("application/json"));
        }
        match serde_json::from_str(utf8(body)?) {
            Ok(TopLevel::Object(map)) => Ok(Self(map)),
            Ok(TopLevel::RepeatedField(field)) => Err(repeated_field("malformed_json", &field)),
            // A well-formed body of another type: the visitor refused it.
            Err(error) if error.is_data() => {
                Err(ApiError::bad_request("malformed_json", "request body must be a JSON object"))
            }
            Err(error) => Err(ApiError::bad_request(
                "malformed_json",
                format!("request body is not valid JSON (line {}, column {})", error.line(), error.column()),
            )),
        }
    }

    /// Wraps an already parsed JSON object (e.g. a WebSocket frame).
    pub fn from_map(map: Map<String, Value>) -> Self {
        Self(map)
    }

    /// Parses an `application/x-www-form-urlencoded` body into string fields.
    pub fn from_form_body(body: &[u8]) -> Result<Self, ApiError> {
        let pairs = parse_urlencoded(utf8(body)?)
            .ok_or_else(|| ApiError::bad_request("malformed_form", "request body is not valid form encoding"))?;
        let mut fields = Map::new();
        for (name, value) in pairs {
            insert_once(&mut fields, name, Value::String(value))
                .map_err(|repeated| repeated_field("malformed_form", &repeated))?;
        }
        Ok(Self(fields))
    }

    /// Whether the body has `field` at all, `null` included (which `take` reads as absent).
    pub fn contains(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }

    pub fn take(&mut self, field: &str) -> Option<Value> {
        self.0.remove(field).filter(|value| !value.is_null())
    }

    pub fn require(&mut self, field: &str) -> Result<Value, ApiError> {
        self.take(field).ok_or_else(|| missing(field))
    }

    pub fn take_string(&mut self, field: &str) -> Result<Option<String>, ApiError> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(ApiError::unprocessable("invalid_field", format!("`{field}` must be a string"))),
        }
    }

    pub fn require_string(&mut self, field: &str) -> Result<String, ApiError> {
        self.take_string(field)?.ok_or_else(|| missing(field))
    }

    /// Refuses fields that no handler asked for.
    pub fn finish(self) -> Result<(), ApiError> {
        match self.0.keys().next() {
            None => Ok(()),
            Some(field) => Err(ApiError::unprocessable(
                "unknown_field",
                format!("`{}` is not a field of this request", truncate(field)),
            )),
        }
    }
}

/// A body's top level as [`JsonObject`] reads it: the object, or the first field it names twice.
/// `{"amount":"1","amount":"999"}` means different things to different parsers (most keep the
/// last value, some the first), so a body that repeats a field is refused, not guessed at.
enum TopLevel {
    Object(Map<String, Value>),
    RepeatedField(String),
}

impl<'de> Deserialize<'de> for TopLevel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(TopLevelVisitor)
    }
}

struct TopLevelVisitor;

impl<'de> Visitor<'de> for TopLevelVisitor {
    type Value = TopLevel;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut fields: A) -> Result<TopLevel, A::Error> {
        let mut object = Map::new();
        while let Some((name, value)) = fields.next_entry::<String, Value>()? {
            if let Err(repeated) = insert_once(&mut object, name, value) {
                // The rest must still be read for the parser to see the object end.
                while fields.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                return Ok(TopLevel::RepeatedField(repeated));
            }
        }
        Ok(TopLevel::Object(object))
    }
}

/// Adds a field the object does not have yet, in one look-up; a name it has is given back.
fn insert_once(object: &mut Map<String, Value>, name: String, value: Value) -> Result<(), String> {
    match object.entry(name) {
        serde_json::map::Entry::Vacant(vacant) => {
            vacant.insert(value);
            Ok(())
        }
        serde_json::map::Entry::Occupied(occupied) => Err(occupied.key().clone()),
    }
}

fn repeated_field(code: &'static str, field: &str) -> ApiError {
    ApiError::bad_request(code, format!("`{}` appears more than once in the request body", truncate(field)))
}

fn missing(field: &str) -> ApiError {
    ApiError::unprocessable("missing_field", format!("`{field}` is required"))
}

fn truncate(text: &str) -> String {
    text.chars().take(64).collect()
}

fn unsupported_media_type(expected: &str) -> ApiError {
    ApiError::new(
        http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!("Content-Type must be {expected}"),
    )
}

/// Query parameters of the request URI.
pub fn query_pairs(uri: &http::Uri) -> Result<Vec<(String, String)>, ApiError> {
    parse_urlencoded(uri.query().unwrap_or_default())
        .ok_or_else(|| ApiError::bad_request("malformed_query", "query string is not valid URL encoding"))
}

/// The value of query parameter `name`, if given (the last one wins).
pub fn query_value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().rev().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
}

/// Decodes `a=1&b=x%20y` (also `+` as space). None when a percent escape is broken or the
/// decoded bytes are not UTF-8.
fn parse_urlencoded(input: &str) -> Option<Vec<(String, String)>> {
    input
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(name)?, percent_decode(value)?))
        })
        .collect()
}

fn percent_decode(input: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(input.len());
    let mut rest = input.bytes();
    while let Some(byte) = rest.next() {
        bytes.push(match byte {
            b'+' => b' ',
            b'%' => {
                let high = (rest.next()? as char).to_digit(16)?;
                let low = (rest.next()? as char).to_digit(16)?;
                (high * 16 + low) as u8
            }
            other => other,
        });
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencoded_pairs_decode_escapes_and_plus() {
        let pairs = parse_urlencoded("username=john_doe&password=p%40ss+word%21&empty=").unwrap();
        assert_eq!(
            pairs,
            vec![
                ("username".into(), "john_doe".into()),
                ("password".into(), "p@ss word!".into()),
                ("empty".into(), "".into())
            ]
        );
        assert_eq!(parse_urlencoded("a=%zz"), None);
        assert_eq!(parse_urlencoded("a=%ff"), None, "decoded bytes must be UTF-8");
    }

    #[test]
    fn json_objects_yield_typed_fields_and_refuse_leftovers() {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, "application/json; charset=utf-8".parse().unwrap());
        let mut object = JsonObject::from_json_body(&headers, br#"{"name":"x","n":1,"extra":true}"#).unwrap();
        assert_eq!(object.require_string("name").unwrap(), "x");
        assert_eq!(object.require_string("n").unwrap_err().code, "invalid_field");
        assert_eq!(object.require("missing").unwrap_err().code, "missing_field");
        assert_eq!(object.finish().unwrap_err().code, "unknown_field");
    }

    #[test]
    fn a_field_given_twice_is_refused_not_guessed_at() {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, "application/json".parse().unwrap());
        let twice = JsonObject::from_json_body(&headers, br#"{"amount":"1","note":"x","amount":"999","z":[{}]}"#);
        let refused = twice.unwrap_err();
        assert_eq!(
            (refused.code, refused.message.as_ref()),
            ("malformed_json", "`amount` appears more than once in the request body")
        );
        // Nested objects are values, read as a whole; only the top level's names must differ.
        assert!(JsonObject::from_json_body(&headers, br#"{"a":{"b":1},"c":{"b":2}}"#).is_ok());
        assert_eq!(JsonObject::from_form_body(b"username=a&username=b").unwrap_err().code, "malformed_form");
    }

    #[test]
    fn bodies_that_are_not_json_objects_are_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, "application/json".parse().unwrap());
        let refused = |body: &[u8]| JsonObject::from_json_body(&headers, body).unwrap_err();
        for not_an_object in [&b"[1]"[..], b"\"text\"", b"1", b"null"] {
            assert_eq!(refused(not_an_object).message, "request body must be a JSON object");
        }
        assert!(refused(b"{").message.starts_with("request body is not valid JSON"));
        assert!(refused(br#"{"a":1} x"#).message.starts_with("request body is not valid JSON"));
        assert_eq!(JsonObject::from_json_body(&headers, b"\xff").unwrap_err().code, "invalid_encoding");
        headers.insert(http::header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert_eq!(JsonObject::from_json_body(&headers, b"{}").unwrap_err().code, "unsupported_media_type");
    }
}
