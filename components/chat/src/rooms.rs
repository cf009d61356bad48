//! Rooms: creating them, the direct room of two users, listing, joining and leaving.
use http::StatusCode;
use serde_json::Value;
use shared::ids::{PageLimit, RoomId, UserId};
use shared::request::{BODY_BYTES_MAX, JsonObject, query_pairs, query_value, read_body};
use shared::response::{no_content, raw_json_reply};
use shared::{ApiError, Reply};
use spin_sdk::http::Request;

use crate::error::ChatError;
use crate::input::{RoomListCursor, RoomName};
use crate::outcome::{call, error_for};
use crate::settings::Settings;
use crate::{rate_limit, realtime};

/// Reads the caller and the JSON body of a room request.
async fn caller_and_fields(settings: &Settings, request: Request) -> Result<(UserId, JsonObject), ChatError> {
    let caller = settings.keys.authenticate(request.headers())?;
    let (parts, body) = read_body(request, BODY_BYTES_MAX).await?;
    Ok((caller, JsonObject::from_json_body(&parts.headers, &body)?))
}

fn user_field(fields: &mut JsonObject, name: &str) -> Result<UserId, ChatError> {
    let invalid = || ApiError::unprocessable("invalid_field", format!("`{name}` must be a user id"));
    Ok(UserId::from_json(&fields.require(name)?).ok_or_else(invalid)?)
}

/// `POST /chat/create_room {name, member_ids?}`: the caller owns the new room.
pub async fn create(settings: &Settings, request: Request) -> Result<Reply, ChatError> {
    let (caller, mut fields) = caller_and_fields(settings, request).await?;
    let name = RoomName::parse(&fields.require_string("name")?)?;
    let member_ids = match fields.take("member_ids") {
        None => Vec::new(),
        Some(Value::Array(items)) if items.len() <= settings.room_members_max as usize => items
            .iter()
            .map(|item| UserId::from_json(item).map(|id| Some(id.get())))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ApiError::unprocessable("invalid_field", "`member_ids` must hold user ids"))?,
        Some(Value::Array(_)) => return Err(ChatError::Outcome("room_full".into())),
        Some(_) => {
            return Err(ApiError::unprocessable("invalid_field", "`member_ids` must be an array").into());
        }
    };
    fields.finish()?;
    rate_limit::allow_room_change(settings, caller).await?;
    let outcome = call(
        settings,
        "SELECT outcome, resource FROM chat_create_room($1::int8, $2::text, $3::int8[], $4::int4)",
        vec![
            caller.get().into(),
            name.into_string().into(),
            spin_sdk::pg::ParameterValue::ArrayInt64(member_ids),
            settings.room_members_max.into(),
        ],
    )
    .await?;
    Ok(outcome.into_reply(&[("created", StatusCode::CREATED)], error_for))
}

/// `POST /chat/direct {user_id}`: the one room of the caller and that user (201 when new).
pub async fn direct(settings: &Settings, request: Request) -> Result<Reply, ChatError> {
    let (caller, mut fields) = caller_and_fields(settings, request).await?;
    let peer = user_field(&mut fields, "user_id")?;
    fields.finish()?;
    rate_limit::allow_room_change(settings, caller).await?;
    let outcome = call(
        settings,
        "SELECT outcome, resource FROM chat_direct_room($1::int8, $2::int8)",
        vec![caller.get().into(), peer.get().into()],
    )
    .await?;
    Ok(outcome.into_reply(&[("created", StatusCode::CREATED), ("existing", StatusCode::OK)], error_for))
}

/// `GET /chat/rooms?limit=&before=`: newest activity first, with last message and unread count;
/// `before` is the previous page's `next_before`, so every room a user is in can be reached.
pub async fn list(settings: &Settings, request: Request) -> Result<Reply, ChatError> {
    let caller = settings.keys.authenticate(request.headers())?;
    let query = query_pairs(request.uri())?;
    let limit = PageLimit::parse(query_value(&query, "limit"), settings.max_page_size)?;
    let before = query_value(&query, "before").map(RoomListCursor::parse).transpose()?;
    let database = shared::db::connect(&settings.database_url).await?;
    let row = shared::db::optional_row(
        &database,
        "SELECT chat_rooms($1::int8, $2::int4, $3::int8, $4::int8) AS resource",
        vec![
            caller.get().into(),
            limit.get().into(),
            before.map(|cursor| cursor.activity_micros).into(),
            before.map(|cursor| cursor.room_id).into(),
        ],
    )
    .await?
    .ok_or_else(|| ApiError::internal("chat_rooms returned no row"))?;
    Ok(raw_json_reply(StatusCode::OK, shared::db::column::<String>(&row, "resource")?))
}

/// `POST /chat/rooms/{id}/members {user_id}` (owner only): 201 when added, 200 when already in.
pub async fn add_member(settings: &Settings, request: Request, room: RoomId) -> Result<Reply, ChatError> {
    let (caller, mut fields) = caller_and_fields(settings, request).await?;
    let user = user_field(&mut fields, "user_id")?;
    fields.finish()?;
    rate_limit::allow_room_change(settings, caller).await?;
    let outcome = call(
        settings,
        "SELECT outcome, resource FROM chat_add_member($1::int8, $2::int8, $3::int8, $4::int4)",
        vec![room.get().into(), caller.get().into(), user.get().into(), settings.room_members_max.into()],
    )
    .await?;
    Ok(outcome.into_reply(&[("added", StatusCode::CREATED), ("already_member", StatusCode::OK)], error_for))
}

/// `DELETE /chat/rooms/{id}/members/me`: the caller leaves; their open sockets for the room close.
pub async fn leave(settings: &Settings, request: Request, room: RoomId) -> Result<Reply, ChatError> {
    let caller = settings.keys.authenticate(request.headers())?;
    let outcome = call(
        settings,
        "SELECT chat_leave_room($1::int8, $2::int8) AS outcome",
        vec![room.get().into(), caller.get().into()],
    )
    .await?;
    if outcome.word != "left" {
        return Err(ChatError::Outcome(outcome.word));
    }
    realtime::publish(settings, realtime::left_room_event(room, caller)).await;
    Ok(no_content())
}
