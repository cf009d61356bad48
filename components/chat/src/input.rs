//! Chat input parsed into domain types, in one place.
use shared::ids::parse_digits;
use shared::{ApiError, text};

/// A room's display name: trimmed, 1 to 100 characters, no control characters or text-direction
/// overrides (`text::is_refused`).
pub struct RoomName(String);

impl RoomName {
    const CHARS_MAX: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let name = raw.trim();
        let length = name.chars().count();
        if length == 0 || length > Self::CHARS_MAX || name.chars().any(|character| text::is_refused(character, &[])) {
            return Err(ApiError::unprocessable(
                "invalid_room_name",
                "name must be 1 to 100 characters without control characters or text-direction overrides",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A text message: not blank, at most the configured size in bytes, no control characters other
/// than line breaks and tabs and no text-direction overrides (they would garble or disguise what
/// other members see: `text::is_refused`).
pub struct MessageContent(String);

impl MessageContent {
    pub fn parse(raw: String, bytes_max: usize) -> Result<Self, ApiError> {
        if raw.trim().is_empty() {
            return Err(ApiError::unprocessable("empty_message", "content must not be blank"));
        }
        if raw.len() > bytes_max {
            return Err(ApiError::new(
                http::StatusCode::PAYLOAD_TOO_LARGE,
                "message_too_large",
                format!("content must be at most {bytes_max} bytes"),
            ));
        }
        if raw.chars().any(|character| text::is_refused(character, &['\n', '\r', '\t'])) {
            return Err(ApiError::unprocessable(
                "invalid_content",
                "content must not contain control characters or text-direction overrides",
            ));
        }
        Ok(Self(raw))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// The client's id for a message, which makes a retried send idempotent: 1 to 64 visible ASCII
/// characters, unique per sender.
pub struct ClientMsgId(String);

impl ClientMsgId {
    pub fn parse(raw: Option<String>) -> Result<Option<Self>, ApiError> {
        let Some(raw) = raw else { return Ok(None) };
        if (1..=64).contains(&raw.len()) && raw.bytes().all(|byte| byte.is_ascii_graphic()) {
            Ok(Some(Self(raw)))
        } else {
            Err(ApiError::unprocessable(
                "invalid_client_msg_id",
                "client_msg_id must be 1 to 64 visible ASCII characters",
            ))
        }
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A position in a room's changes (`changes_after`): 0 (before the first) or a change number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeCursor(i64);

impl ChangeCursor {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        parse_digits(raw).map(Self).ok_or_else(|| {
            ApiError::bad_request("invalid_cursor", "changes_after must be 0 or a change number (change_seq)")
        })
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// A position in a user's room list (`before`, from a page's `next_before`): the last activity,
/// in microseconds since the Unix epoch, and the id of the last room listed, which breaks ties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomListCursor {
    pub activity_micros: i64,
    pub room_id: i64,
}

impl RoomListCursor {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let cursor = raw.split_once('_').and_then(|(activity, room)| {
            Some(Self { activity_micros: parse_digits(activity)?, room_id: parse_digits(room)? })
        });
        cursor.ok_or_else(|| ApiError::bad_request("invalid_cursor", "before must be a page's next_before"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_list_cursors_are_two_numbers() {
        let cursor = RoomListCursor::parse("1796406501123456_42").unwrap();
        assert_eq!((cursor.activity_micros, cursor.room_id), (1_796_406_501_123_456, 42));
        for bad in ["", "_", "1_", "_2", "1_2_3", "-1_2", "1_x", "99999999999999999999_1", "1 _2"] {
            assert_eq!(RoomListCursor::parse(bad).err().map(|error| error.code), Some("invalid_cursor"), "{bad:?}");
        }
    }

    #[test]
    fn room_names_are_trimmed_and_bounded() {
        assert_eq!(RoomName::parse("  Trip  ").unwrap().into_string(), "Trip");
        assert!(RoomName::parse("   ").is_err());
        assert!(RoomName::parse(&"x".repeat(101)).is_err());
        assert!(RoomName::parse("tab\there").is_err());
    }

    #[test]
    fn message_content_is_bounded_in_bytes() {
        assert!(MessageContent::parse("hi\nthere".into(), 4096).is_ok());
        assert_eq!(MessageContent::parse(" \n ".into(), 4096).err().unwrap().code, "empty_message");
        assert_eq!(MessageContent::parse("é".repeat(3), 5).err().unwrap().code, "message_too_large");
        assert_eq!(MessageContent::parse("bell\u{7}".into(), 4096).err().unwrap().code, "invalid_content");
    }

    #[test]
    fn change_cursors_are_non_negative_numbers() {
        assert_eq!(ChangeCursor::parse("0").unwrap().get(), 0);
        assert_eq!(ChangeCursor::parse("42").unwrap().get(), 42);
        for bad in ["", "-1", "+1", " 1", "1.0", "abc", "99999999999999999999", "9999999999999999999"] {
            assert_eq!(ChangeCursor::parse(bad).err().map(|error| error.code), Some("invalid_cursor"), "{bad:?}");
        }
    }

    #[test]
    fn client_msg_ids_are_short_visible_ascii() {
        assert!(ClientMsgId::parse(Some("abc-123".into())).unwrap().is_some());
        assert!(ClientMsgId::parse(None).unwrap().is_none());
        assert!(ClientMsgId::parse(Some(String::new())).is_err());
        assert!(ClientMsgId::parse(Some("has space".into())).is_err());
        assert!(ClientMsgId::parse(Some("x".repeat(65))).is_err());
    }
}
