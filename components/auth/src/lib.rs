//! The `auth` component: everything under `/users`.
//!
//! | route                     | handler                       |
//! |---------------------------|-------------------------------|
//! | `POST /users/register`    | [`register::register`]        |
//! | `POST /users/token`       | [`login::login`]              |
//! | `POST /users/refresh`     | [`session::refresh`]          |
//! | `POST /users/logout`      | [`session::logout`]           |
//! | `GET  /users/me`          | [`lookup::me`]                |
//! | `POST /users/me/password` | [`password::change_password`] |
//! | `GET  /users/{id}`        | [`lookup::by_id`]             |
//! | `GET  /users?username=`   | [`lookup::by_username`]       |
mod accounts;
mod credentials;
mod error;
mod login;
mod lookup;
mod password;
mod register;
mod session;
mod settings;
mod throttle;
mod tokens;

use http::Method;
use shared::{ApiError, Reply};
use spin_sdk::http::Request;

use crate::error::AuthError;

#[spin_sdk::http_service]
async fn handle(request: Request) -> Reply {
    shared::request_log::serve("auth", request, async |request| match route(request).await {
        Ok(reply) => reply,
        Err(error) => ApiError::from(error).into_reply(),
    })
    .await
}

async fn route(request: Request) -> Result<Reply, AuthError> {
    let settings = settings::load().await?;
    let path = request.uri().path().trim_end_matches('/').to_owned();
    let segments: Vec<&str> = path.split('/').skip(2).collect();
    match (request.method().clone(), segments.as_slice()) {
        (Method::POST, ["register"]) => register::register(settings, request).await,
        (Method::POST, ["token"]) => login::login(settings, request).await,
        (Method::POST, ["refresh"]) => session::refresh(settings, request).await,
        (Method::POST, ["logout"]) => session::logout(settings, request).await,
        (_, ["register" | "token" | "refresh" | "logout"]) => Err(ApiError::method_not_allowed("POST").into()),
        (Method::GET, ["me"]) => lookup::me(settings, request).await,
        (Method::GET, []) => lookup::by_username(settings, request).await,
        (Method::GET, [id]) => lookup::by_id(settings, request, id).await,
        (Method::POST, ["me", "password"]) => password::change_password(settings, request).await,
        (_, ["me", "password"]) => Err(ApiError::method_not_allowed("POST").into()),
        (_, [] | [_]) => Err(ApiError::method_not_allowed("GET").into()),
        _ => Err(ApiError::not_found("no such route").into()),
    }
}
