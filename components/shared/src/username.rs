//! Usernames, parsed from raw input in one place for every component that reads one (auth's
//! registration, login and look-ups, its login throttle, fintech's transfers by username), so
//! all of them agree on which inputs name the same user.
use crate::ApiError;

/// A username in canonical form: 3 to 32 of `[a-z0-9_.-]`, compared case-insensitively, so the
/// input is lower-cased first (ASCII only: no other letters are allowed, so no Unicode case
/// mapping can make two inputs meet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let canonical = raw.to_ascii_lowercase();
        let allowed = |byte: u8| byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"_.-".contains(&byte);
        if (3..=32).contains(&canonical.len()) && canonical.bytes().all(allowed) {
            Ok(Self(canonical))
        } else {
            Err(ApiError::unprocessable(
                "invalid_username",
                "username must be 3 to 32 characters of a-z, 0-9, '_', '.' or '-'",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the name is kept from registration: clients write sentences such as "you paid bob"
    /// and "alice paid you", so a user named `you` would pass for the reader, and one named
    /// `operator` or `support` for the service.
    pub fn is_reserved(&self) -> bool {
        const RESERVED: [&str; 14] = [
            "admin",
            "administrator",
            "deposit",
            "everyone",
            "me",
            "myself",
            "nobody",
            "operator",
            "sendinchat",
            "someone",
            "support",
            "system",
            "you",
            "yourself",
        ];
        RESERVED.contains(&self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_canonical_and_bounded() {
        assert_eq!(Username::parse("John_Doe").unwrap().as_str(), "john_doe");
        for bad in ["jo", "a".repeat(33).as_str(), "john doe", "jöhn", "john@doe", "", "\u{212a}elvin"] {
            assert!(Username::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_that_read_as_the_reader_or_the_service_are_reserved() {
        for reserved in ["you", "YOU", "Myself", "operator", "support"] {
            assert!(Username::parse(reserved).unwrap().is_reserved(), "{reserved}");
        }
        for free in ["you_", "yours", "alice", "mee"] {
            assert!(!Username::parse(free).unwrap().is_reserved(), "{free}");
        }
    }
}
