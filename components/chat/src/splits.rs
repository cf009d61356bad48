//! Split requests: one request to several members of a room at once. Each payer's share is a
//! payment request of its own, accepted or declined through [`crate::payments::resolve`]; the
//! split, its shares and its `split_request` message are stored by one SQL call
//! (sql/functions/35_chat_splits.sql), which also divides an equal split in minor units.
use std::collections::HashSet;
use std::ops::RangeInclusive;

use http::StatusCode;
use rust_decimal::Decimal;
use serde_json::Value;
use shared::ids::{IdempotencyKey, RoomId, SplitRequestId, UserId};
use shared::money::{Amount, Currency, Note};
use shared::request::{BODY_BYTES_MAX, JsonObject, read_body};
use shared::response::raw_json_reply;
use shared::{ApiError, Reply};
use spin_sdk::http::Request;
use spin_sdk::pg::ParameterValue;

use crate::error::ChatError;
use crate::outcome::{call, error_for};
use crate::settings::Settings;
use crate::{rate_limit, realtime};

/// How many payers one split names. A constant rather than a setting: the database holds the same
/// range (`split_requests_share_count_range`, sql/0010_split_requests.sql) and the contract
/// declares it.
pub const SPLIT_PAYERS: RangeInclusive<usize> = 2..=50;

/// Who owes what.
#[derive(Debug, PartialEq)]
enum Shares {
    /// `total` divided equally among the payers, in the currency's minor units; the leftover
    /// units go one each to the first payers in the order given.
    Equal { total: Amount, payers: Vec<UserId> },
    /// Each payer's share as given, in order; the total is their sum.
    Given(Vec<(UserId, Amount)>),
}

impl Shares {
    /// `{amount, payer_ids}` or `{shares: [{payer_id, amount}, ...]}`; no share may exceed
    /// `share_maximum` (an equal split's total may reach it once per payer).
    fn take_from(fields: &mut JsonObject, share_maximum: Decimal) -> Result<Self, ApiError> {
        if fields.contains("shares") {
            let items = payer_items(fields.require("shares")?, "shares")?;
            let shares = items.iter().map(|item| given_share(item, share_maximum)).collect::<Result<Vec<_>, _>>()?;
            refuse_duplicates(shares.iter().map(|(payer, _)| *payer))?;
            return Ok(Self::Given(shares));
        }
        let payers = payer_items(fields.require("payer_ids")?, "payer_ids")?
            .iter()
            .map(|item| UserId::from_json(item).ok_or_else(|| invalid_field("`payer_ids` must hold user ids")))
            .collect::<Result<Vec<_>, _>>()?;
        refuse_duplicates(payers.iter().copied())?;
        let total_maximum = share_maximum.saturating_mul(Decimal::from(payers.len()));
        let total = Amount::from_json(&fields.require("amount")?, total_maximum)?;
        Ok(Self::Equal { total, payers })
    }

    /// The SQL function's `p_payer_ids`, `p_total` and `p_share_amounts`: a total for an equal
    /// split, the amounts for given shares.
    fn into_arguments(self) -> [ParameterValue; 3] {
        let (payers, total, amounts) = match self {
            Self::Equal { total, payers } => (payers, Some(total.get()), None),
            Self::Given(shares) => {
                let amounts = shares.iter().map(|(_, amount)| Some(amount.get().to_string())).collect();
                (
                    shares.into_iter().map(|(payer, _)| payer).collect(),
                    None,
                    Some(ParameterValue::ArrayDecimal(amounts)),
                )
            }
        };
        [
            ParameterValue::ArrayInt64(payers.into_iter().map(|payer| Some(payer.get())).collect()),
            total.into(),
            amounts.unwrap_or(ParameterValue::DbNull),
        ]
    }
}

/// The items of the `field` array, 2 to 50 of them.
fn payer_items(value: Value, field: &str) -> Result<Vec<Value>, ApiError> {
    let Value::Array(items) = value else {
        return Err(invalid_field(&format!("`{field}` must be an array")));
    };
    if !SPLIT_PAYERS.contains(&items.len()) {
        return Err(ApiError::unprocessable(
            "invalid_payer_count",
            format!("a split names {} to {} payers", SPLIT_PAYERS.start(), SPLIT_PAYERS.end()),
        ));
    }
    Ok(items)
}

