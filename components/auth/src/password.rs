//! `POST /users/me/password`: a signed-in user changes their password, proving they know the
//! current one. Every other session of the user ends: whoever else held the old password, or a
//! session opened with it, is signed out everywhere but here.
use shared::client_address::client_network;
use shared::db::column;
use shared::ids::{SessionId, UserId};
use shared::request::{BODY_BYTES_MAX, JsonObject, read_body};
use shared::response::no_content;
use shared::{ApiError, Reply};
use spin_sdk::http::Request;
use spin_sdk::pg::Connection;

use crate::accounts;
use crate::credentials::{NewPassword, verify_password};
use crate::error::AuthError;
use crate::session::close_session_connections;
use crate::settings::Settings;
use crate::throttle::LoginThrottle;

pub async fn change_password(settings: &Settings, request: Request) -> Result<Reply, AuthError> {
    let bearer = settings.keys.authenticate_bearer(request.headers())?;
    let network = client_network(request.headers(), &settings.trusted_proxies)?;
    let (parts, body) = read_body(request, BODY_BYTES_MAX).await?;
    let mut fields = JsonObject::from_json_body(&parts.headers, &body)?;
    let current = fields.require_string("current_password")?;
    let new_password = NewPassword::parse(fields.require_string("new_password")?)?;
    fields.finish()?;
    if new_password.is_same_as(&current) {
        return Err(AuthError::SamePassword);
    }

    let database = shared::db::connect(&settings.database_url).await?;
    let account = accounts::by_id(&database, bearer.user).await?.ok_or(AuthError::UserNotFound)?;
    // A wrong current password is a guess at it, counted as a failed login of the username: a
    // stolen access token must not become an unthrottled oracle for the password.
    let throttle = LoginThrottle::open(settings, Some(&account.username), network).await?;
    throttle.count_attempt(&settings.throttle).await?;
    if !verify_password(&current, Some(&account.password_hash), settings.bcrypt_cost)? {
        return Err(AuthError::WrongPassword);
    }
    throttle.record_success().await?;
    let password_hash = new_password.hash(settings.bcrypt_cost)?;
    let ended = match replace_password(&database, bearer.user, &account.password_hash, &password_hash, bearer.session)
        .await?
    {
        Some(ended) => ended,
        // The hash moved since it was checked: a log-in's rehash of the same password (which the
        // current password still verifies against, so the change goes on over it) or another
        // change (which it does not).
        None => {
            let moved_hash = accounts::current_hash_verifying(&database, bearer.user, &current, settings.bcrypt_cost)
                .await?
                .ok_or(AuthError::WrongPassword)?;
            replace_password(&database, bearer.user, &moved_hash, &password_hash, bearer.session)
                .await?
                .ok_or(AuthError::WrongPassword)?
        }
    };
    close_session_connections(settings, &ended).await;
    Ok(no_content())
}

/// Stores the new hash and ends the user's other sessions; returns the sessions ended, or `None`
/// when the password is no longer the one verified (changed meanwhile by another request).
async fn replace_password(
    database: &Connection,
    user: UserId,
    verified_hash: &str,
    password_hash: &str,
    kept_session: Option<SessionId>,
) -> Result<Option<Vec<SessionId>>, AuthError> {
    // One row per ended session, or one without a session when none ended or nothing changed.
    let rows = shared::db::rows(
        database,
        "SELECT result.sessions IS NOT NULL AS changed, ended.session \
         FROM auth_change_password($1::int8, $2::text, $3::text, $4::int8) AS result(sessions) \
         LEFT JOIN LATERAL unnest(result.sessions) AS ended(session) ON true",
        vec![
            user.get().into(),
            verified_hash.to_owned().into(),
            password_hash.to_owned().into(),
            kept_session.map(SessionId::get).into(),
        ],
    )
    .await?;
    let first = rows.first().ok_or_else(|| ApiError::internal("auth_change_password returned no row"))?;
    if !column::<bool>(first, "changed")? {
        return Ok(None);
    }
    let ended: Result<Vec<Option<SessionId>>, ApiError> = rows.iter().map(|row| column(row, "session")).collect();
    Ok(Some(ended?.into_iter().flatten().collect()))
}
