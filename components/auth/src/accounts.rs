//! Users' stored credentials. Every write of a password hash is conditional on the hash that was
//! verified (sql/functions/10_users.sql); a request that finds the hash moved checks the password
//! again against the one stored now ([`current_hash_verifying`]).
use shared::db::{column, optional_row};
use shared::ids::UserId;
use shared::username::Username;
use spin_sdk::pg::{Connection, ParameterValue, Row};

use crate::credentials::verify_password;
use crate::error::AuthError;

pub struct Account {
    pub id: UserId,
    pub username: Username,
    pub password_hash: String,
}

const BY_USERNAME: &str = "SELECT id, username, password_hash FROM users WHERE username = $1";
const BY_ID: &str = "SELECT id, username, password_hash FROM users WHERE id = $1";

pub async fn by_username(database: &Connection, username: &Username) -> Result<Option<Account>, AuthError> {
    find(database, BY_USERNAME, username.as_str().to_owned().into()).await
}

pub async fn by_id(database: &Connection, user: UserId) -> Result<Option<Account>, AuthError> {
    find(database, BY_ID, user.get().into()).await
}

/// The user's password hash as stored now, if `password` verifies against it: after another
/// request replaced the hash a request verified, whether that was a rehash of the same password
/// (then `Some`) or a change (`None`).
pub async fn current_hash_verifying(
    database: &Connection,
    user: UserId,
    password: &str,
    cost: u32,
) -> Result<Option<String>, AuthError> {
    let Some(account) = by_id(database, user).await? else { return Ok(None) };
    Ok(verify_password(password, Some(&account.password_hash), cost)?.then_some(account.password_hash))
}

async fn find(database: &Connection, statement: &str, key: ParameterValue) -> Result<Option<Account>, AuthError> {
    optional_row(database, statement, vec![key]).await?.as_ref().map(account).transpose()
}

fn account(row: &Row) -> Result<Account, AuthError> {
    Ok(Account {
        id: column(row, "id")?,
        username: Username::parse(&column::<String>(row, "username")?)?,
        password_hash: column(row, "password_hash")?,
    })
}
