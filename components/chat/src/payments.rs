//! Money in the conversation: payments and payment requests, each stored together with the
//! message that shows it (both or neither), through the same ledger SQL as `/fintech/transfer`.
use http::StatusCode;
use shared::ids::{IdempotencyKey, PaymentRequestId, RoomId, UserId};
use shared::money::PaymentTerms;
use shared::request::{BODY_BYTES_MAX, JsonObject, read_body};
use shared::{ApiError, Reply};
use spin_sdk::http::Request;
use spin_sdk::pg::ParameterValue;

use crate::error::ChatError;
use shared::outcome::SqlOutcome;

use crate::outcome::{call, error_for};
use crate::settings::Settings;
use crate::{rate_limit, realtime};

#[derive(Clone, Copy)]
pub enum Resolution {
    Accept,
    Decline,
}

/// The caller, their Idempotency-Key, the counterpart named by `party_field`, and the terms.
struct PaymentCommand {
    caller: UserId,
    idempotency_key: Option<IdempotencyKey>,
    party: UserId,
    terms: PaymentTerms,
}

impl PaymentCommand {
    async fn read(settings: &Settings, request: Request, party_field: &str) -> Result<Self, ChatError> {
        let caller = settings.keys.authenticate(request.headers())?;
        rate_limit::allow_message(settings, caller).await?;
        let idempotency_key = IdempotencyKey::from_headers(request.headers())?;
        let (parts, body) = read_body(request, BODY_BYTES_MAX).await?;
        let mut fields = JsonObject::from_json_body(&parts.headers, &body)?;
        let party = UserId::from_json(&fields.require(party_field)?)
            .ok_or_else(|| ApiError::unprocessable("invalid_field", format!("`{party_field}` must be a user id")))?;
        let terms = PaymentTerms::take_from(&mut fields, settings.max_transfer_amount, &settings.default_currency)?;
        fields.finish()?;
        Ok(Self { caller, idempotency_key, party, terms })
    }

    /// The SQL arguments both payment functions take, in their order: room, caller, party,
    /// amount, currency, note, then `setting` (where the two differ), then the idempotency key.
    fn arguments(self, room: RoomId, setting: ParameterValue) -> Vec<ParameterValue> {
        vec![
            room.get().into(),
            self.caller.get().into(),
            self.party.get().into(),
            self.terms.amount.get().into(),
            self.terms.currency.as_str().to_owned().into(),
            self.terms.note_text().into(),
            setting,
            key_text(self.idempotency_key).into(),
        ]
    }
}

fn key_text(key: Option<IdempotencyKey>) -> Option<String> {
    key.map(|key| key.as_str().to_owned())
}

/// Announces a new payment-related message to the room, then answers.
async fn announce_and_reply(settings: &Settings, room: RoomId, outcome: SqlOutcome) -> Result<Reply, ChatError> {
    if let Some(message) = outcome.fresh_resource("completed") {
        realtime::publish(settings, realtime::message_event(room, message)).await;
    }
    Ok(outcome.into_reply(&[("completed", StatusCode::CREATED)], error_for))
}

/// `POST /chat/rooms/{id}/payments {receiver_id, amount, currency?, note?}` + `Idempotency-Key`.
pub async fn pay(settings: &Settings, request: Request, room: RoomId) -> Result<Reply, ChatError> {
    let command = PaymentCommand::read(settings, request, "receiver_id").await?;
    let mut arguments = command.arguments(room, settings.default_currency.as_str().to_owned().into());
    arguments.push(settings.daily_outgoing_max.into());
    arguments.push(settings.daily_outgoing_transfers_max.into());
    let outcome = call(
        settings,
        "SELECT outcome, resource, replayed FROM chat_send_payment(\
            $1::int8, $2::int8, $3::int8, $4::numeric, $5::text, $6::text, $7::text, $8::text, $9::numeric, $10::int4)",
        arguments,
    )
    .await?;
    announce_and_reply(settings, room, outcome).await
}

/// `POST /chat/rooms/{id}/payment_requests {payer_id, amount, currency?, note?}`.
pub async fn request(settings: &Settings, request: Request, room: RoomId) -> Result<Reply, ChatError> {
    let command = PaymentCommand::read(settings, request, "payer_id").await?;
    let outcome = call(
        settings,
        "SELECT outcome, resource, replayed FROM chat_request_payment(\
            $1::int8, $2::int8, $3::int8, $4::numeric, $5::text, $6::text, $7::int4, $8::text)",
        command.arguments(room, settings.payment_request_ttl_seconds.into()),
    )
    .await?;
    announce_and_reply(settings, room, outcome).await
}

/// `POST /chat/rooms/{id}/payment_requests/{request}/accept|decline` (the payer only).
pub async fn resolve(
    settings: &Settings,
    request: Request,
    room: RoomId,
    raw_request_id: &str,
    resolution: Resolution,
) -> Result<Reply, ChatError> {
    let caller = settings.keys.authenticate(request.headers())?;
    rate_limit::allow_message(settings, caller).await?;
    let idempotency_key = IdempotencyKey::from_headers(request.headers())?;
    let request_id =
        PaymentRequestId::parse(raw_request_id).ok_or_else(|| ChatError::Outcome("request_not_found".into()))?;
    let outcome = call(
        settings,
        "SELECT outcome, resource, replayed FROM chat_resolve_payment_request(\
            $1::int8, $2::int8, $3::int8, $4::bool, $5::text, $6::text, $7::numeric, $8::int4, $9::numeric)",
        vec![
            room.get().into(),
            request_id.get().into(),
            caller.get().into(),
            matches!(resolution, Resolution::Accept).into(),
            settings.default_currency.as_str().to_owned().into(),
            key_text(idempotency_key).into(),
            settings.daily_outgoing_max.into(),
            settings.daily_outgoing_transfers_max.into(),
            settings.max_transfer_amount.into(),
        ],
    )
    .await?;
    announce_and_reply(settings, room, outcome).await
}
