//! Messages: sending (HTTP; WebSocket frames use [`post_message`] too), history, read markers.
use http::StatusCode;
use shared::ids::{MessageId, PageLimit, RoomId, UserId};
use shared::request::{BODY_BYTES_MAX, JsonObject, query_pairs, query_value, read_body};
use shared::response::raw_json_reply;
use shared::{ApiError, Reply};
use spin_sdk::http::Request;

use crate::error::ChatError;
use crate::input::{ChangeCursor, ClientMsgId, MessageContent};
use shared::outcome::SqlOutcome;

use crate::outcome::{call, error_for};
use crate::settings::Settings;
use crate::{rate_limit, realtime};

/// Stores a text message (idempotently when it has a client_msg_id) and, when it is new,
/// announces it to the room. Shared by `POST /chat/send_message` and WebSocket frames.
pub async fn post_message(
    settings: &Settings,
    room: RoomId,
    sender: UserId,
    content: MessageContent,
    client_msg_id: Option<ClientMsgId>,
) -> Result<SqlOutcome, ChatError> {
    rate_limit::allow_message(settings, sender).await?;
    let outcome = call(
        settings,
        "SELECT outcome, resource, replayed FROM chat_post_message($1::int8, $2::int8, $3::text, $4::text)",
        vec![
            room.get().into(),
            sender.get().into(),
            content.into_string().into(),
            client_msg_id.map(ClientMsgId::into_string).into(),
        ],
    )
    .await?;
    if let Some(message) = outcome.fresh_resource("created") {
        realtime::publish(settings, realtime::message_event(room, message)).await;
    }
    Ok(outcome)
}

/// `POST /chat/send_message {chat_id, content, client_msg_id?}` → 201 with the message.
pub async fn send(settings: &Settings, request: Request) -> Result<Reply, ChatError> {
    let sender = settings.keys.authenticate(request.headers())?;
    let (parts, body) = read_body(request, BODY_BYTES_MAX).await?;
    let mut fields = JsonObject::from_json_body(&parts.headers, &body)?;
    let room =
        RoomId::from_json(&fields.require("chat_id")?).ok_or_else(|| ChatError::Outcome("room_not_found".into()))?;
    let content = MessageContent::parse(fields.require_string("content")?, settings.message_bytes_max)?;
    let client_msg_id = ClientMsgId::parse(fields.take_string("client_msg_id")?)?;
    fields.finish()?;
    let outcome = post_message(settings, room, sender, content, client_msg_id).await?;
    Ok(outcome.into_reply(&[("created", StatusCode::CREATED)], error_for))
}

/// `GET /chat/messages/{room}?before=&after=&limit=`, or `?changes_after=&limit=` (the messages
/// changed since: see [`changes`]): members only (others get 404).
pub async fn history(settings: &Settings, request: Request, room: RoomId) -> Result<Reply, ChatError> {
    let caller = settings.keys.authenticate(request.headers())?;
    let query = query_pairs(request.uri())?;
    let limit = PageLimit::parse(query_value(&query, "limit"), settings.max_page_size)?;
    if let Some(raw) = query_value(&query, "changes_after") {
        if query_value(&query, "before").is_some() || query_value(&query, "after").is_some() {
            return Err(ApiError::bad_request(
                "invalid_cursor",
                "changes_after cannot be combined with before or after",
            )
            .into());
        }
        return changes(settings, room, caller, ChangeCursor::parse(raw)?, limit).await;
    }
    let cursor = |name: &str| -> Result<Option<i64>, ApiError> {
        match query_value(&query, name) {
            None => Ok(None),
            Some(raw) => MessageId::parse(raw)
                .map(|id| Some(id.get()))
                .ok_or_else(|| ApiError::bad_request("invalid_cursor", format!("{name} must be a message id"))),
        }
    };
    let (before, after) = (cursor("before")?, cursor("after")?);
    let database = shared::db::connect(&settings.database_url).await?;
    let page: Option<String> = shared::db::optional_row(
        &database,
        "SELECT chat_history($1::int8, $2::int8, $3::int8, $4::int8, $5::int4) AS resource",
        vec![room.get().into(), caller.get().into(), before.into(), after.into(), limit.get().into()],
    )
    .await?
    .and_then(|row| row.get("resource"));
    let page = page.ok_or_else(|| ChatError::Outcome("room_not_found".into()))?;
    Ok(raw_json_reply(StatusCode::OK, page))
}

/// The room's messages whose latest change (insert, edit or deletion) came after `cursor`, in
/// change order, each as it is now: how a returning client learns what changed while it was away.
async fn changes(
    settings: &Settings,
    room: RoomId,
    caller: UserId,
    cursor: ChangeCursor,
    limit: PageLimit,
) -> Result<Reply, ChatError> {
    let database = shared::db::connect(&settings.database_url).await?;
    let page: Option<String> = shared::db::optional_row(
        &database,
        "SELECT chat_changes($1::int8, $2::int8, $3::int8, $4::int4) AS resource",
        vec![room.get().into(), caller.get().into(), cursor.get().into(), limit.get().into()],
    )
    .await?
    .and_then(|row| row.get("resource"));
    let page = page.ok_or_else(|| ChatError::Outcome("room_not_found".into()))?;
    Ok(raw_json_reply(StatusCode::OK, page))
}

/// `POST /chat/rooms/{id}/read {up_to_id}`: moves the caller's read marker and tells the room.
pub async fn mark_read(settings: &Settings, request: Request, room: RoomId) -> Result<Reply, ChatError> {
    let caller = settings.keys.authenticate(request.headers())?;
    rate_limit::allow_read_marker(settings, caller).await?;
    let (parts, body) = read_body(request, BODY_BYTES_MAX).await?;
    let mut fields = JsonObject::from_json_body(&parts.headers, &body)?;
    let up_to = MessageId::from_json(&fields.require("up_to_id")?)
        .ok_or_else(|| ApiError::unprocessable("invalid_field", "`up_to_id` must be a message id"))?;
    fields.finish()?;
    let outcome = call(
        settings,
        "SELECT outcome, resource FROM chat_mark_read($1::int8, $2::int8, $3::int8)",
        vec![room.get().into(), caller.get().into(), up_to.get().into()],
    )
    .await?;
    if let Some(marker) = outcome.fresh_resource("marked") {
        realtime::publish(settings, realtime::read_event(room, marker)).await;
    }
    Ok(outcome.into_reply(&[("marked", StatusCode::OK)], error_for))
}
