//! Split requests (issue 18): one request to several members of a room, each share a payment
//! request its payer resolves once; Postgres keeps the shares summing to the total.
use std::time::Duration;

use sendinchat_tests::app::{AppOptions, ChatSocket, Response, TestApp, TestUser, private_app};
use sendinchat_tests::ledger::assert_ledger_invariants;
use sendinchat_tests::wait;
use serde_json::{Value, json};

fn app() -> &'static TestApp {
    TestApp::shared()
}

const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// A group room owned by `owner` with `members`.
fn room_with(app: &TestApp, owner: &TestUser, members: &[&TestUser]) -> i64 {
    let ids: Vec<i64> = members.iter().map(|member| member.id).collect();
    let created = app.create_room(owner, &json!({"name": "Dinner", "member_ids": ids}));
    assert_eq!(created.status, 201, "{}", created.text);
    created.body["id"].as_i64().unwrap()
}

/// The split of a `split_request` message; the request must have succeeded.
fn split_of(created: &Response) -> &Value {
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["kind"], "split_request");
    &created.body["split_request"]
}

/// Each share's `field`, in the split's order.
fn shares_field(split: &Value, field: &str) -> Vec<Value> {
    split["shares"].as_array().expect("shares").iter().map(|share| share[field].clone()).collect()
}

fn share_id(split: &Value, index: usize) -> i64 {
    split["shares"][index]["id"].as_i64().expect("share id")
}

#[test]
fn an_equal_split_gives_leftover_cents_to_the_first_payers_and_shows_who_paid() {
    let (requester, bob, carol, dave) = (app().new_user(), app().new_user(), app().new_user(), app().new_user());
    app().fund(&bob, "20");
    let room = room_with(app(), &requester, &[&bob, &carol, &dave]);
    let mut socket = ChatSocket::join(app(), room, &bob).expect("bob's socket");
    let body = json!({"amount": "10", "payer_ids": [bob.id, carol.id, dave.id], "note": "dinner"});

    let created = app().request_split_with_key(&requester, room, &body, "split-1");
    let split = split_of(&created).clone();
    assert_eq!((split["amount"].as_str(), split["paid_amount"].as_str()), (Some("10.00"), Some("0.00")));
    assert_eq!(shares_field(&split, "payer_id"), [json!(bob.id), json!(carol.id), json!(dave.id)]);
    assert_eq!(shares_field(&split, "amount"), ["3.34", "3.33", "3.33"], "the leftover cent goes to the first payer");
    assert_eq!(shares_field(&split, "status"), ["pending", "pending", "pending"]);
    assert_eq!(shares_field(&split, "split_id"), [split["id"].clone(), split["id"].clone(), split["id"].clone()]);
    assert_eq!(created.body["content"], "dinner");

    let retried = app().request_split_with_key(&requester, room, &body, "split-1");
    assert_eq!(retried.body, created.body, "a retry returns the same split");
    assert_eq!(retried.header("idempotent-replayed"), Some("true"));
    let event = socket.next_of_type("message", EVENT_TIMEOUT).expect("the split's message event");
    assert_eq!(event["message"]["split_request"]["id"], split["id"]);

    let paid = app().accept_payment_request(&bob, room, share_id(&split, 0));
    assert_eq!(paid.status, 201, "{}", paid.text);
    assert_eq!(paid.body["payment_request"]["split_id"], split["id"]);
    let declined = app().decline_payment_request(&carol, room, share_id(&split, 1));
    assert_eq!(declined.status, 201, "{}", declined.text);
    let by_other_payer = app().accept_payment_request(&dave, room, share_id(&split, 0));
    assert_eq!((by_other_payer.status, by_other_payer.code()), (403, "not_payer"));

    let split_id = split["id"].as_i64().unwrap();
    let seen = app().split(&requester, room, split_id);
    assert_eq!(seen.status, 200, "{}", seen.text);
    assert_eq!(shares_field(&seen.body, "status"), ["accepted", "declined", "pending"]);
    assert_eq!(seen.body["shares"][0]["transfer_id"], paid.body["transfer"]["id"]);
    assert_eq!(seen.body["paid_amount"], "3.34");
    assert_eq!(app().balance(&requester), "3.34");
    assert_eq!(app().balance(&bob), "16.66");
    let history = app().messages(&dave, room, "");
    let message =
        history.body["items"].as_array().unwrap().iter().find(|item| item["kind"] == "split_request").cloned();
    assert_eq!(message.map(|item| item["split_request"].clone()), Some(seen.body.clone()), "history shows the same");

    let outsider = app().new_user();
    let hidden = app().split(&outsider, room, split_id);
    assert_eq!((hidden.status, hidden.code()), (404, "split_not_found"));
    let malformed = app().get(&format!("/chat/rooms/{room}/split_requests/x1"), Some(&requester.token));
    assert_eq!((malformed.status, malformed.code()), (404, "split_not_found"));
    assert_ledger_invariants(&mut app().database());
}