/// One `{payer_id, amount}` of `shares`.
fn given_share(item: &Value, share_maximum: Decimal) -> Result<(UserId, Amount), ApiError> {
    let Value::Object(map) = item else {
        return Err(invalid_field("each share must be an object {payer_id, amount}"));
    };
    let mut fields = JsonObject::from_map(map.clone());
    let payer =
        UserId::from_json(&fields.require("payer_id")?).ok_or_else(|| invalid_field("`payer_id` must be a user id"))?;
    let amount = Amount::from_json(&fields.require("amount")?, share_maximum)?;
    fields.finish()?;
    Ok((payer, amount))
}

fn refuse_duplicates(mut payers: impl Iterator<Item = UserId>) -> Result<(), ApiError> {
    let mut seen = HashSet::new();
    if payers.all(|payer| seen.insert(payer)) {
        Ok(())
    } else {
        Err(ApiError::unprocessable("duplicate_payer", "each payer may appear only once in a split"))
    }
}

fn invalid_field(message: &str) -> ApiError {
    ApiError::unprocessable("invalid_field", message.to_owned())
}

/// `POST /chat/rooms/{id}/split_requests {amount, payer_ids, currency?, note?}` or
/// `{shares: [{payer_id, amount}], currency?, note?}` + `Idempotency-Key`: 201 with the
/// `split_request` message, announced to the room.
pub async fn create(settings: &Settings, request: Request, room: RoomId) -> Result<Reply, ChatError> {
    let caller = settings.keys.authenticate(request.headers())?;
    rate_limit::allow_message(settings, caller).await?;
    let idempotency_key = IdempotencyKey::from_headers(request.headers())?;
    let (parts, body) = read_body(request, BODY_BYTES_MAX).await?;
    let mut fields = JsonObject::from_json_body(&parts.headers, &body)?;
    let shares = Shares::take_from(&mut fields, settings.max_transfer_amount)?;
    let currency = Currency::take_from(&mut fields, &settings.default_currency)?;
    let note = Note::parse(fields.take_string("note")?)?;
    fields.finish()?;
    let [payer_ids, total, share_amounts] = shares.into_arguments();
    let outcome = call(
        settings,
        "SELECT outcome, resource, replayed FROM chat_request_split(\
            $1::int8, $2::int8, $3::int8[], $4::numeric, $5::numeric[], $6::text, $7::text, $8::int4, $9::text)",
        vec![
            room.get().into(),
            caller.get().into(),
            payer_ids,
            total,
            share_amounts,
            currency.as_str().to_owned().into(),
            note.map(Note::into_string).into(),
            settings.payment_request_ttl_seconds.into(),
            idempotency_key.map(|key| key.as_str().to_owned()).into(),
        ],
    )
    .await?;
    if let Some(message) = outcome.fresh_resource("completed") {
        realtime::publish(settings, realtime::message_event(room, message)).await;
    }
    Ok(outcome.into_reply(&[("completed", StatusCode::CREATED)], error_for))
}

