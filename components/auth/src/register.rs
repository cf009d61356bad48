//! `POST /users/register`.
use http::StatusCode;
use shared::Reply;
use shared::client_address::client_network;
use shared::db::{UNIQUE_VIOLATION, column, sqlstate};
use shared::request::{BODY_BYTES_MAX, JsonObject, read_body};
use shared::response::raw_json_reply;
use shared::username::Username;
use spin_sdk::http::Request;

use crate::credentials::NewPassword;
use crate::error::AuthError;
use crate::settings::Settings;
use crate::throttle::count_registration;

pub async fn register(settings: &Settings, request: Request) -> Result<Reply, AuthError> {
    let network = client_network(request.headers(), &settings.trusted_proxies)?;
    let (parts, body) = read_body(request, BODY_BYTES_MAX).await?;
    let mut fields = JsonObject::from_json_body(&parts.headers, &body)?;
    let username = Username::parse(&fields.require_string("username")?)?;
    let password = NewPassword::parse(fields.require_string("password")?)?;
    fields.finish()?;
    count_registration(settings, network).await?;
    if username.is_reserved() {
        return Err(AuthError::UsernameTaken);
    }

    let password_hash = password.hash(settings.bcrypt_cost)?;
    let database = shared::db::connect(&settings.database_url).await?;
    let inserted = shared::db::optional_row(
        &database,
        "INSERT INTO users (username, password_hash) VALUES ($1, $2) RETURNING user_json(users)::text AS resource",
        vec![username.as_str().to_owned().into(), password_hash.into()],
    )
    .await;
    match inserted {
        Ok(Some(row)) => Ok(raw_json_reply(StatusCode::CREATED, column::<String>(&row, "resource")?)),
        Ok(None) => Err(shared::ApiError::internal("INSERT ... RETURNING returned no row").into()),
        Err(error) if sqlstate(&error) == Some(UNIQUE_VIOLATION) => Err(AuthError::UsernameTaken),
        Err(error) => Err(error.into()),
    }
}
