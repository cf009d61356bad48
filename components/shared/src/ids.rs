//! Identifiers and pagination parameters, parsed from raw input in one place.
use std::fmt;

use serde_json::Value;

use crate::ApiError;

/// The largest page size an operator may configure (`max_page_size`): beyond it one request
/// would hold a database connection for too long.
pub const PAGE_SIZE_CEILING: u32 = 1000;
/// The page size when a request names none (or the configured maximum, if smaller).
const PAGE_LIMIT_DEFAULT: u32 = 50;

/// A non-negative 64-bit integer written in digits only (ids, cursors): no sign, no whitespace,
/// no leading '+', so one number has one spelling.
pub fn parse_digits(raw: &str) -> Option<i64> {
    if raw.is_empty() || raw.len() > 19 || !raw.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}

/// A database id (users, rooms, messages, transfers): a positive 64-bit integer.
fn parse_id(raw: &str) -> Option<i64> {
    parse_digits(raw).filter(|id| *id > 0)
}

fn id_from_json(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => parse_id(&number.to_string()),
        _ => None,
    }
}

macro_rules! id_type {
    ($name:ident, $what:literal) => {
        #[doc = concat!("The id of a ", $what, ".")]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(i64);

        impl $name {
            /// Parses a path segment or query value.
            pub fn parse(raw: &str) -> Option<Self> {
                parse_id(raw).map(Self)
            }

            /// Parses a JSON field (an integer).
            pub fn from_json(value: &Value) -> Option<Self> {
                id_from_json(value).map(Self)
            }

            pub fn get(self) -> i64 {
                self.0
            }
        }

        /// Ids read back from the database are trusted: its identity columns start at 1.
        impl spin_sdk::pg::Decode for $name {
            fn decode(value: &spin_sdk::pg::DbValue) -> Result<Self, spin_sdk::pg::Error> {
                i64::decode(value).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(formatter)
            }
        }
    };
}

id_type!(UserId, "user");
id_type!(RoomId, "chat room");
id_type!(MessageId, "chat message");
id_type!(TransferId, "ledger transfer");
id_type!(PaymentRequestId, "payment request");
id_type!(SplitRequestId, "split request (one request to several payers)");
id_type!(SessionId, "session (a refresh-token family, begun by one login)");

/// An `Idempotency-Key` header: 1 to 255 visible ASCII characters, chosen by the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const HEADER: &'static str = "idempotency-key";
    const LENGTH_MAX: usize = 255;

    /// Reads the header; absent is fine (the request is then not retry-safe), malformed is 400, and
    /// so is a second one: which of two keys a retry would be filed under is anyone's guess.
    pub fn from_headers(headers: &http::HeaderMap) -> Result<Option<Self>, ApiError> {
        let mut values = headers.get_all(Self::HEADER).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(ApiError::bad_request(
                "invalid_idempotency_key",
                "give one Idempotency-Key header, not several",
            ));
        }
        let key = value.to_str().ok().filter(|key| {
            (1..=Self::LENGTH_MAX).contains(&key.len()) && key.bytes().all(|byte| byte.is_ascii_graphic())
        });
        match key {
            Some(key) => Ok(Some(Self(key.to_owned()))),
            None => Err(ApiError::bad_request(
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `limit` of a paginated listing: 1 to the configured maximum, default 50.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit(u32);

impl PageLimit {
    /// `maximum` is the configured `max_page_size` (at most [`PAGE_SIZE_CEILING`]).
    pub fn parse(raw: Option<&str>, maximum: u32) -> Result<Self, ApiError> {
        let Some(raw) = raw else {
            return Ok(Self(PAGE_LIMIT_DEFAULT.min(maximum)));
        };
        raw.parse().ok().filter(|limit| (1..=maximum).contains(limit)).map(Self).ok_or_else(|| {
            ApiError::bad_request("invalid_limit", format!("limit must be an integer from 1 to {maximum}"))
        })
    }

    pub fn get(self) -> i32 {
        // At most PAGE_SIZE_CEILING, which fits any integer type.
        self.0 as i32
    }
}

/// Checks a configured `max_page_size`.
pub fn checked_page_size(maximum: u32) -> Result<u32, ApiError> {
    if (1..=PAGE_SIZE_CEILING).contains(&maximum) {
        Ok(maximum)
    } else {
        Err(ApiError::internal(format!("max_page_size {maximum} is outside 1..={PAGE_SIZE_CEILING}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idempotency_key_is_given_once_or_not_at_all() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(IdempotencyKey::from_headers(&headers).unwrap(), None);
        headers.append(IdempotencyKey::HEADER, "first".parse().unwrap());
        assert_eq!(IdempotencyKey::from_headers(&headers).unwrap().unwrap().as_str(), "first");
        headers.append(IdempotencyKey::HEADER, "second".parse().unwrap());
        assert_eq!(IdempotencyKey::from_headers(&headers).unwrap_err().code, "invalid_idempotency_key");
    }

    #[test]
    fn ids_accept_only_plain_positive_integers() {
        assert_eq!(UserId::parse("42").map(UserId::get), Some(42));
        for bad in ["", "0", "-1", "+1", " 1", "1.0", "1e3", "99999999999999999999", "abc"] {
            assert_eq!(UserId::parse(bad), None, "{bad:?}");
        }
        assert_eq!(UserId::from_json(&serde_json::json!(7)).map(UserId::get), Some(7));
        assert_eq!(UserId::from_json(&serde_json::json!("7")), None);
        assert_eq!(UserId::from_json(&serde_json::json!(7.5)), None);
    }

    #[test]
    fn page_limit_is_bounded_by_the_configured_maximum() {
        assert_eq!(PageLimit::parse(None, 100).unwrap().get(), 50);
        assert_eq!(PageLimit::parse(None, 20).unwrap().get(), 20);
        assert_eq!(PageLimit::parse(Some("100"), 100).unwrap().get(), 100);
        assert!(PageLimit::parse(Some("0"), 100).is_err());
        assert!(PageLimit::parse(Some("101"), 100).is_err());
        assert!(PageLimit::parse(Some("21"), 20).is_err());
        assert!(PageLimit::parse(Some("ten"), 100).is_err());
    }
}
