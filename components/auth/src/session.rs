//! `POST /users/refresh` (rotation with reuse detection) and `POST /users/logout`.
use shared::Reply;
use shared::client_address::client_network;
use shared::db::{column, optional_row};
use shared::grip::session_ended_event;
use shared::ids::SessionId;
use shared::request::{BODY_BYTES_MAX, JsonObject, is_form, read_body};
use shared::response::no_content;
use spin_sdk::http::Request;

use crate::error::AuthError;
use crate::settings::Settings;
use crate::throttle::count_refresh;
use crate::tokens::{new_refresh_token, session_reply};

/// Refresh tokens we issue are 43 characters; anything much longer is not worth hashing.
const REFRESH_TOKEN_CHARS_MAX: usize = 128;

/// Reads `refresh_token` from a JSON or form body (OAuth2 clients send forms).
async fn presented_token(request: Request) -> Result<String, AuthError> {
    let (parts, body) = read_body(request, BODY_BYTES_MAX).await?;
    let mut fields = if is_form(&parts.headers) {
        JsonObject::from_form_body(&body)?
    } else {
        JsonObject::from_json_body(&parts.headers, &body)?
    };
    if fields.take_string("grant_type")?.is_some_and(|grant| grant != "refresh_token") {
        return Err(AuthError::UnsupportedGrantType { expected: "refresh_token" });
    }
    let token = fields.require_string("refresh_token")?;
    fields.take("client_id");
    fields.finish()?;
    // Ours are base64url; anything else (a NUL byte, which Postgres text cannot even hold) was
    // never issued, so it is refused without a query.
    let issuable = |byte: u8| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_';
    if token.len() > REFRESH_TOKEN_CHARS_MAX || !token.bytes().all(issuable) {
        return Err(AuthError::InvalidRefreshToken);
    }
    Ok(token)
}

pub async fn refresh(settings: &Settings, request: Request) -> Result<Reply, AuthError> {
    let network = client_network(request.headers(), &settings.trusted_proxies)?;
    let presented = presented_token(request).await?;
    count_refresh(settings, network).await?;
    let successor = new_refresh_token()?;
    let database = shared::db::connect(&settings.database_url).await?;
    let row = optional_row(
        &database,
        "SELECT outcome, user_id, session_id FROM auth_rotate_refresh_token($1::text, $2::text, $3::int4, $4::int4)",
        vec![
            presented.into(),
            successor.clone().into(),
            settings.refresh_token_ttl_seconds.into(),
            settings.session_lifetime_seconds.into(),
        ],
    )
    .await?
    .ok_or_else(|| shared::ApiError::internal("auth_rotate_refresh_token returned no row"))?;
    match column::<String>(&row, "outcome")?.as_str() {
        "rotated" => Ok(session_reply(settings, column(&row, "user_id")?, column(&row, "session_id")?, &successor)),
        "reused" => {
            close_session_connections(settings, &[column(&row, "session_id")?]).await;
            Err(AuthError::InvalidRefreshToken)
        }
        _ => Err(AuthError::InvalidRefreshToken),
    }
}

/// Revokes the presented token's family. Answers 204 whether or not the token was known, so
/// logout is idempotent and reveals nothing.
pub async fn logout(settings: &Settings, request: Request) -> Result<Reply, AuthError> {
    let presented = presented_token(request).await?;
    let database = shared::db::connect(&settings.database_url).await?;
    let row =
        optional_row(&database, "SELECT auth_revoke_refresh_token($1::text) AS session_id", vec![presented.into()])
            .await?
            .ok_or_else(|| shared::ApiError::internal("auth_revoke_refresh_token returned no row"))?;
    if let Some(session) = column::<Option<SessionId>>(&row, "session_id")? {
        close_session_connections(settings, &[session]).await;
    }
    Ok(no_content())
}

/// Closes the ended sessions' sockets and event streams now: they would otherwise wait for their
/// next frame or re-check (a socket's keep-alive request, a stream's next link).
pub(crate) async fn close_session_connections(settings: &Settings, sessions: &[SessionId]) {
    for session in sessions {
        settings.publisher.publish(session_ended_event(*session)).await;
    }
}
