//! The `chat` component: everything under `/chat`.
//!
//! | route                                                        | handler                        |
//! |--------------------------------------------------------------|--------------------------------|
//! | `POST   /chat/create_room`                                   | [`rooms::create`]              |
//! | `POST   /chat/direct`                                        | [`rooms::direct`]              |
//! | `GET    /chat/rooms`                                         | [`rooms::list`]                |
//! | `POST   /chat/rooms/{id}/members`                            | [`rooms::add_member`]          |
//! | `DELETE /chat/rooms/{id}/members/me`                         | [`rooms::leave`]               |
//! | `POST   /chat/send_message`                                  | [`messages::send`]             |
//! | `GET    /chat/messages/{room}`                               | [`messages::history`]          |
//! | `POST   /chat/rooms/{id}/read`                               | [`messages::mark_read`]        |
//! | `PATCH  /chat/rooms/{id}/messages/{message_id}`              | [`edits::edit`]                |
//! | `DELETE /chat/rooms/{id}/messages/{message_id}`              | [`edits::delete`]              |
//! | `POST   /chat/rooms/{id}/payments`                           | [`payments::pay`]              |
//! | `POST   /chat/rooms/{id}/payment_requests`                   | [`payments::request`]          |
//! | `POST   /chat/rooms/{id}/payment_requests/{rid}/accept`      | [`payments::resolve`]          |
//! | `POST   /chat/rooms/{id}/payment_requests/{rid}/decline`     | [`payments::resolve`]          |
//! | `POST   /chat/rooms/{id}/split_requests`                     | [`splits::create`]             |
//! | `GET    /chat/rooms/{id}/split_requests/{sid}`               | [`splits::show`]               |
//! | `POST   /chat/ws/{room}` (WebSocket-over-HTTP, from Pushpin) | [`websocket::handle`]          |
//! | `GET    /chat/rooms/{id}/events` (SSE, held by Pushpin)      | [`events::stream`]             |
mod edits;
mod error;
mod events;
mod input;
mod messages;
mod outcome;
mod payments;
mod rate_limit;
mod realtime;
mod rooms;
mod settings;
mod splits;
mod websocket;

use http::Method;
use shared::ids::RoomId;
use shared::{ApiError, Reply};
use spin_sdk::http::Request;

use crate::error::ChatError;
use crate::payments::Resolution;

#[spin_sdk::http_service]
async fn handle(request: Request) -> Reply {
    shared::request_log::serve("chat", request, async |request| match route(request).await {
        Ok(reply) => reply,
        Err(error) => ApiError::from(error).into_reply(),
    })
    .await
}

async fn route(request: Request) -> Result<Reply, ChatError> {
    let settings = settings::load().await?;
    let path = request.uri().path().trim_end_matches('/').to_owned();
    let segments: Vec<&str> = path.split('/').skip(2).collect();
    let method = request.method().clone();
    match (method, segments.as_slice()) {
        (Method::POST, ["create_room"]) => rooms::create(settings, request).await,
        (Method::POST, ["direct"]) => rooms::direct(settings, request).await,
        (Method::GET, ["rooms"]) => rooms::list(settings, request).await,
        (Method::POST, ["send_message"]) => messages::send(settings, request).await,
        (Method::GET, ["messages", room]) => messages::history(settings, request, room_id(room)?).await,
        (Method::POST, ["ws", room]) => websocket::handle(settings, request, room).await,
        (Method::GET, ["ws", _]) => Err(ChatError::WebSocketWithoutGateway),
        (method, ["rooms", room, rest @ ..]) => room_route(settings, request, method, room_id(room)?, rest).await,
        (_, ["create_room" | "direct" | "send_message"]) => Err(ApiError::method_not_allowed("POST").into()),
        // GET is answered too (426: use the gateway), so it is listed.
        (_, ["ws", _]) => Err(ApiError::method_not_allowed("GET, POST").into()),
        (_, ["rooms"] | ["messages", _]) => Err(ApiError::method_not_allowed("GET").into()),
        _ => Err(ApiError::not_found("no such route").into()),
    }
}

async fn room_route(
    settings: &'static settings::Settings,
    request: Request,
    method: Method,
    room: RoomId,
    rest: &[&str],
) -> Result<Reply, ChatError> {
    match (method, rest) {
        (Method::GET, ["events"]) => events::stream(settings, request, room).await,
        (Method::POST, ["members"]) => rooms::add_member(settings, request, room).await,
        (Method::DELETE, ["members", "me"]) => rooms::leave(settings, request, room).await,
        (Method::POST, ["read"]) => messages::mark_read(settings, request, room).await,
        (Method::PATCH, ["messages", message]) => edits::edit(settings, request, room, message).await,
        (Method::DELETE, ["messages", message]) => edits::delete(settings, request, room, message).await,
        (Method::POST, ["payments"]) => payments::pay(settings, request, room).await,
        (Method::POST, ["payment_requests"]) => payments::request(settings, request, room).await,
        (Method::POST, ["payment_requests", id, "accept"]) => {
            payments::resolve(settings, request, room, id, Resolution::Accept).await
        }
        (Method::POST, ["payment_requests", id, "decline"]) => {
            payments::resolve(settings, request, room, id, Resolution::Decline).await
        }
        (Method::POST, ["split_requests"]) => splits::create(settings, request, room).await,
        (Method::GET, ["split_requests", id]) => splits::show(settings, request, room, id).await,
        (_, ["members"] | ["read"] | ["payments"] | ["payment_requests"])
        | (_, ["payment_requests", _, "accept" | "decline"]) => Err(ApiError::method_not_allowed("POST").into()),
        (_, ["split_requests"]) => Err(ApiError::method_not_allowed("POST").into()),
        (_, ["split_requests", _]) => Err(ApiError::method_not_allowed("GET").into()),
        (_, ["members", "me"]) => Err(ApiError::method_not_allowed("DELETE").into()),
        (_, ["events"]) => Err(ApiError::method_not_allowed("GET").into()),
        (_, ["messages", _]) => Err(ApiError::method_not_allowed("PATCH, DELETE").into()),
        _ => Err(ApiError::not_found("no such route").into()),
    }
}

/// A room id in the path; a malformed one names no room.
fn room_id(raw: &str) -> Result<RoomId, ChatError> {
    RoomId::parse(raw).ok_or(ChatError::Outcome("room_not_found".into()))
}
