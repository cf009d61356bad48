//! `POST /fintech/deposits`: the operator credits a user from the currency's funding account.
//! Real payment rails are out of scope; this is how money enters the ledger.
use http::StatusCode;
use shared::db::optional_row;
use shared::ids::{IdempotencyKey, UserId};
use shared::ledger::{SUCCESS_OUTCOME, outcome_error};
use shared::money::PaymentTerms;
use shared::outcome::SqlOutcome;
use shared::request::{BODY_BYTES_MAX, JsonObject, read_body};
use shared::{ApiError, Reply};
use spin_sdk::http::Request;
use spin_sdk::pg::ParameterValue;

use crate::error::FintechError;
use crate::settings::Settings;

const OPERATOR_TOKEN_HEADER: &str = "x-operator-token";

pub async fn deposit(settings: &Settings, request: Request) -> Result<Reply, FintechError> {
    authenticate_operator(settings, request.headers())?;
    let idempotency_key = IdempotencyKey::from_headers(request.headers())?;
    let (parts, body) = read_body(request, BODY_BYTES_MAX).await?;
    let mut fields = JsonObject::from_json_body(&parts.headers, &body)?;
    let user = UserId::from_json(&fields.require("user_id")?)
        .ok_or_else(|| ApiError::unprocessable("invalid_field", "`user_id` must be a positive integer"))?;
    // Deposits are not capped by the per-transfer maximum: the operator funds accounts.
    let terms = PaymentTerms::take_from(&mut fields, rust_decimal::Decimal::MAX, &settings.default_currency)?;
    fields.finish()?;

    let params: Vec<ParameterValue> = vec![
        user.get().into(),
        terms.amount.get().into(),
        terms.currency.as_str().to_owned().into(),
        terms.note_text().into(),
        idempotency_key.map(|key| key.as_str().to_owned()).into(),
    ];
    let database = shared::db::connect(&settings.database_url).await?;
    let row = optional_row(
        &database,
        "SELECT outcome, resource, replayed FROM fintech_deposit($1::int8, $2::numeric, $3::text, $4::text, $5::text)",
        params,
    )
    .await?
    .ok_or_else(|| ApiError::internal("fintech_deposit returned no row"))?;
    Ok(SqlOutcome::from_row(&row)?.into_reply(&[(SUCCESS_OUTCOME, StatusCode::CREATED)], outcome_error))
}

pub fn authenticate_operator(settings: &Settings, headers: &http::HeaderMap) -> Result<(), FintechError> {
    let presented = headers.get(OPERATOR_TOKEN_HEADER).map(|value| value.as_bytes()).unwrap_or_default();
    if constant_time_equal(presented, settings.admin_token.as_bytes()) {
        Ok(())
    } else {
        Err(FintechError::OperatorCredentialInvalid)
    }
}

/// Compares without an early exit, so the time taken does not reveal how many leading bytes of a
/// guess were right. (The length is not secret: it is fixed by configuration.)
fn constant_time_equal(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len() && left.iter().zip(right).fold(0u8, |difference, (a, b)| difference | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::constant_time_equal;

    #[test]
    fn equal_only_when_every_byte_matches() {
        assert!(constant_time_equal(b"secret", b"secret"));
        assert!(!constant_time_equal(b"secret", b"secreT"));
        assert!(!constant_time_equal(b"secret", b"secret!"));
        assert!(!constant_time_equal(b"", b"secret"));
    }
}
