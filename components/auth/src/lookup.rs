//! Reading users: the caller (`/users/me`) and the people they may pay or chat with. Looking up
//! others is limited per caller and minute (`throttle::count_lookup`).
use http::StatusCode;
use shared::db::optional_row;
use shared::ids::UserId;
use shared::request::{query_pairs, query_value};
use shared::response::raw_json_reply;
use shared::username::Username;
use shared::{ApiError, Reply};
use spin_sdk::http::Request;
use spin_sdk::pg::ParameterValue;

use crate::error::AuthError;
use crate::settings::Settings;
use crate::throttle::count_lookup;

const USER_BY_ID: &str = "SELECT user_json(users)::text AS resource FROM users WHERE id = $1";
const USER_BY_USERNAME: &str = "SELECT user_json(users)::text AS resource FROM users WHERE username = $1";

pub async fn me(settings: &Settings, request: Request) -> Result<Reply, AuthError> {
    let caller = settings.keys.authenticate(request.headers())?;
    user_reply(settings, USER_BY_ID, caller.get().into()).await
}

pub async fn by_id(settings: &Settings, request: Request, raw_id: &str) -> Result<Reply, AuthError> {
    let caller = settings.keys.authenticate(request.headers())?;
    count_lookup(settings, caller).await?;
    let id = UserId::parse(raw_id).ok_or(AuthError::UserNotFound)?;
    user_reply(settings, USER_BY_ID, id.get().into()).await
}

/// `GET /users?username=alice`: an exact (case-insensitive) match, so the directory cannot be
/// listed by prefix.
pub async fn by_username(settings: &Settings, request: Request) -> Result<Reply, AuthError> {
    let caller = settings.keys.authenticate(request.headers())?;
    count_lookup(settings, caller).await?;
    let query = query_pairs(request.uri())?;
    let raw = query_value(&query, "username")
        .ok_or_else(|| ApiError::bad_request("missing_parameter", "the username query parameter is required"))?;
    let Ok(username) = Username::parse(raw) else {
        return Err(AuthError::UserNotFound);
    };
    user_reply(settings, USER_BY_USERNAME, username.as_str().to_owned().into()).await
}

async fn user_reply(settings: &Settings, statement: &str, key: ParameterValue) -> Result<Reply, AuthError> {
    let database = shared::db::connect(&settings.database_url).await?;
    let row = optional_row(&database, statement, vec![key]).await?.ok_or(AuthError::UserNotFound)?;
    Ok(raw_json_reply(StatusCode::OK, shared::db::column::<String>(&row, "resource")?))
}
