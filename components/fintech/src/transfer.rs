//! `POST /fintech/transfer`: the caller pays another user.
use http::StatusCode;
use shared::db::optional_row;
use shared::ids::{IdempotencyKey, UserId};
use shared::ledger::{SUCCESS_OUTCOME, outcome_error};
use shared::money::PaymentTerms;
use shared::outcome::SqlOutcome;
use shared::request::{BODY_BYTES_MAX, JsonObject, read_body};
use shared::username::Username;
use shared::{ApiError, Reply};
use spin_sdk::http::Request;
use spin_sdk::pg::ParameterValue;

use crate::error::FintechError;
use crate::settings::Settings;

/// Who receives the money: by id, or by username (compared case-insensitively).
enum Receiver {
    Id(UserId),
    Username(Username),
}

struct TransferCommand {
    receiver: Receiver,
    terms: PaymentTerms,
}

impl TransferCommand {
    fn parse(mut fields: JsonObject, caller: UserId, settings: &Settings) -> Result<Self, FintechError> {
        // The seed's clients send sender_id; it may only ever name the caller.
        if let Some(sender) = fields.take("sender_id")
            && UserId::from_json(&sender) != Some(caller)
        {
            return Err(FintechError::SenderMismatch);
        }
        let receiver = match (fields.take("receiver_id"), fields.take_string("receiver_username")?) {
            (Some(id), None) => Receiver::Id(UserId::from_json(&id).ok_or(FintechError::ReceiverUnspecified)?),
            // A name that cannot be a username names nobody, as an unknown one does.
            (None, Some(username)) => {
                Receiver::Username(Username::parse(&username).map_err(|_| outcome_error("receiver_not_found"))?)
            }
            _ => return Err(FintechError::ReceiverUnspecified),
        };
        let terms = PaymentTerms::take_from(&mut fields, settings.max_transfer_amount, &settings.default_currency)?;
        fields.finish()?;
        Ok(Self { receiver, terms })
    }
}

pub async fn transfer(settings: &Settings, request: Request) -> Result<Reply, FintechError> {
    let caller = settings.keys.authenticate(request.headers())?;
    let idempotency_key = IdempotencyKey::from_headers(request.headers())?;
    let (parts, body) = read_body(request, BODY_BYTES_MAX).await?;
    let command = TransferCommand::parse(JsonObject::from_json_body(&parts.headers, &body)?, caller, settings)?;

    let (receiver_id, receiver_username) = match command.receiver {
        Receiver::Id(id) => (Some(id.get()), None),
        Receiver::Username(username) => (None, Some(username.as_str().to_owned())),
    };
    let params: Vec<ParameterValue> = vec![
        caller.get().into(),
        receiver_id.into(),
        receiver_username.into(),
        command.terms.amount.get().into(),
        command.terms.currency.as_str().to_owned().into(),
        command.terms.note_text().into(),
        settings.default_currency.as_str().to_owned().into(),
        idempotency_key.map(|key| key.as_str().to_owned()).into(),
        settings.daily_outgoing_max.into(),
        settings.daily_outgoing_transfers_max.into(),
    ];
    let database = shared::db::connect(&settings.database_url).await?;
    let row = optional_row(
        &database,
        "SELECT outcome, resource, replayed FROM fintech_transfer(\
            $1::int8, $2::int8, $3::text, $4::numeric, $5::text, $6::text, $7::text, $8::text, $9::numeric, $10::int4)",
        params,
    )
    .await?
    .ok_or_else(|| ApiError::internal("fintech_transfer returned no row"))?;
    Ok(SqlOutcome::from_row(&row)?.into_reply(&[(SUCCESS_OUTCOME, StatusCode::CREATED)], outcome_error))
}