#[test]
fn given_shares_keep_their_order_and_postgres_keeps_them_summing_to_the_total() {
    let (requester, bob, carol) = (app().new_user(), app().new_user(), app().new_user());
    let room = room_with(app(), &requester, &[&bob, &carol]);
    let created = app().request_split(
        &requester,
        room,
        &json!({"shares": [{"payer_id": carol.id, "amount": "5"}, {"payer_id": bob.id, "amount": 2.5}]}),
    );
    let split = split_of(&created).clone();
    assert_eq!(split["amount"], "7.50");
    assert_eq!(shares_field(&split, "payer_id"), [json!(carol.id), json!(bob.id)]);
    assert_eq!(shares_field(&split, "amount"), ["5.00", "2.50"]);

    // Whatever writes the rows, a share cannot drift from its split's total or terms.
    let mut database = app().database();
    let split_id = split["id"].as_i64().unwrap();
    let mut refusal = |statement: &str, parameters: &[&(dyn postgres::types::ToSql + Sync)]| {
        let error = database.execute(statement, parameters).expect_err(statement);
        error.as_db_error().and_then(|db_error| db_error.constraint()).unwrap_or_default().to_owned()
    };
    let changed_share = refusal("UPDATE payment_requests SET amount = 6 WHERE id = $1", &[&share_id(&split, 0)]);
    assert_eq!(changed_share, "split_requests_shares_sum_to_total");
    let outsider = app().new_user();
    let extra_share = refusal(
        "INSERT INTO payment_requests (room_id, requester_id, payer_id, amount, currency, expires_at, split_id)
         SELECT room_id, requester_id, $2, 1, currency, expires_at, id FROM split_requests WHERE id = $1",
        &[&split_id, &outsider.id],
    );
    assert_eq!(extra_share, "split_requests_shares_sum_to_total");
    let other_currency = refusal("UPDATE payment_requests SET currency = 'EUR' WHERE id = $1", &[&share_id(&split, 1)]);
    assert_eq!(other_currency, "payment_requests_split_terms_fkey");
    let changed_total = refusal("UPDATE split_requests SET total = 8 WHERE id = $1", &[&split_id]);
    assert_eq!(changed_total, "split_requests_shares_sum_to_total");
    let seen = app().split(&bob, room, split["id"].as_i64().unwrap());
    assert_eq!(shares_field(&seen.body, "amount"), ["5.00", "2.50"]);
}

#[test]
fn two_concurrent_accepts_of_one_share_with_different_keys_pay_once() {
    let (requester, bob, carol) = (app().new_user(), app().new_user(), app().new_user());
    app().fund(&bob, "10");
    let room = room_with(app(), &requester, &[&bob, &carol]);
    let created = app().request_split(&requester, room, &json!({"amount": "9", "payer_ids": [bob.id, carol.id]}));
    let share = share_id(split_of(&created), 0);

    let bob = &bob;
    let answers: Vec<Response> = std::thread::scope(|scope| {
        let accepts: Vec<_> = (0..6)
            .map(|index| {
                scope.spawn(move || app().accept_payment_request_with_key(bob, room, share, &format!("accept-{index}")))
            })
            .collect();
        accepts.into_iter().map(|accept| accept.join().unwrap()).collect()
    });
    let statuses: Vec<u16> = answers.iter().map(|answer| answer.status).collect();
    assert_eq!(statuses.iter().filter(|status| **status == 201).count(), 1, "{statuses:?}");
    let refused: Vec<&str> = answers.iter().filter(|answer| answer.status != 201).map(Response::code).collect();
    assert_eq!(refused, ["already_resolved"; 5], "{statuses:?}");
    assert_eq!(app().balance(bob), "5.50", "exactly one payment of 4.50");
    assert_eq!(app().balance(&requester), "4.50");

    let winner = answers.iter().position(|answer| answer.status == 201).unwrap();
    let retried = app().accept_payment_request_with_key(bob, room, share, &format!("accept-{winner}"));
    assert_eq!((retried.status, retried.header("idempotent-replayed")), (201, Some("true")));
    assert_eq!(retried.body, answers[winner].body, "the winning key replays its answer and pays nothing more");
    assert_eq!(app().balance(bob), "5.50");
    assert_ledger_invariants(&mut app().database());
}

