//! Issuing a session: a short-lived access token (JWT) and a long-lived refresh token.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use http::StatusCode;
use serde_json::json;
use shared::db::{column, optional_row};
use shared::ids::{SessionId, UserId};
use shared::response::json_reply;
use shared::{ApiError, Reply};
use spin_sdk::pg::Connection;

use crate::error::AuthError;
use crate::settings::Settings;

/// Entropy of a refresh token: 256 bits, beyond guessing, and hashed with SHA-256 at rest.
const REFRESH_TOKEN_BYTES: usize = 32;

pub fn new_refresh_token() -> Result<String, AuthError> {
    let mut bytes = [0u8; REFRESH_TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(|error| ApiError::internal(format!("random source: {error}")))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Starts a new session (a new refresh-token family) for `user` after a successful login, whose
/// password was checked against `verified_hash`. A failed login if that is no longer the user's
/// hash: the password was changed meanwhile.
pub async fn start_session(
    settings: &Settings,
    database: &Connection,
    user: UserId,
    verified_hash: &str,
) -> Result<Reply, AuthError> {
    let refresh_token = new_refresh_token()?;
    let row = optional_row(
        database,
        "SELECT auth_issue_refresh_token($1::int8, $2::text, $3::int4, $4::int4, $5::text) AS session_id",
        vec![
            user.get().into(),
            refresh_token.clone().into(),
            settings.refresh_token_ttl_seconds.into(),
            settings.session_lifetime_seconds.into(),
            verified_hash.to_owned().into(),
        ],
    )
    .await?
    .ok_or_else(|| ApiError::internal("auth_issue_refresh_token returned no row"))?;
    let session = column::<Option<SessionId>>(&row, "session_id")?.ok_or(AuthError::InvalidCredentials)?;
    Ok(session_reply(settings, user, session, &refresh_token))
}

/// The OAuth2 token response.
pub fn session_reply(settings: &Settings, user: UserId, session: SessionId, refresh_token: &str) -> Reply {
    let access_token = settings.keys.issue(user, session, settings.access_token_lifetime, Utc::now());
    let mut reply = json_reply(
        StatusCode::OK,
        &json!({
            "access_token": access_token,
            "token_type": "bearer",
            "expires_in": settings.access_token_lifetime.num_seconds(),
            "refresh_token": refresh_token,
        }),
    );
    // RFC 6749 §5.1: token responses must not be cached.
    reply.headers_mut().insert(http::header::PRAGMA, http::HeaderValue::from_static("no-cache"));
    reply
}
