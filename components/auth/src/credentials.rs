//! Passwords, parsed from raw input, and password hashing (usernames: `shared::username`).
use std::fmt;
use std::sync::OnceLock;

use shared::ApiError;

/// bcrypt reads at most 72 bytes; longer passwords are refused rather than silently truncated.
const PASSWORD_BYTES_MAX: usize = 72;
const PASSWORD_BYTES_MIN: usize = 8;

/// The 10,000 most common passwords (lower-cased, sorted bytewise); see data/README.md.
const COMMON_PASSWORDS: &str = include_str!("../data/common-passwords.txt");

/// A syntactically valid bcrypt hash (salt and digest from the bcrypt paper's example) whose cost
/// is replaced by the configured one. Verifying an unknown user's login against it costs as much
/// as verifying a real user's, so response time does not reveal which usernames exist.
const DUMMY_HASH_AFTER_COST: &str = "$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW";

/// A password chosen at registration: 8 to 72 bytes, no NUL, not a common password.
pub struct NewPassword(String);

impl NewPassword {
    pub fn parse(raw: String) -> Result<Self, ApiError> {
        if raw.len() < PASSWORD_BYTES_MIN || raw.len() > PASSWORD_BYTES_MAX {
            return Err(ApiError::unprocessable(
                "invalid_password",
                format!("password must be {PASSWORD_BYTES_MIN} to {PASSWORD_BYTES_MAX} bytes long"),
            ));
        }
        if raw.contains('\0') {
            return Err(ApiError::unprocessable("invalid_password", "password must not contain NUL characters"));
        }
        if is_common_password(&raw) {
            return Err(ApiError::unprocessable(
                "common_password",
                "that password is among the most common ones; choose another",
            ));
        }
        Ok(Self(raw))
    }

    /// Whether this is `other`, byte for byte.
    pub fn is_same_as(&self, other: &str) -> bool {
        self.0 == other
    }

    pub fn hash(&self, cost: u32) -> Result<String, bcrypt::BcryptError> {
        bcrypt::hash(&self.0, cost)
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("NewPassword(<redacted>)")
    }
}

fn is_common_password(password: &str) -> bool {
    static LIST: OnceLock<Vec<&'static str>> = OnceLock::new();
    let list = LIST.get_or_init(|| COMMON_PASSWORDS.lines().collect());
    list.binary_search(&password.to_lowercase().as_str()).is_ok()
}

/// Checks a login attempt. With no stored hash (unknown user) or an impossible password (one no
/// registration accepts), the attempt is checked against a dummy hash of the configured cost and
/// fails, taking the same time. An impossible password could otherwise match: bcrypt ends the
/// password at a NUL and reads 72 bytes of it with its terminator, so a 71-byte password followed
/// by a NUL would pass for the 71-byte one.
pub fn verify_password(attempt: &str, stored_hash: Option<&str>, cost: u32) -> Result<bool, bcrypt::BcryptError> {
    let possible = attempt.len() <= PASSWORD_BYTES_MAX && !attempt.contains('\0');
    let dummy_hash;
    let (hash, can_match) = match stored_hash {
        Some(hash) if possible => (hash, true),
        _ => {
            dummy_hash = format!("$2b${cost:02}{DUMMY_HASH_AFTER_COST}");
            (dummy_hash.as_str(), false)
        }
    };
    Ok(bcrypt::verify(attempt, hash)? && can_match)
}

/// Whether a stored hash was made with another cost than the configured one. Logins verify an
/// unknown user against a dummy of the configured cost, so after `bcrypt_cost` changes, a user
/// whose hash keeps the old cost would be told apart by timing; such a hash is replaced at the
/// user's next successful login.
pub fn needs_rehash(stored_hash: &str, cost: u32) -> bool {
    stored_hash.parse::<bcrypt::HashParts>().map_or(true, |parts| parts.get_cost() != cost)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_bounded_and_not_common() {
        assert!(NewPassword::parse("correct horse battery".into()).is_ok());
        assert_eq!(NewPassword::parse("short".into()).unwrap_err().code, "invalid_password");
        assert_eq!(NewPassword::parse("x".repeat(73)).unwrap_err().code, "invalid_password");
        assert!(NewPassword::parse("x".repeat(72)).is_ok());
        assert_eq!(NewPassword::parse("Password123".into()).unwrap_err().code, "common_password");
        assert_eq!(NewPassword::parse("12345678".into()).unwrap_err().code, "common_password");
    }

    #[test]
    fn common_password_list_is_sorted_for_binary_search() {
        let lines: Vec<&str> = COMMON_PASSWORDS.lines().collect();
        assert!(lines.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(lines.len(), 10_000);
    }

    #[test]
    fn hashes_of_another_cost_need_rehashing() {
        let hash = bcrypt::hash("correct horse battery", 4).unwrap();
        assert!(!needs_rehash(&hash, 4));
        assert!(needs_rehash(&hash, 5));
        assert!(needs_rehash("not a bcrypt hash", 4));
    }

    #[test]
    fn unknown_users_and_impossible_attempts_never_verify() {
        let hash = bcrypt::hash("correct horse battery", 4).unwrap();
        assert!(verify_password("correct horse battery", Some(&hash), 4).unwrap());
        assert!(!verify_password("wrong horse battery", Some(&hash), 4).unwrap());
        assert!(!verify_password("correct horse battery", None, 4).unwrap());
        let overlong = format!("correct horse battery{}", "!".repeat(60));
        let overlong_hash = bcrypt::hash(&overlong[..72], 4).unwrap();
        assert!(!verify_password(&overlong, Some(&overlong_hash), 4).unwrap());
        let longest = "x".repeat(71);
        let longest_hash = bcrypt::hash(&longest, 4).unwrap();
        assert!(verify_password(&longest, Some(&longest_hash), 4).unwrap());
        assert!(!verify_password(&format!("{longest}\0"), Some(&longest_hash), 4).unwrap(), "bcrypt stops at a NUL");
    }
}