/// `GET /chat/rooms/{id}/split_requests/{split}`: the split with each share's status (members only).
pub async fn show(settings: &Settings, request: Request, room: RoomId, raw_split_id: &str) -> Result<Reply, ChatError> {
    let caller = settings.keys.authenticate(request.headers())?;
    let split = SplitRequestId::parse(raw_split_id).ok_or_else(|| ChatError::Outcome("split_not_found".into()))?;
    let database = shared::db::connect(&settings.database_url).await?;
    let resource: Option<String> = shared::db::optional_row(
        &database,
        "SELECT chat_split_request($1::int8, $2::int8, $3::int8) AS resource",
        vec![room.get().into(), caller.get().into(), split.get().into()],
    )
    .await?
    .and_then(|row| row.get("resource"));
    let resource = resource.ok_or_else(|| ChatError::Outcome("split_not_found".into()))?;
    Ok(raw_json_reply(StatusCode::OK, resource))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn maximum() -> Decimal {
        Decimal::from(100)
    }

    fn shares(body: Value) -> Result<Shares, &'static str> {
        let Value::Object(map) = body else { panic!("an object") };
        let mut fields = JsonObject::from_map(map);
        let shares = Shares::take_from(&mut fields, maximum()).map_err(|error| error.code)?;
        fields.finish().map_err(|error| error.code)?;
        Ok(shares)
    }

    fn user(id: i64) -> UserId {
        UserId::from_json(&json!(id)).unwrap()
    }

    fn amount(text: &str) -> Amount {
        Amount::parse(text, Decimal::MAX).unwrap()
    }

    #[test]
    fn an_equal_split_names_its_total_and_payers() {
        assert_eq!(
            shares(json!({"amount": "10", "payer_ids": [3, 2]})),
            Ok(Shares::Equal { total: amount("10"), payers: vec![user(3), user(2)] })
        );
        // Each share may reach the maximum: the total up to once per payer.
        assert!(shares(json!({"amount": "200", "payer_ids": [3, 2]})).is_ok());
        assert_eq!(shares(json!({"amount": "200.01", "payer_ids": [3, 2]})), Err("amount_too_large"));
    }

    #[test]
    fn given_shares_keep_their_order() {
        assert_eq!(
            shares(json!({"shares": [{"payer_id": 5, "amount": "1.50"}, {"payer_id": 4, "amount": 2}]})),
            Ok(Shares::Given(vec![(user(5), amount("1.50")), (user(4), amount("2"))]))
        );
        assert_eq!(
            shares(json!({"shares": [{"payer_id": 5, "amount": "100.01"}, {"payer_id": 4, "amount": 2}]})),
            Err("amount_too_large")
        );
    }

    #[test]
    fn payers_are_two_to_fifty_distinct_users() {
        let fifty_one: Vec<i64> = (1..=51).collect();
        let fifty: Vec<i64> = (1..=50).collect();
        assert_eq!(shares(json!({"amount": "1", "payer_ids": [2]})), Err("invalid_payer_count"));
        assert_eq!(shares(json!({"amount": "1", "payer_ids": fifty_one})), Err("invalid_payer_count"));
        assert!(shares(json!({"amount": "1", "payer_ids": fifty})).is_ok());
        assert_eq!(shares(json!({"amount": "1", "payer_ids": [2, 3, 2]})), Err("duplicate_payer"));
        let twice = json!({"shares": [{"payer_id": 2, "amount": 1}, {"payer_id": 2, "amount": 2}]});
        assert_eq!(shares(twice), Err("duplicate_payer"));
        assert_eq!(shares(json!({"shares": [{"payer_id": 2, "amount": 1}]})), Err("invalid_payer_count"));
    }

    #[test]
    fn malformed_splits_are_refused() {
        let cases = [
            (json!({"amount": "1"}), "missing_field"),
            (json!({"payer_ids": [2, 3]}), "missing_field"),
            (json!({"amount": "1", "payer_ids": "2,3"}), "invalid_field"),
            (json!({"amount": "1", "payer_ids": [2, "3"]}), "invalid_field"),
            (json!({"amount": "1", "payer_ids": [2, 0]}), "invalid_field"),
            (json!({"amount": "0", "payer_ids": [2, 3]}), "invalid_amount"),
            (json!({"shares": null, "amount": "1", "payer_ids": [2, 3]}), "missing_field"),
            (json!({"shares": [{"payer_id": 2, "amount": 1}, 7]}), "invalid_field"),
            (json!({"shares": [{"payer_id": 2, "amount": 1}, {"payer_id": 3}]}), "missing_field"),
            (json!({"shares": [{"payer_id": 2, "amount": 1}, {"payer_id": 3, "amount": 1, "x": 1}]}), "unknown_field"),
            (
                json!({"shares": [{"payer_id": 2, "amount": 1}, {"payer_id": 3, "amount": 1}], "amount": 2}),
                "unknown_field",
            ),
            (
                json!({"shares": [{"payer_id": 2, "amount": 1}, {"payer_id": 3, "amount": 1}], "payer_ids": null}),
                "unknown_field",
            ),
        ];
        for (body, code) in cases {
            assert_eq!(shares(body.clone()).err(), Some(code), "{body}");
        }
    }
}
