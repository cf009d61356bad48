//! Frames from an open socket: `{"type":"message","content":..,"client_msg_id":..}` is stored
//! exactly like `POST /chat/send_message`; `{"type":"typing"}` is announced, never stored.
//! Problems with a frame are answered with an `error` event; the socket stays open.
use serde_json::{Value, json};
use shared::ApiError;
use shared::request::JsonObject;

use super::{CLOSE_NOT_MEMBER, Exchange, Session, close_invalid_payload};
use crate::error::ChatError;
use crate::input::{ClientMsgId, MessageContent};
use crate::messages::post_message;
use crate::settings::Settings;
use crate::{rate_limit, realtime};

enum ClientFrame {
    Message { content: MessageContent, client_msg_id: Option<ClientMsgId> },
    Typing,
}

impl ClientFrame {
    /// Messages and typing notices are counted apart (`rate_limit`).
    fn budget(&self) -> Budget {
        match self {
            ClientFrame::Message { .. } => Budget::Messages,
            ClientFrame::Typing => Budget::Typing,
        }
    }
}

#[derive(Clone, Copy)]
enum Budget {
    Messages,
    Typing,
}

/// One request's refusals of frames past a budget, per budget: one spent budget does not refuse
/// frames of the other kind.
#[derive(Default)]
pub struct OverBudget {
    messages: Option<ApiError>,
    typing: Option<ApiError>,
}

impl OverBudget {
    fn refusal(&mut self, budget: Budget) -> &mut Option<ApiError> {
        match budget {
            Budget::Messages => &mut self.messages,
            Budget::Typing => &mut self.typing,
        }
    }
}

fn parse_frame(text: &str, message_bytes_max: usize) -> Result<ClientFrame, ApiError> {
    let Ok(Value::Object(object)) = serde_json::from_str(text) else {
        return Err(ApiError::bad_request("malformed_json", "frames must be JSON objects"));
    };
    let mut fields = JsonObject::from_map(object);
    let frame = match fields.require_string("type")?.as_str() {
        "message" => ClientFrame::Message {
            content: MessageContent::parse(fields.require_string("content")?, message_bytes_max)?,
            client_msg_id: ClientMsgId::parse(fields.take_string("client_msg_id")?)?,
        },
        "typing" => ClientFrame::Typing,
        _ => {
            return Err(ApiError::unprocessable("unknown_type", "type must be \"message\" or \"typing\""));
        }
    };
    fields.finish()?;
    Ok(frame)
}

pub async fn handle(settings: &Settings, session: Session, bytes: &[u8], exchange: &mut Exchange) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        close_invalid_payload(exchange);
        return;
    };
    let frame = match parse_frame(text, settings.message_bytes_max) {
        Ok(frame) => frame,
        Err(error) => return exchange.error(&error),
    };
    let budget = frame.budget();
    if let Some(refusal) = exchange.over_budget.refusal(budget).clone() {
        return exchange.error(&refusal);
    }
    let outcome = match frame {
        ClientFrame::Message { content, client_msg_id } => {
            send_message(settings, session, content, client_msg_id, exchange).await
        }
        ClientFrame::Typing => announce_typing(settings, session).await,
    };
    match outcome {
        Ok(()) => {}
        Err(ChatError::Outcome(word)) if word == "room_not_found" => {
            exchange.close(CLOSE_NOT_MEMBER, "not a member of this room");
        }
        Err(error) => {
            let error = ApiError::from(error);
            if error.status == http::StatusCode::TOO_MANY_REQUESTS {
                *exchange.over_budget.refusal(budget) = Some(error.clone());
            }
            exchange.error(&error);
        }
    }
}

async fn send_message(
    settings: &Settings,
    session: Session,
    content: MessageContent,
    client_msg_id: Option<ClientMsgId>,
    exchange: &mut Exchange,
) -> Result<(), ChatError> {
    let outcome = post_message(settings, session.room, session.user, content, client_msg_id).await?;
    let message = outcome.resource.filter(|_| outcome.word == "created").ok_or(ChatError::Outcome(outcome.word))?;
    let message: Value = serde_json::from_str(&message).unwrap_or(Value::Null);
    exchange.send(&json!({"type": "ack", "client_msg_id": message["client_msg_id"], "message": message}).to_string());
    Ok(())
}

async fn announce_typing(settings: &Settings, session: Session) -> Result<(), ChatError> {
    rate_limit::allow_typing(settings, session.user).await?;
    realtime::publish(settings, realtime::typing_event(session.room, session.user)).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_code(text: &str) -> &'static str {
        parse_frame(text, 16).err().map(|error| error.code).unwrap_or("ok")
    }

    #[test]
    fn frames_are_typed_json_objects() {
        assert_eq!(error_code(r#"{"type":"message","content":"hi","client_msg_id":"a1"}"#), "ok");
        assert_eq!(error_code(r#"{"type":"typing"}"#), "ok");
        assert_eq!(error_code("not json"), "malformed_json");
        assert_eq!(error_code("[1]"), "malformed_json");
        assert_eq!(error_code(r#"{"type":"shout"}"#), "unknown_type");
        assert_eq!(error_code(r#"{"content":"hi"}"#), "missing_field");
        assert_eq!(error_code(r#"{"type":"message","content":""}"#), "empty_message");
        assert_eq!(error_code(r#"{"type":"message","content":"this is far too long"}"#), "message_too_large");
        assert_eq!(error_code(r#"{"type":"typing","extra":1}"#), "unknown_field");
    }
}
