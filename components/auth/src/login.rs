//! `POST /users/token`: the OAuth2 password grant, as a form (like the seed) or as JSON.
use shared::Reply;
use shared::client_address::client_network;
use shared::request::{BODY_BYTES_MAX, JsonObject, is_form, read_body};
use shared::username::Username;
use spin_sdk::http::Request;
use spin_sdk::pg::Connection;

use crate::accounts::{self, Account};
use crate::credentials::{needs_rehash, verify_password};
use crate::error::AuthError;
use crate::settings::Settings;
use crate::throttle::LoginThrottle;
use crate::tokens::start_session;

pub async fn login(settings: &Settings, request: Request) -> Result<Reply, AuthError> {
    let network = client_network(request.headers(), &settings.trusted_proxies)?;
    let (parts, body) = read_body(request, BODY_BYTES_MAX).await?;
    let mut fields = if is_form(&parts.headers) {
        JsonObject::from_form_body(&body)?
    } else {
        JsonObject::from_json_body(&parts.headers, &body)?
    };
    if fields.take_string("grant_type")?.is_some_and(|grant| grant != "password") {
        return Err(AuthError::UnsupportedGrantType { expected: "password" });
    }
    let login_name = fields.require_string("username")?;
    let password = fields.require_string("password")?;
    // OAuth2 clients may send these too; this server has no use for them.
    for ignored in ["scope", "client_id", "client_secret"] {
        fields.take(ignored);
    }
    fields.finish()?;

    // A name that is not a username names no account: it is still checked against the dummy
    // hash (same time) and counted against the address.
    let username = Username::parse(&login_name).ok();
    let throttle = LoginThrottle::open(settings, username.as_ref(), network).await?;
    throttle.count_attempt(&settings.throttle).await?;
    let database = shared::db::connect(&settings.database_url).await?;
    let account = match &username {
        Some(username) => accounts::by_username(&database, username).await?,
        None => None,
    };
    let stored_hash = account.as_ref().map(|account| account.password_hash.as_str());
    let verified = verify_password(&password, stored_hash, settings.bcrypt_cost)?;
    match account.filter(|_| verified) {
        Some(account) => {
            throttle.record_success().await?;
            let current_hash = if needs_rehash(&account.password_hash, settings.bcrypt_cost) {
                rehash(&database, &account, &password, settings.bcrypt_cost).await?
            } else {
                account.password_hash
            };
            start_session(settings, &database, account.id, &current_hash).await
        }
        None => Err(AuthError::InvalidCredentials),
    }
}

/// Stores the user's (just verified) password hashed with the configured cost, unless the hash
/// was replaced since it was read: a password change must not be undone. The hash to start the
/// session under: the new one; or, when another request replaced the verified one meanwhile, the
/// one it stored if the password verifies against it (a concurrent log-in's rehash), else the
/// verified one, under which no session starts (a change).
async fn rehash(database: &Connection, account: &Account, password: &str, cost: u32) -> Result<String, AuthError> {
    let password_hash = bcrypt::hash(password, cost)?;
    let replaced = database
        .execute(
            "UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3",
            [password_hash.clone().into(), account.id.get().into(), account.password_hash.clone().into()],
        )
        .await?;
    if replaced == 1 {
        return Ok(password_hash);
    }
    let moved_hash = accounts::current_hash_verifying(database, account.id, password, cost).await?;
    Ok(moved_hash.unwrap_or_else(|| account.password_hash.clone()))
}
