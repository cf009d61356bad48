//! `POST /fintech/transactions/{id}/refunds`: the receiver of a payment sends all or part of it
//! back, as often as they like up to the payment's amount in total (sql/functions/22_refunds.sql).
use http::StatusCode;
use rust_decimal::Decimal;
use shared::db::optional_row;
use shared::grip::message_event;
use shared::ids::{IdempotencyKey, RoomId, TransferId};
use shared::ledger::SUCCESS_OUTCOME;
use shared::money::{Amount, Note};
use shared::outcome::SqlOutcome;
use shared::request::{BODY_BYTES_MAX, JsonObject, read_body};
use shared::{ApiError, Reply};
use spin_sdk::http::Request;
use spin_sdk::pg::ParameterValue;

use crate::error::FintechError;
use crate::rate_limit;

use crate::settings::Settings;

struct RefundCommand {
    amount: Amount,
    note: Option<Note>,
}

impl RefundCommand {
    /// `{amount, note?}`. The currency is the payment's. The amount is bounded by what is left of
    /// the payment, not by `max_transfer_amount`, which may have been lowered since it was made.
    fn parse(mut fields: JsonObject) -> Result<Self, FintechError> {
        let amount = Amount::from_json(&fields.require("amount")?, Decimal::MAX)?;
        let note = Note::parse(fields.take_string("note")?)?;
        fields.finish()?;
        Ok(Self { amount, note })
    }
}

pub async fn refund(settings: &Settings, request: Request, raw_id: &str) -> Result<Reply, FintechError> {
    let caller = settings.keys.authenticate(request.headers())?;
    let idempotency_key = IdempotencyKey::from_headers(request.headers())?;
    let payment = TransferId::parse(raw_id).ok_or(FintechError::TransferNotFound)?;
    let (parts, body) = read_body(request, BODY_BYTES_MAX).await?;
    let command = RefundCommand::parse(JsonObject::from_json_body(&parts.headers, &body)?)?;
    rate_limit::allow_refund(settings, caller).await?;

    let params: Vec<ParameterValue> = vec![
        caller.get().into(),
        payment.get().into(),
        command.amount.get().into(),
        command.note.map(Note::into_string).into(),
        idempotency_key.map(|key| key.as_str().to_owned()).into(),
        settings.daily_outgoing_transfers_max.into(),
    ];
    let database = shared::db::connect(&settings.database_url).await?;
    let row = optional_row(
        &database,
        "SELECT outcome, resource, replayed, room_message \
         FROM fintech_refund($1::int8, $2::int8, $3::numeric, $4::text, $5::text, $6::int4)",
        params,
    )
    .await?
    .ok_or_else(|| ApiError::internal("fintech_refund returned no row"))?;
    // The refund of a chat payment added a message to its room: announce it, as chat would.
    if let Some(message) = row.get::<String>("room_message") {
        announce_in_room(settings, &message).await;
    }
    Ok(SqlOutcome::from_row(&row)?.into_reply(&[(SUCCESS_OUTCOME, StatusCode::CREATED)], refund_outcome_error))
}

/// Publishes the refund's message to its room's sockets, after the commit, as chat publishes its
/// messages: publishing never fails the request, and a client that misses the event sees a gap
/// in `seq` and fills it with `?after=`.
async fn announce_in_room(settings: &Settings, message_json: &str) {
    let room = serde_json::from_str::<serde_json::Value>(message_json)
        .ok()
        .and_then(|message| message["room_id"].as_i64())
        .and_then(|id| RoomId::parse(&id.to_string()));
    match room {
        Some(room) => settings.publisher.publish(message_event(room, message_json)).await,
        None => shared::request_log::warn(format_args!("refund message without a room: {message_json}")),
    }
}

/// The refund's own refusals; the rest are the ledger's (`insufficient_funds`, ...).
fn refund_outcome_error(outcome: &str) -> ApiError {
    match outcome {
        "transfer_not_found" => FintechError::TransferNotFound.into(),
        "not_payment_receiver" => {
            ApiError::forbidden("not_payment_receiver", "only the receiver of a payment can refund it")
        }
        "not_refundable" => {
            ApiError::unprocessable("not_refundable", "only payments can be refunded, not deposits or refunds")
        }
        "refund_exceeds_payment" => ApiError::unprocessable(
            "refund_exceeds_payment",
            "this refund would take the refunds of the payment past its amount",
        ),
        ledger_outcome => shared::ledger::outcome_error(ledger_outcome),
    }
}
