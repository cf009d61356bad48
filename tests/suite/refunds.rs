//! Refunds (issue 18): the receiver of a payment sends all or part of it back, never more than the
//! payment in total, even when refunds race; refusals for senders, deposits and refunds; replays
//! under an Idempotency-Key; and the refund of a payment made in a chat showing in its room.
use std::time::Duration;

use sendinchat_tests::app::{ChatSocket, Response, TestApp, TestUser, unique_suffix};
use sendinchat_tests::ledger::assert_ledger_invariants;
use serde_json::json;

fn app() -> &'static TestApp {
    TestApp::shared()
}

/// `payer` (funded with `funds`) pays `receiver` `amount`; returns the payment's id.
fn payment(payer: &TestUser, receiver: &TestUser, funds: &str, amount: &str) -> i64 {
    app().fund(payer, funds);
    let paid = app().transfer(payer, &json!({"receiver_id": receiver.id, "amount": amount, "note": "dinner"}));
    assert_eq!(paid.status, 201, "{}", paid.text);
    paid.body["id"].as_i64().unwrap()
}

fn id_of(response: &Response) -> i64 {
    response.body["id"].as_i64().unwrap_or_else(|| panic!("no id in {}", response.text))
}

#[test]
fn the_receiver_refunds_in_parts_up_to_the_payment_and_no_further() {
    let (alice, bob) = (app().new_user(), app().new_user());
    let paid = payment(&alice, &bob, "20", "10.00");

    let first = app().refund(&bob, paid, &json!({"amount": "2.50", "note": "overcharged"}));
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.body["kind"], "refund");
    assert_eq!(first.body["refund_of"], paid);
    assert_eq!(first.body["amount"], "2.50");
    assert_eq!((first.body["sender_id"].as_i64(), first.body["receiver_id"].as_i64()), (Some(bob.id), Some(alice.id)));
    assert_eq!(first.body["note"], "overcharged");
    let second = app().refund(&bob, paid, &json!({"amount": 7.5}));
    assert_eq!(second.status, 201, "{}", second.text);
    assert_eq!(app().transaction(&alice, paid).body["refunded_amount"], "10.00");
    assert_eq!(app().transaction(&bob, id_of(&second)).body["refunded_amount"], "0.00");

    let beyond = app().refund(&bob, paid, &json!({"amount": "0.01"}));
    assert_eq!((beyond.status, beyond.code()), (422, "refund_exceeds_payment"), "{}", beyond.text);
    assert_eq!((app().balance(&alice), app().balance(&bob)), ("20.00".to_owned(), "0.00".to_owned()));

    let history = app().transactions(&alice, "");
    let kinds: Vec<&str> =
        history.body["items"].as_array().unwrap().iter().map(|item| item["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["refund", "refund", "payment", "deposit"]);
    assert_ledger_invariants(&mut app().database());
}

#[test]
fn concurrent_refunds_cannot_pass_the_payment_together() {
    let (alice, bob) = (app().new_user(), app().new_user());
    let paid = payment(&alice, &bob, "10", "10.00");
    // Bob holds more than the payment, so only the payment's amount limits the refunds.
    app().fund(&bob, "100");
    let outcomes: Vec<(u16, String)> = std::thread::scope(|scope| {
        let refunds: Vec<_> = (0..6)
            .map(|_| {
                let bob = &bob;
                scope.spawn(move || {
                    let refunded = app().refund(bob, paid, &json!({"amount": "4.00"}));
                    (refunded.status, refunded.code().to_owned())
                })
            })
            .collect();
        refunds.into_iter().map(|refund| refund.join().unwrap()).collect()
    });
    let made = outcomes.iter().filter(|(status, _)| *status == 201).count();
    let refused = outcomes.iter().filter(|(status, code)| (*status, code.as_str()) == (422, "refund_exceeds_payment"));
    assert_eq!((made, refused.count()), (2, 4), "{outcomes:?}");
    assert_eq!(app().transaction(&bob, paid).body["refunded_amount"], "8.00");
    assert_eq!((app().balance(&alice), app().balance(&bob)), ("8.00".to_owned(), "102.00".to_owned()));
    assert_ledger_invariants(&mut app().database());
}

#[test]
fn senders_strangers_deposits_and_refunds_cannot_be_refunded() {
    let (alice, bob, mallory) = (app().new_user(), app().new_user(), app().new_user());
    let paid = payment(&alice, &bob, "10", "5.00");

    let by_sender = app().refund(&alice, paid, &json!({"amount": "1"}));
    assert_eq!((by_sender.status, by_sender.code()), (403, "not_payment_receiver"), "{}", by_sender.text);
    let by_stranger = app().refund(&mallory, paid, &json!({"amount": "1"}));
    assert_eq!((by_stranger.status, by_stranger.code()), (404, "not_found"), "{}", by_stranger.text);
    let unknown = app().refund(&bob, i64::MAX, &json!({"amount": "1"}));
    assert_eq!((unknown.status, unknown.code()), (404, "not_found"));

    let deposit = app().fund(&bob, "3");
    let of_deposit = app().refund(&bob, id_of(&deposit), &json!({"amount": "1"}));
    assert_eq!((of_deposit.status, of_deposit.code()), (422, "not_refundable"), "{}", of_deposit.text);

    let refund = app().refund(&bob, paid, &json!({"amount": "1"}));
    assert_eq!(refund.status, 201, "{}", refund.text);
    let of_refund = app().refund(&alice, id_of(&refund), &json!({"amount": "1"}));
    assert_eq!((of_refund.status, of_refund.code()), (422, "not_refundable"), "{}", of_refund.text);

    for (body, code) in [
        (json!({"amount": "0.001"}), "invalid_amount"),
        (json!({"amount": "-1"}), "invalid_amount"),
        (json!({"note": "no amount"}), "missing_field"),
        (json!({"amount": "1", "currency": "EUR"}), "unknown_field"),
    ] {
        let refused = app().refund(&bob, paid, &body);
        assert_eq!((refused.status, refused.code()), (422, code), "{body}: {}", refused.text);
    }
    // Bob spent what he received: the refund would overdraw him.
    let spent = app().transfer(&bob, &json!({"receiver_id": mallory.id, "amount": "7.00"}));
    assert_eq!(spent.status, 201, "{}", spent.text);
    let unfunded = app().refund(&bob, paid, &json!({"amount": "4"}));
    assert_eq!((unfunded.status, unfunded.code()), (422, "insufficient_funds"), "{}", unfunded.text);
    assert_eq!(app().balance(&alice), "6.00");
    assert_ledger_invariants(&mut app().database());
}

#[test]
fn a_refund_is_made_once_per_idempotency_key() {
    let (alice, bob) = (app().new_user(), app().new_user());
    let paid = payment(&alice, &bob, "10", "10.00");
    let key = format!("refund-{}", unique_suffix());
    let responses: Vec<Response> = std::thread::scope(|scope| {
        let retries: Vec<_> = (0..5)
            .map(|_| {
                let (bob, key) = (&bob, &key);
                scope.spawn(move || app().refund_with_key(bob, paid, &json!({"amount": "3.00"}), key))
            })
            .collect();
        retries.into_iter().map(|retry| retry.join().unwrap()).collect()
    });
    assert!(responses.iter().all(|response| response.status == 201), "{responses:?}");
    let ids: std::collections::HashSet<i64> = responses.iter().map(id_of).collect();
    assert_eq!(ids.len(), 1, "every retry answers the same refund: {responses:?}");
    let replays = responses.iter().filter(|response| response.header("idempotent-replayed") == Some("true")).count();
    assert_eq!(replays, 4);
    assert_eq!(app().transaction(&alice, paid).body["refunded_amount"], "3.00");

    let different = app().refund_with_key(&bob, paid, &json!({"amount": "1.00"}), &key);
    assert_eq!((different.status, different.code()), (422, "idempotency_key_reused"));
    // A refusal is the answer to its key too.
    let refusal_key = format!("refund-refused-{}", unique_suffix());
    let refused = app().refund_with_key(&bob, paid, &json!({"amount": "8.00"}), &refusal_key);
    assert_eq!((refused.status, refused.code()), (422, "refund_exceeds_payment"));
    let replayed = app().refund_with_key(&bob, paid, &json!({"amount": "8.00"}), &refusal_key);
    assert_eq!((replayed.status, replayed.header("idempotent-replayed")), (422, Some("true")));
    assert_eq!(app().balance(&alice), "3.00");
}

#[test]
fn a_refund_of_a_chat_payment_appears_in_its_room() {
    let (alice, bob) = (app().new_user(), app().new_user());
    app().fund(&alice, "10");
    let room = app().create_room(&alice, &json!({"name": "refunds", "member_ids": [bob.id]}));
    let room = id_of(&room);
    let paid = app().pay_in_room(&alice, room, &json!({"receiver_id": bob.id, "amount": "6.00"}));
    assert_eq!(paid.status, 201, "{}", paid.text);
    let payment_id = paid.body["transfer"]["id"].as_i64().unwrap();
    let mut socket = ChatSocket::join(app(), room, &alice).expect("websocket join");

    let refund = app().refund(&bob, payment_id, &json!({"amount": "2.00", "note": "too much"}));
    assert_eq!(refund.status, 201, "{}", refund.text);
    let event = socket.next_of_type("message", Duration::from_secs(10)).expect("the refund's message arrives live");
    assert_eq!(event["message"]["kind"], "refund", "{event}");
    assert_eq!(event["message"]["transfer"]["id"], refund.body["id"]);
    let history = app().messages(&alice, room, "");
    let last = history.body["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "refund", "{last}");
    assert_eq!(last["sender_id"], bob.id);
    assert_eq!(last["content"], "too much");
    assert_eq!(last["transfer"]["id"], refund.body["id"]);
    assert_eq!(last["transfer"]["refund_of"], payment_id);
    assert_eq!(app().balance(&alice), "6.00");

    // A payment outside chat has no room: its refund adds no message anywhere.
    let outside = payment(&alice, &bob, "1", "1.00");
    let before = app().messages(&alice, room, "").body["items"].as_array().unwrap().len();
    assert_eq!(app().refund(&bob, outside, &json!({"amount": "1.00"})).status, 201);
    assert_eq!(app().messages(&alice, room, "").body["items"].as_array().unwrap().len(), before);
}

/// A refund gives back money received: it neither counts against the refunder's daily outgoing
/// limit nor is stopped by it, and receiving it gives none of the payer's limit back.
#[test]
fn refunds_do_not_count_against_the_daily_limit() {
    use sendinchat_tests::app::{AppOptions, private_app};
    let Some(app) = private_app(AppOptions::default().variable("daily_outgoing_max", "5.00")) else {
        return;
    };
    let (alice, bob, carol) = (app.new_user(), app.new_user(), app.new_user());
    app.fund(&alice, "10");
    app.fund(&bob, "10");
    let send = |from: &TestUser, amount: &str| app.transfer(from, &json!({"receiver_id": carol.id, "amount": amount}));
    let paid = app.transfer(&alice, &json!({"receiver_id": bob.id, "amount": "5.00"}));
    assert_eq!(paid.status, 201, "{}", paid.text);
    let refund = |amount: &str| app.refund(&bob, id_of(&paid), &json!({"amount": amount}));

    let first = refund("2.00");
    assert_eq!(first.status, 201, "{}", first.text);
    let spent = send(&bob, "5.00");
    assert_eq!(spent.status, 201, "the refund did not count against bob's limit: {}", spent.text);
    let second = refund("3.00");
    assert_eq!(second.status, 201, "nor does his used-up limit stop a refund: {}", second.text);
    let over = send(&bob, "0.01");
    assert_eq!((over.status, over.code()), (422, "daily_limit_exceeded"), "{}", over.text);
    let payer_over = send(&alice, "0.01");
    assert_eq!((payer_over.status, payer_over.code()), (422, "daily_limit_exceeded"), "{}", payer_over.text);
    assert_eq!(app.balance(&alice), "10.00");
    assert_ledger_invariants(&mut app.database());
}

/// The refund rules hold for any writer, not only through the API: a refund past the payment, one
/// sent the wrong way and one of a deposit are refused by Postgres itself.
#[test]
fn postgres_itself_refuses_refunds_that_break_the_rules() {
    let (alice, bob) = (app().new_user(), app().new_user());
    let paid = payment(&alice, &bob, "10", "10.00");
    let deposit = id_of(&app().fund(&bob, "1"));
    let mut database = app().database();
    // A refund row naming `original`, from `sender` to `receiver` (columns of the original).
    let refund = |original: i64, sender: &str, receiver: &str, amount: &str| {
        format!(
            "INSERT INTO transfers (kind, sender_account_id, receiver_account_id, sender_user_id,
                                    receiver_user_id, amount, currency, refund_of)
             SELECT 'refund', {sender}_account_id, {receiver}_account_id, {sender}_user_id, {receiver}_user_id,
                    {amount}, currency, id
             FROM transfers WHERE id = {original}"
        )
    };
    let refusals = [
        ("past the payment", refund(paid, "receiver", "sender", "10.01"), "refund_totals_within_payment"),
        ("the wrong way", refund(paid, "sender", "receiver", "1"), "transfers_refund_reverses_payment"),
        ("of a deposit", refund(deposit, "receiver", "sender", "1"), "transfers_refund_reverses_payment"),
    ];
    for (what, statement, guard) in refusals {
        let error = database.batch_execute(&statement).expect_err(what);
        let constraint = error.as_db_error().and_then(|db_error| db_error.constraint());
        assert_eq!(constraint, Some(guard), "{what}: {error:?}");
    }
    assert_eq!(app().transaction(&alice, paid).body["refunded_amount"], "0.00");
}
