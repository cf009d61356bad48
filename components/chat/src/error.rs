//! Everything that can go wrong in `chat`, mapped to HTTP in one place.
use http::StatusCode;
use shared::ApiError;

#[derive(Debug)]
pub enum ChatError {
    /// Already an API answer (bad input, missing token, ...).
    Api(ApiError),
    /// A business outcome reported by a chat or ledger SQL function.
    Outcome(String),
    RateLimited {
        retry_after_seconds: u32,
    },
    /// A WebSocket handshake sent to the app directly instead of through Pushpin.
    WebSocketWithoutGateway,
    /// An event stream asked of the app directly: only the gateway can hold it open.
    StreamWithoutGateway,
    /// A WebSocket-over-HTTP request without a valid `Grip-Sig`: not from our Pushpin.
    NotFromGateway,
    /// Boxed: Postgres errors carry every field of the server's report.
    Database(Box<spin_sdk::pg::Error>),
}

impl From<ChatError> for ApiError {
    fn from(error: ChatError) -> Self {
        match error {
            ChatError::Api(api_error) => api_error,
            ChatError::Outcome(outcome) => outcome_error(&outcome),
            ChatError::RateLimited { retry_after_seconds } => ApiError::too_many_requests(retry_after_seconds),
            ChatError::WebSocketWithoutGateway => ApiError::new(
                StatusCode::UPGRADE_REQUIRED,
                "use_realtime_gateway",
                "open WebSockets through the realtime gateway (Pushpin), not the API directly",
            ),
            ChatError::StreamWithoutGateway => ApiError::new(
                StatusCode::UPGRADE_REQUIRED,
                "use_realtime_gateway",
                "open event streams through the realtime gateway (Pushpin), not the API directly",
            ),
            ChatError::NotFromGateway => {
                ApiError::unauthorized("WebSocket-over-HTTP requests must carry a valid Grip-Sig")
            }
            ChatError::Database(error) => shared::db::failure(*error),
        }
    }
}

/// The API error for a chat outcome; ledger outcomes are shared with `/fintech`.
fn outcome_error(outcome: &str) -> ApiError {
    use StatusCode as Status;
    let (status, code, message) = match outcome {
        "room_not_found" => (Status::NOT_FOUND, "room_not_found", "no such room, or you are not a member"),
        "user_not_found" | "member_not_found" => (Status::NOT_FOUND, "user_not_found", "no such user"),
        "request_not_found" => (Status::NOT_FOUND, "request_not_found", "no such payment request in this room"),
        "not_owner" => (Status::FORBIDDEN, "not_owner", "only the room's owner may do this"),
        "not_payer" => (Status::FORBIDDEN, "not_payer", "only the requested payer may resolve this request"),
        "client_msg_id_reused" => {
            (Status::CONFLICT, "client_msg_id_reused", "this client_msg_id was used for another message")
        }
        "already_resolved" => (Status::CONFLICT, "already_resolved", "this payment request was already resolved"),
        "member_left" => (Status::CONFLICT, "member_left", "this user left the room; only they can decide to return"),
        "request_expired" => (Status::CONFLICT, "request_expired", "this payment request has expired"),
        "room_full" | "too_many_members" => {
            (Status::UNPROCESSABLE_ENTITY, "room_full", "the room has reached its member limit")
        }
        "self_room" => (Status::UNPROCESSABLE_ENTITY, "self_room", "a direct room needs another user"),
        "direct_room" => (Status::UNPROCESSABLE_ENTITY, "direct_room", "direct rooms have exactly two members"),
        "message_not_found" => {
            (Status::UNPROCESSABLE_ENTITY, "message_not_found", "up_to_id is not a message of this room")
        }
        "receiver_not_member" => {
            (Status::UNPROCESSABLE_ENTITY, "receiver_not_member", "the receiver is not a member of this room")
        }
        "payer_not_member" => {
            (Status::UNPROCESSABLE_ENTITY, "payer_not_member", "the payer is not a member of this room")
        }
        "self_request" => (Status::UNPROCESSABLE_ENTITY, "self_request", "you cannot request money from yourself"),
        // Editing and deleting messages (edits.rs).
        "message_missing" => (Status::NOT_FOUND, "message_not_found", "no such message in this room"),
        "not_author" => (Status::FORBIDDEN, "not_author", "only the message's author may edit it"),
        "not_author_or_owner" => {
            (Status::FORBIDDEN, "not_author_or_owner", "only the message's author or the room's owner may delete it")
        }
        "payment_message" => (
            Status::UNPROCESSABLE_ENTITY,
            "payment_message",
            "payments and payment requests cannot be edited or deleted: they record money",
        ),
        "message_deleted" => (Status::CONFLICT, "message_deleted", "this message was deleted"),
        "edit_window_closed" => {
            (Status::CONFLICT, "edit_window_closed", "the time for editing this message has passed")
        }
        "split_not_found" => (Status::NOT_FOUND, "split_not_found", "no such split request in this room"),
        "split_too_small" => (
            Status::UNPROCESSABLE_ENTITY,
            "split_too_small",
            "the amount cannot give every payer at least the currency's smallest unit",
        ),
        ledger_outcome => return shared::ledger::outcome_error(ledger_outcome),
    };
    ApiError::new(status, code, message)
}

impl From<ApiError> for ChatError {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

impl From<spin_sdk::pg::Error> for ChatError {
    fn from(error: spin_sdk::pg::Error) -> Self {
        Self::Database(Box::new(error))
    }
}
