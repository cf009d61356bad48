//! Editing and deleting messages (issue 18). Each change is one SQL call
//! (sql/functions/31_message_changes.sql) that takes the room's next `change_seq`, then an event
//! for the room: `message_edited` or `message_deleted`, carrying the message as history now shows
//! it. A retried change (same content, or a message already deleted) changes nothing and is
//! announced once.
use http::StatusCode;
use shared::ids::{MessageId, RoomId};
use shared::request::{BODY_BYTES_MAX, JsonObject, read_body};
use shared::{ApiError, Reply};
use spin_sdk::http::Request;

use crate::error::ChatError;
use crate::input::MessageContent;
use crate::outcome::{call, error_for};
use crate::settings::Settings;
use crate::{rate_limit, realtime};

/// `PATCH /chat/rooms/{id}/messages/{message_id} {content}`: the author, within the edit window.
pub async fn edit(
    settings: &Settings,
    request: Request,
    room: RoomId,
    raw_message_id: &str,
) -> Result<Reply, ChatError> {
    let caller = settings.keys.authenticate(request.headers())?;
    let message = message_id(raw_message_id)?;
    let (parts, body) = read_body(request, BODY_BYTES_MAX).await?;
    let mut fields = JsonObject::from_json_body(&parts.headers, &body)?;
    let content = MessageContent::parse(fields.require_string("content")?, settings.message_bytes_max)?;
    fields.finish()?;
    rate_limit::allow_message(settings, caller).await?;
    let outcome = call(
        settings,
        "SELECT outcome, resource, replayed FROM chat_edit_message($1::int8, $2::int8, $3::int8, $4::text, $5::int8)",
        vec![
            room.get().into(),
            message.get().into(),
            caller.get().into(),
            content.into_string().into(),
            i64::from(settings.message_edit_window_seconds).into(),
        ],
    )
    .await?;
    if let Some(edited) = outcome.fresh_resource("edited") {
        realtime::publish(settings, realtime::change_event(room, "message_edited", edited)).await;
    }
    Ok(outcome.into_reply(&[("edited", StatusCode::OK)], error_for))
}

/// `DELETE /chat/rooms/{id}/messages/{message_id}`: the author or the room's owner.
pub async fn delete(
    settings: &Settings,
    request: Request,
    room: RoomId,
    raw_message_id: &str,
) -> Result<Reply, ChatError> {
    let caller = settings.keys.authenticate(request.headers())?;
    let message = message_id(raw_message_id)?;
    rate_limit::allow_message(settings, caller).await?;
    let outcome = call(
        settings,
        "SELECT outcome, resource, replayed FROM chat_delete_message($1::int8, $2::int8, $3::int8)",
        vec![room.get().into(), message.get().into(), caller.get().into()],
    )
    .await?;
    if let Some(tombstone) = outcome.fresh_resource("deleted") {
        realtime::publish(settings, realtime::change_event(room, "message_deleted", tombstone)).await;
    }
    Ok(outcome.into_reply(&[("deleted", StatusCode::OK)], error_for))
}

/// A message id in the path; a malformed one names no message.
fn message_id(raw: &str) -> Result<MessageId, ApiError> {
    MessageId::parse(raw).ok_or_else(|| ChatError::Outcome("message_missing".into()).into())
}