#[test]
fn every_payer_paying_at_once_settles_the_split() {
    let requester = app().new_user();
    let payers: Vec<TestUser> = (0..5).map(|_| app().new_user()).collect();
    for payer in &payers {
        app().fund(payer, "10");
    }
    let room = room_with(app(), &requester, &payers.iter().collect::<Vec<_>>());
    let payer_ids: Vec<i64> = payers.iter().map(|payer| payer.id).collect();
    let created = app().request_split(&requester, room, &json!({"amount": "25.03", "payer_ids": payer_ids}));
    let split = split_of(&created).clone();
    assert_eq!(shares_field(&split, "amount"), ["5.01", "5.01", "5.01", "5.00", "5.00"]);

    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let accepts: Vec<_> = payers
            .iter()
            .enumerate()
            .map(|(index, payer)| {
                let share = share_id(&split, index);
                scope.spawn(move || app().accept_payment_request(payer, room, share).status)
            })
            .collect();
        accepts.into_iter().map(|accept| accept.join().unwrap()).collect()
    });
    assert_eq!(statuses, [201; 5]);
    let seen = app().split(&requester, room, split["id"].as_i64().unwrap());
    assert_eq!(shares_field(&seen.body, "status"), ["accepted"; 5]);
    assert_eq!(seen.body["paid_amount"], "25.03", "the shares paid add up to the total");
    assert_eq!(app().balance(&requester), "25.03");
    assert_ledger_invariants(&mut app().database());
}

#[test]
fn splits_refuse_bad_payers_and_amounts_and_store_nothing() {
    let (requester, bob, carol) = (app().new_user(), app().new_user(), app().new_user());
    let room = room_with(app(), &requester, &[&bob, &carol]);
    let outsider = app().new_user();
    let many: Vec<i64> = (1..=51).collect();
    let cases = [
        (json!({"amount": "1", "payer_ids": [bob.id]}), 422, "invalid_payer_count"),
        (json!({"amount": "1", "payer_ids": many}), 422, "invalid_payer_count"),
        (json!({"amount": "1", "payer_ids": [bob.id, bob.id]}), 422, "duplicate_payer"),
        (json!({"amount": "1", "payer_ids": [bob.id, requester.id]}), 422, "self_request"),
        (json!({"amount": "1", "payer_ids": [bob.id, outsider.id]}), 422, "payer_not_member"),
        (json!({"amount": "0.01", "payer_ids": [bob.id, carol.id]}), 422, "split_too_small"),
        (json!({"amount": "1.001", "payer_ids": [bob.id, carol.id]}), 422, "invalid_amount"),
        (json!({"amount": "20000.01", "payer_ids": [bob.id, carol.id]}), 422, "amount_too_large"),
        (json!({"amount": "1", "payer_ids": [bob.id, carol.id], "currency": "XXX"}), 422, "unsupported_currency"),
        (
            json!({"amount": "2", "shares": [{"payer_id": bob.id, "amount": 1}, {"payer_id": carol.id, "amount": 1}]}),
            422,
            "unknown_field",
        ),
        (
            json!({"shares": [{"payer_id": bob.id, "amount": "1"}, {"payer_id": carol.id, "amount": "0"}]}),
            422,
            "invalid_amount",
        ),
        (json!({"shares": [{"payer_id": bob.id, "amount": "1"}, {"payer_id": carol.id}]}), 422, "missing_field"),
        (json!({"amount": "1"}), 422, "missing_field"),
    ];
    for (body, status, code) in cases {
        let response = app().request_split(&requester, room, &body);
        assert_eq!((response.status, response.code()), (status, code), "{body}: {}", response.text);
    }
    let by_outsider = app().request_split(&outsider, room, &json!({"amount": "1", "payer_ids": [bob.id, carol.id]}));
    assert_eq!((by_outsider.status, by_outsider.code()), (404, "room_not_found"));

    let body = json!({"amount": "3", "payer_ids": [bob.id, carol.id]});
    assert_eq!(app().request_split_with_key(&requester, room, &body, "reused").status, 201);
    let other = json!({"amount": "4", "payer_ids": [bob.id, carol.id]});
    let reused = app().request_split_with_key(&requester, room, &other, "reused");
    assert_eq!((reused.status, reused.code()), (422, "idempotency_key_reused"));
    let history = app().messages(&requester, room, "");
    assert_eq!(history.body["items"].as_array().unwrap().len(), 1, "only the one valid split was stored");
}

#[test]
fn split_shares_expire_with_the_split() {
    let Some(app) = private_app(AppOptions::default().variable("payment_request_ttl_seconds", "1")) else {
        return;
    };
    let (requester, bob, carol) = (app.new_user(), app.new_user(), app.new_user());
    app.fund(&bob, "5");
    let room = room_with(&app, &requester, &[&bob, &carol]);
    let created = app.request_split(&requester, room, &json!({"amount": "2", "payer_ids": [bob.id, carol.id]}));
    let split = split_of(&created).clone();
    let split_id = split["id"].as_i64().unwrap();
    let expired = wait::until(Duration::from_millis(1500), || {
        let statuses = shares_field(&app.split(&requester, room, split_id).body, "status");
        (statuses == ["expired", "expired"]).then_some(())
    });
    assert!(expired.is_some(), "both shares expire with the split's 1-second lifetime");
    let late = app.accept_payment_request(&bob, room, share_id(&split, 0));
    assert_eq!((late.status, late.code()), (409, "request_expired"));
    assert_eq!(app.balance(&bob), "5.00");
}
