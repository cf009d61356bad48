//! The `fintech` component through the host: transfers, deposits, history, idempotency, and the
//! ledger's invariants under contention (issue 6).
use std::collections::HashSet;
use std::time::Duration;

use sendinchat_tests::app::{AppOptions, Response, TestApp, TestUser, funded_pair_on_app_with, private_app};
use sendinchat_tests::ledger::{assert_ledger_invariants, assert_postgres_refuses_ledger_violations};
use sendinchat_tests::locks::wait_until_queued;
use serde_json::{Value, json};

fn app() -> &'static TestApp {
    TestApp::shared()
}

fn transfer(from: &TestUser, body: Value) -> Response {
    app().transfer(from, &body)
}

fn funded_user(amount: &str) -> TestUser {
    let user = app().new_user();
    app().fund(&user, amount);
    user
}

#[test]
fn a_transfer_moves_exact_money_and_shows_in_both_histories() {
    let (alice, bob, carol) = (funded_user("100"), app().new_user(), app().new_user());
    // The seed's body: sender_id (the caller) and a JSON number amount.
    let sent = transfer(&alice, json!({"sender_id": alice.id, "receiver_id": bob.id, "amount": 100.50 - 90.0}));
    assert_eq!(sent.status, 201, "{}", sent.text);
    let sent = transfer(&alice, json!({"receiver_id": bob.id, "amount": 10.50, "note": "lunch"}));
    assert_eq!(sent.status, 201, "{}", sent.text);
    assert_eq!(sent.body["amount"], "10.50");
    assert_eq!(sent.body["currency"], "USD");
    assert_eq!(sent.body["sender_id"], alice.id);
    assert_eq!(sent.body["receiver_id"], bob.id);
    assert_eq!(sent.body["status"], "completed");
    assert_eq!(sent.body["note"], "lunch");
    assert_eq!(app().balance(&alice), "79.00");
    assert_eq!(app().balance(&bob), "21.00");

    let id = sent.body["id"].as_i64().unwrap();
    assert_eq!(app().transaction(&bob, id).body, sent.body);
    assert_eq!(app().transaction(&alice, id).body, sent.body);
    let hidden = app().transaction(&carol, id);
    assert_eq!(hidden.status, 404, "a non-participant cannot tell it exists");

    let kinds = |page: Response| -> Vec<String> {
        assert_eq!(page.status, 200, "{}", page.text);
        page.body["items"].as_array().unwrap().iter().map(|item| item["kind"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(kinds(app().transactions(&alice, "")), ["payment", "payment", "deposit"]);
    assert_eq!(kinds(app().sent_transactions(&alice, "")), ["payment", "payment"]);
    assert_eq!(kinds(app().received_transactions(&alice, "")), ["deposit"]);
    assert_eq!(kinds(app().received_transactions(&bob, "")), ["payment", "payment"]);
    assert!(kinds(app().sent_transactions(&bob, "")).is_empty());
}

#[test]
fn receivers_can_be_named_by_username() {
    let (alice, bob) = (funded_user("5"), app().new_user());
    let sent = transfer(&alice, json!({"receiver_username": bob.username.to_uppercase(), "amount": "1"}));
    assert_eq!(sent.status, 201, "{}", sent.text);
    assert_eq!(sent.body["receiver_id"], bob.id);
}

#[test]
fn failed_transfers_explain_themselves_and_move_nothing() {
    let (alice, bob) = (funded_user("10"), app().new_user());
    let cases = [
        (json!({"receiver_id": bob.id, "amount": "10.01"}), 422, "insufficient_funds"),
        (json!({"receiver_id": alice.id, "amount": "1"}), 422, "self_transfer"),
        (json!({"receiver_id": 999_999_999, "amount": "1"}), 404, "receiver_not_found"),
        (json!({"receiver_username": "no_such_person", "amount": "1"}), 404, "receiver_not_found"),
        (json!({"receiver_id": bob.id, "amount": "1", "currency": "EUR"}), 422, "currency_mismatch"),
        (json!({"receiver_id": bob.id, "amount": "1", "currency": "XTS"}), 422, "unsupported_currency"),
        (json!({"receiver_id": bob.id, "amount": "1", "currency": "usd"}), 422, "invalid_currency"),
        (json!({"receiver_id": bob.id, "amount": "0.001"}), 422, "invalid_amount"),
        (json!({"receiver_id": bob.id, "amount": "1", "sender_id": bob.id}), 403, "sender_mismatch"),
        (json!({"receiver_id": bob.id, "receiver_username": bob.username, "amount": "1"}), 422, "invalid_receiver"),
        (json!({"amount": "1"}), 422, "invalid_receiver"),
        (json!({"receiver_id": bob.id}), 422, "missing_field"),
        (json!({"receiver_id": bob.id, "amount": "1", "note": "x".repeat(281)}), 422, "invalid_note"),
        (json!({"receiver_id": bob.id, "amount": "1", "note": "\u{202e}00.0001 :si latot"}), 422, "invalid_note"),
        (json!({"receiver_id": bob.id, "amount": "1", "memo": "typo"}), 422, "unknown_field"),
    ];
    for (body, status, code) in cases {
        let response = transfer(&alice, body.clone());
        assert_eq!((response.status, response.code()), (status, code), "{body}: {}", response.text);
    }
    assert_eq!(app().balance(&alice), "10.00");
    assert_eq!(app().balance(&bob), "0.00");
    assert_eq!(app().post("/fintech/transfer", None, &json!({"receiver_id": bob.id, "amount": "1"}), &[]).status, 401);
}

#[test]
fn amounts_are_parsed_exactly_or_refused() {
    let (alice, bob) = (funded_user("1000"), app().new_user());
    let cases: [(&str, Result<&str, &str>); 14] = [
        ("10.50", Ok("10.50")),
        ("\"10.5\"", Ok("10.50")),
        ("0.01", Ok("0.01")),
        ("7", Ok("7.00")),
        ("0", Err("invalid_amount")),
        ("-1", Err("invalid_amount")),
        ("0.001", Err("invalid_amount")),
        ("1e2", Err("invalid_amount")),
        ("\"NaN\"", Err("invalid_amount")),
        ("\" 10\"", Err("invalid_amount")),
        ("\"10 \"", Err("invalid_amount")),
        ("10000.01", Err("amount_too_large")),
        ("123456789012345678901234567890", Err("invalid_amount")),
        ("null", Err("missing_field")),
    ];
    for (raw_amount, expected) in cases {
        let body = format!(r#"{{"receiver_id": {}, "amount": {raw_amount}}}"#, bob.id);
        let authorization = format!("Bearer {}", alice.token);
        let response = app().request(
            "POST",
            "/fintech/transfer",
            &[("authorization", &authorization)],
            Some(("application/json", body.into_bytes())),
        );
        match expected {
            Ok(amount) => {
                assert_eq!(response.status, 201, "{raw_amount}: {}", response.text);
                assert_eq!(response.body["amount"], amount, "{raw_amount}");
            }
            Err(code) => assert_eq!((response.status, response.code()), (422, code), "{raw_amount}: {}", response.text),
        }
    }
    assert_eq!(app().balance(&bob), "28.01");
}

#[test]
fn one_idempotency_key_makes_exactly_one_transfer_under_concurrent_retries() {
    let (alice, bob) = (funded_user("100"), app().new_user());
    let key = format!("retry-{}", sendinchat_tests::app::unique_suffix());
    let responses: Vec<_> = std::thread::scope(|scope| {
        let retries: Vec<_> = (0..20)
            .map(|_| {
                let (alice, key) = (&alice, &key);
                scope.spawn(move || {
                    app().transfer_with_key(alice, &json!({"receiver_id": bob.id, "amount": "12.34"}), key)
                })
            })
            .collect();
        retries.into_iter().map(|retry| retry.join().unwrap()).collect()
    });
    assert!(responses.iter().all(|response| response.status == 201), "{responses:?}");
    let bodies: HashSet<&str> = responses.iter().map(|response| response.text.as_str()).collect();
    assert_eq!(bodies.len(), 1, "every retry returns the same body");
    let replays = responses.iter().filter(|response| response.header("idempotent-replayed") == Some("true")).count();
    assert_eq!(replays, 19, "all but the first are marked as replays");
    assert_eq!(app().balance(&alice), "87.66", "exactly one transfer happened");

    let different = app().transfer_with_key(&alice, &json!({"receiver_id": bob.id, "amount": "99"}), &key);
    assert_eq!((different.status, different.code()), (422, "idempotency_key_reused"));
    // A different request that the rules refuse, before any transfer is looked for, is still told
    // that the key was used.
    for refused_by_the_rules in [
        json!({"receiver_id": alice.id, "amount": "1"}),
        json!({"receiver_username": "nobody_has_this_name", "amount": "1"}),
        json!({"receiver_id": bob.id, "amount": "1", "currency": "EUR"}),
    ] {
        let different = app().transfer_with_key(&alice, &refused_by_the_rules, &key);
        assert_eq!((different.status, different.code()), (422, "idempotency_key_reused"), "{refused_by_the_rules}");
    }
    // After the money has moved on, a retry still gets the first answer.
    assert_eq!(transfer(&alice, json!({"receiver_id": bob.id, "amount": "87.66"})).status, 201);
    let late_retry = app().transfer_with_key(&alice, &json!({"receiver_id": bob.id, "amount": "12.34"}), &key);
    assert_eq!(
        (late_retry.status, late_retry.header("idempotent-replayed")),
        (201, Some("true")),
        "{}",
        late_retry.text
    );
    assert!(bodies.contains(late_retry.text.as_str()), "the late retry returns the first body: {}", late_retry.text);
    assert_eq!(app().balance(&alice), "0.00");
    // A refund since does not change the answer: a replay is the first answer, byte for byte.
    let paid = late_retry.body["id"].as_i64().expect("the transfer's id");
    assert_eq!(app().refund(&bob, paid, &json!({"amount": "2.34"})).status, 201);
    let after_refund = app().transfer_with_key(&alice, &json!({"receiver_id": bob.id, "amount": "12.34"}), &key);
    assert!(bodies.contains(after_refund.text.as_str()), "a replay after a refund: {}", after_refund.text);
    assert_eq!(app().transaction(&alice, paid).body["refunded_amount"], "2.34", "the transfer itself shows it");
    // UTF-8 beyond ASCII reaches the component (as under Spin), which refuses it like any
    // other malformed key.
    for malformed_key in ["has spaces in it", "×ø"] {
        let malformed = app().transfer_with_key(&alice, &json!({"receiver_id": bob.id, "amount": "1"}), malformed_key);
        assert_eq!((malformed.status, malformed.code()), (400, "invalid_idempotency_key"), "{malformed_key:?}");
    }
    // Two keys on one request: under which would a retry be filed?
    let bearer = format!("Bearer {}", alice.token);
    let body = json!({"receiver_id": bob.id, "amount": "1"}).to_string().into_bytes();
    let headers =
        [("authorization", bearer.as_str()), ("idempotency-key", "one-key"), ("idempotency-key", "other-key")];
    let two_keys = app().request("POST", "/fintech/transfer", &headers, Some(("application/json", body)));
    assert_eq!((two_keys.status, two_keys.code()), (400, "invalid_idempotency_key"), "{}", two_keys.text);
}

/// A retry sent while its first request still runs gets that request's answer, even when money
/// arrives in between: the first is refused for lack of funds, a deposit lands, and the retry
/// must replay the refusal rather than pay. The test holds the payer's account, so the first
/// request waits for it (holding its key), the retry queues on the key and the deposit on the
/// account behind the first; then it lets go, and the three run in that order.
#[test]
fn a_retry_racing_its_refused_first_request_gets_the_same_answer() {
    let (payer, payee) = (funded_user("0.50"), app().new_user());
    let key = format!("race-{}", sendinchat_tests::app::unique_suffix());
    let body = json!({"receiver_id": payee.id, "amount": "1.00"});
    let mut database = app().database();
    let mut holder = database.transaction().unwrap();
    let holder_pid: i32 = holder.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    holder.execute("SELECT 1 FROM accounts WHERE owner_user_id = $1 FOR UPDATE", &[&payer.id]).unwrap();
    let mut observer = app().database();
    let mut queued = |statement: &str, count: i64, what: &str| {
        wait_until_queued(&mut observer, holder_pid, statement, count, what, Duration::from_secs(10));
    };
    let (first, retry) = std::thread::scope(|scope| {
        let first = scope.spawn(|| app().transfer_with_key(&payer, &body, &key));
        queued("fintech_transfer", 1, "the first request");
        let retry = scope.spawn(|| app().transfer_with_key(&payer, &body, &key));
        queued("fintech_transfer", 2, "the retry");
        let deposit = scope.spawn(|| app().fund(&payer, "1.00"));
        queued("fintech_deposit", 1, "the deposit");
        holder.commit().unwrap();
        deposit.join().unwrap();
        (first.join().unwrap(), retry.join().unwrap())
    });
    assert_eq!((first.status, first.code()), (422, "insufficient_funds"), "{}", first.text);
    let late = app().transfer_with_key(&payer, &body, &key);
    for answer in [&retry, &late] {
        assert_eq!((answer.status, &answer.text), (first.status, &first.text), "one key, one answer");
        assert_eq!(answer.header("idempotent-replayed"), Some("true"), "{answer:?}");
    }
    assert_eq!(app().balance(&payer), "1.50", "the refusal was replayed, not paid");
}

#[test]
fn deposits_need_the_operator_credential() {
    let user = app().new_user();
    let body = json!({"user_id": user.id, "amount": "5"});
    for token in [None, Some("wrong"), Some(user.token.as_str())] {
        let response = app().deposit(&body, token);
        assert_eq!((response.status, response.code()), (401, "invalid_operator_token"));
    }
    app().fund(&user, "5");
    assert_eq!(app().balance(&user), "5.00");
}

#[test]
fn history_pages_are_stable_while_new_transfers_arrive() {
    let (alice, bob) = (funded_user("100"), app().new_user());
    let made_id = |amount: Value| {
        let made = transfer(&alice, json!({"receiver_id": bob.id, "amount": amount}));
        assert_eq!(made.status, 201, "{}", made.text);
        made.body["id"].as_i64().unwrap()
    };
    let earlier: Vec<i64> = (1..=7).map(|amount| made_id(json!(amount))).collect();
    let mut seen = Vec::new();
    let mut arrived = Vec::new();
    let mut query = "limit=3".to_owned();
    loop {
        let page = app().sent_transactions(&alice, &query);
        assert_eq!(page.status, 200, "{}", page.text);
        seen.extend(page.body["items"].as_array().unwrap().iter().map(|item| item["id"].as_i64().unwrap()));
        // A transfer arriving mid-pagination lands before the cursor and never shifts later pages.
        arrived.push(made_id(json!("0.01")));
        match page.body["next_before"].as_i64() {
            Some(cursor) => query = format!("limit=3&before={cursor}"),
            None => break,
        }
    }
    let newest_first: Vec<i64> = earlier.iter().rev().copied().collect();
    assert_eq!(seen, newest_first, "the pages hold the transfers made before paging, each once, newest first");
    assert_eq!(arrived.len(), 3, "one transfer arrived after each of the three pages");
    for bad in ["limit=0", "limit=101", "limit=x", "before=-3", "before=abc"] {
        let response = app().transactions(&alice, bad);
        assert_eq!(response.status, 400, "{bad}: {}", response.text);
    }
}

#[test]
fn postgres_itself_refuses_to_break_the_ledger() {
    let (alice, bob) = (funded_user("3"), app().new_user());
    let key = format!("guard-{}", sendinchat_tests::app::unique_suffix());
    let sent = app().transfer_with_key(&alice, &json!({"receiver_id": bob.id, "amount": "1"}), &key);
    assert_eq!(sent.status, 201, "{}", sent.text);
    let mut database = app().database();
    assert_postgres_refuses_ledger_violations(&mut database, sent.body["id"].as_i64().unwrap());
    assert_ledger_invariants(&mut database);
}

#[test]
fn a_refused_transfer_stays_refused_under_its_key() {
    let (alice, bob) = (funded_user("1"), app().new_user());
    let key = format!("refused-{}", sendinchat_tests::app::unique_suffix());
    let body = json!({"receiver_id": bob.id, "amount": "5"});
    let first = app().transfer_with_key(&alice, &body, &key);
    assert_eq!((first.status, first.code()), (422, "insufficient_funds"));
    app().fund(&alice, "10");
    let retry = app().transfer_with_key(&alice, &body, &key);
    assert_eq!(
        (retry.status, retry.code(), retry.header("idempotent-replayed")),
        (422, "insufficient_funds", Some("true"))
    );
    let different = app().transfer_with_key(&alice, &json!({"receiver_id": bob.id, "amount": "6"}), &key);
    assert_eq!((different.status, different.code()), (422, "idempotency_key_reused"));
    assert_eq!(app().balance(&alice), "11.00", "nothing moved under the refused key");
}

/// Two new users paying each other at the same moment both open both accounts: never a deadlock.
#[test]
fn simultaneous_first_transfers_between_new_users_never_deadlock() {
    const PAIRS: usize = 16;
    let pairs: Vec<(TestUser, TestUser)> = (0..PAIRS).map(|_| (app().new_user(), app().new_user())).collect();
    let start = std::sync::Barrier::new(2 * PAIRS);
    let outcomes: Vec<(u16, String)> = std::thread::scope(|scope| {
        let payers: Vec<_> = pairs
            .iter()
            .flat_map(|(a, b)| [(a, b), (b, a)])
            .map(|(sender, receiver)| {
                let start = &start;
                scope.spawn(move || {
                    start.wait();
                    let response = transfer(sender, json!({"receiver_id": receiver.id, "amount": "1"}));
                    (response.status, response.code().to_owned())
                })
            })
            .collect();
        payers.into_iter().map(|payer| payer.join().unwrap()).collect()
    });
    assert!(
        outcomes.iter().all(|(status, code)| (*status, code.as_str()) == (422, "insufficient_funds")),
        "unfunded first transfers are refused, never a deadlock or a 5xx: {outcomes:?}"
    );
    let mut database = app().database();
    let ids: Vec<i64> = pairs.iter().flat_map(|(a, b)| [a.id, b.id]).collect();
    let accounts: i64 =
        database.query_one("SELECT count(*) FROM accounts WHERE owner_user_id = ANY($1)", &[&ids]).unwrap().get(0);
    assert_eq!(accounts as usize, ids.len(), "each user opened exactly one account");
    assert_ledger_invariants(&mut database);
}

/// A transfer that Postgres aborts to break a deadlock answers a retryable 503 with Retry-After,
/// not a 500: nothing of it was written, and its retry under the same key completes once. The
/// deadlock is the test's own doing, and the transfer is made the backend that closes the cycle:
/// a backend looks for a deadlock once it has waited `deadlock_timeout` (1 s) and the one that
/// finds it is aborted, so the test's transactions wait 10 s. The transfer locks its two accounts
/// in id order. `gate` holds the first, so the transfer waits there; `holder` takes the second
/// and queues for the first behind the transfer; `gate` lets go; the transfer takes the first and
/// asks for the second, and its 1 s comes long before the holder's 10.
#[test]
fn a_transfer_aborted_by_a_deadlock_answers_a_retryable_503_and_its_retry_completes() {
    let (alice, bob) = (funded_user("10"), funded_user("10"));
    let mut database = app().database();
    let mut account_of = |user: &TestUser| -> i64 {
        database.query_one("SELECT id FROM accounts WHERE owner_user_id = $1", &[&user.id]).unwrap().get(0)
    };
    let accounts = [account_of(&alice), account_of(&bob)];
    let (first, second) = (accounts.iter().min().copied().unwrap(), accounts.iter().max().copied().unwrap());
    let lock_account = "SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE";
    let (mut gate_database, mut holder_database) = (app().database(), app().database());
    let (mut gate, mut holder) = (gate_database.transaction().unwrap(), holder_database.transaction().unwrap());
    let [gate_pid, holder_pid] = [&mut gate, &mut holder].map(|transaction| {
        transaction.batch_execute("SET LOCAL deadlock_timeout = '10s'").unwrap();
        transaction.query_one("SELECT pg_backend_pid()", &[]).unwrap().get::<_, i32>(0)
    });
    gate.execute(lock_account, &[&first]).unwrap();
    holder.execute(lock_account, &[&second]).unwrap();
    let mut observer = app().database();
    let mut waits_for = |blocker: &str, pid: i32| {
        let query = format!("SELECT count(*) FROM pg_stat_activity WHERE {blocker}");
        let waiting = || (observer.query_one(&query, &[&pid]).unwrap().get::<_, i64>(0) > 0).then_some(());
        sendinchat_tests::wait::until(std::time::Duration::from_secs(10), waiting)
    };
    let body = json!({"receiver_id": bob.id, "amount": "1"});
    let aborted = std::thread::scope(|scope| {
        let sent = scope.spawn(|| app().transfer_with_key(&alice, &body, "deadlocked-once"));
        waits_for("$1 = ANY (pg_blocking_pids(pid))", gate_pid).expect("the transfer waits for the gate");
        let queued = scope.spawn(move || {
            holder.execute(lock_account, &[&first]).expect("the holder outlives the deadlock");
            holder.rollback().unwrap();
        });
        let holder_waits = waits_for("pid = $1 AND cardinality(pg_blocking_pids(pid)) > 0", holder_pid);
        holder_waits.expect("the holder queues for the first account");
        gate.rollback().unwrap();
        queued.join().unwrap();
        sent.join().unwrap()
    });
    assert_eq!((aborted.status, aborted.code()), (503, "unavailable"), "{}", aborted.text);
    assert!(aborted.header("retry-after").is_some(), "a 503 says when to retry");
    assert_eq!((app().balance(&alice), app().balance(&bob)), ("10.00".to_owned(), "10.00".to_owned()));
    let retried = app().transfer_with_key(&alice, &body, "deadlocked-once");
    assert_eq!(retried.status, 201, "{}", retried.text);
    let again = app().transfer_with_key(&alice, &body, "deadlocked-once");
    assert_eq!(again.body["id"], retried.body["id"], "the key still makes one transfer");
    assert_eq!((app().balance(&alice), app().balance(&bob)), ("9.00".to_owned(), "11.00".to_owned()));
    assert_ledger_invariants(&mut app().database());
}

/// A refused request's answer is stored under its Idempotency-Key, and nothing throttles refusals:
/// each user keeps the answers of their latest 1,000 (`idempotency_refusals_kept_max`), so a client
/// cannot fill the table. The latest still replay; one forgotten is judged afresh, which a refused
/// request (it had no effect) allows without ever making its effect twice.
#[test]
fn a_user_keeps_the_answers_of_their_latest_thousand_refusals() {
    const KEPT: i64 = 1_000;
    const REFUSALS: usize = 1_040;
    const CLIENTS: usize = 4;
    let (alice, bob) = (app().new_user(), app().new_user());
    let body = json!({"receiver_id": bob.id, "amount": "1"});
    let refused = |key: &str| {
        let refused = app().transfer_with_key(&alice, &body, key);
        assert_eq!((refused.status, refused.code()), (422, "insufficient_funds"), "{}", refused.text);
    };
    refused("oldest");
    std::thread::scope(|scope| {
        for client in 0..CLIENTS {
            let refused = &refused;
            scope.spawn(move || (client..REFUSALS).step_by(CLIENTS).for_each(|index| refused(&format!("k-{index}"))));
        }
    });
    refused("latest");
    let mut database = app().database();
    let scope = format!("user:{}", alice.id);
    let stored: i64 =
        database.query_one("SELECT count(*) FROM idempotency_keys WHERE scope = $1", &[&scope]).unwrap().get(0);
    assert!((KEPT..=KEPT + 16).contains(&stored), "{stored} refusals kept of {}", REFUSALS + 2);
    app().fund(&alice, "5");
    let latest = app().transfer_with_key(&alice, &body, "latest");
    assert_eq!((latest.status, latest.header("idempotent-replayed")), (422, Some("true")), "{}", latest.text);
    let oldest = app().transfer_with_key(&alice, &body, "oldest");
    assert_eq!(oldest.status, 201, "forgotten, so judged afresh: {}", oldest.text);
    let again = app().transfer_with_key(&alice, &body, "oldest");
    assert_eq!((again.status, again.body["id"].clone()), (201, oldest.body["id"].clone()), "{}", again.text);
    assert_eq!(app().balance(&alice), "4.00", "one transfer for the key");
    assert_ledger_invariants(&mut database);
}

/// 50 accounts, 32 concurrent clients, 5,000 random transfers, a hot account in 30% of them.
#[test]
fn a_storm_of_concurrent_transfers_keeps_every_invariant() {
    const ACCOUNTS: usize = 50;
    const CLIENTS: usize = 32;
    const TRANSFERS: usize = 5_000;
    let users: Vec<TestUser> = (0..ACCOUNTS).map(|_| app().new_user()).collect();
    for user in &users {
        app().fund(user, "100");
    }
    let hot = &users[0];
    let outcomes: Vec<(u16, String)> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let users = &users;
                scope.spawn(move || {
                    let mut random = Lcg(client as u64 * 7919 + 1);
                    let share = TRANSFERS / CLIENTS + usize::from(client < TRANSFERS % CLIENTS);
                    (0..share)
                        .map(|_| {
                            let mut pick = || &users[random.below(ACCOUNTS)];
                            let (mut sender, mut receiver) = (pick(), pick());
                            if random.below(10) < 3 {
                                if random.below(2) == 0 { sender = hot } else { receiver = hot }
                            }
                            if sender.id == receiver.id {
                                receiver =
                                    &users[(users.iter().position(|u| u.id == sender.id).unwrap() + 1) % ACCOUNTS];
                            }
                            let amount = format!("{}.{:02}", random.below(20), 1 + random.below(99));
                            let response = transfer(sender, json!({"receiver_id": receiver.id, "amount": amount}));
                            (response.status, response.code().to_owned())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        clients.into_iter().flat_map(|client| client.join().unwrap()).collect()
    });
    let created = outcomes.iter().filter(|(status, _)| *status == 201).count();
    assert_eq!(outcomes.len(), TRANSFERS);
    let refused: Vec<_> = outcomes.iter().filter(|(status, _)| *status != 201).collect();
    assert!(
        refused.iter().all(|(status, code)| (*status, code.as_str()) == (422, "insufficient_funds")),
        "only insufficient funds may refuse a transfer, never a deadlock or a 5xx: {:?}",
        refused.iter().filter(|(_, code)| code != "insufficient_funds").take(5).collect::<Vec<_>>()
    );
    eprintln!("storm: {created} transfers made, {} refused", refused.len());

    let mut database = app().database();
    let ids: Vec<i64> = users.iter().map(|user| user.id).collect();
    let rows: i64 = database
        .query_one("SELECT count(*) FROM transfers WHERE kind = 'payment' AND sender_user_id = ANY($1)", &[&ids])
        .unwrap()
        .get(0);
    assert_eq!(rows as usize, created, "every 201 is a transfer row and every row got a 201");
    assert_ledger_invariants(&mut database);
    let audit = app().audit(Some(app().admin_token()));
    assert_eq!(audit.status, 200, "{}", audit.text);
    assert_eq!(audit.body["clean"], true, "the operator's audit agrees: {}", audit.text);
}

#[test]
fn the_audit_needs_the_operator_and_reports_a_planted_inconsistency() {
    assert_eq!(app().audit(None).code(), "invalid_operator_token");
    assert_eq!(app().audit(Some("not-the-operator-token-but-long-enough-0123")).status, 401);
    // Corrupting the books needs a database of its own.
    let Some(app) = private_app(AppOptions::default()) else {
        return;
    };
    let (alice, bob) = (app.new_user(), app.new_user());
    app.fund(&alice, "10");
    let sent = app.transfer(&alice, &json!({"receiver_id": bob.id, "amount": "4.00"}));
    assert_eq!(sent.status, 201, "{}", sent.text);
    let clean = app.audit(Some(app.admin_token()));
    assert_eq!((clean.status, &clean.body["clean"]), (200, &json!(true)), "{}", clean.text);
    assert_eq!(clean.body["currencies"][0]["entries_sum"], "0.00");
    assert_eq!(clean.body["currencies"][0]["user_money"], "10.00");

    // Plant what the guards refuse: with triggers off for this session (replica role), a third
    // entry on the transfer (on the funding account, whose balance then disagrees with it), and a
    // balance of bob's that no longer matches his entries.
    let mut database = app.database();
    let transfer_id = sent.body["id"].as_i64().unwrap();
    let mut account_where = |condition: &str| -> i64 {
        database.query_one(&format!("SELECT id FROM accounts WHERE {condition}"), &[]).unwrap().get(0)
    };
    let bob_account = account_where(&format!("owner_user_id = {}", bob.id));
    let funding_account = account_where("kind = 'funding' AND currency = 'USD'");
    database
        .batch_execute(&format!(
            "SET session_replication_role = replica;
             INSERT INTO ledger_entries (transfer_id, account_id, amount) VALUES ({transfer_id}, {funding_account}, 1);
             UPDATE accounts SET balance = balance + 2 WHERE id = {bob_account};"
        ))
        .unwrap();

    let dirty = app.audit(Some(app.admin_token()));
    assert_eq!(dirty.status, 200, "{}", dirty.text);
    assert_eq!(dirty.body["clean"], false, "{}", dirty.text);
    assert_eq!(dirty.body["malformed_transfers"], json!([transfer_id]), "{}", dirty.text);
    assert_eq!(dirty.body["currencies"][0]["entries_sum"], "1.00", "{}", dirty.text);
    let mismatches = dirty.body["balance_mismatches"].as_array().unwrap();
    let mismatch_of = |account: i64| {
        let mismatch = mismatches.iter().find(|mismatch| mismatch["account_id"] == account).expect("listed");
        (mismatch["balance"].as_str().unwrap(), mismatch["entries_sum"].as_str().unwrap())
    };
    assert_eq!(mismatches.len(), 2, "{}", dirty.text);
    assert_eq!(mismatch_of(bob_account), ("6.00", "4.00"));
    assert_eq!(mismatch_of(funding_account), ("-10.00", "-9.00"));
    assert!(app.logged("ledger audit found inconsistencies"), "logged at error level:\n{}", app.log());
}

/// A small deterministic generator: the storm is the same on every run.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) % bound as u64) as usize
    }
}

#[test]
fn the_page_size_limit_is_configurable() {
    let Some(app) = private_app(AppOptions::default().variable("max_page_size", "5")) else {
        return;
    };
    let user = app.new_user();
    let too_big = app.transactions(&user, "limit=6");
    assert_eq!((too_big.status, too_big.code()), (400, "invalid_limit"));
    assert_eq!(app.transactions(&user, "limit=5").status, 200);
    let rooms = app.rooms(&user, "limit=6");
    assert_eq!((rooms.status, rooms.code()), (400, "invalid_limit"));
}

/// Sends 8 transfers of `amount` from `sender` to `receiver` at once and asserts how many were
/// made and how many refused with `refusal` (422), nothing else.
fn assert_concurrent_transfers_made_and_refused(
    app: &TestApp,
    sender: &TestUser,
    receiver: &TestUser,
    amount: &str,
    made_and_refused: (usize, usize),
    refusal: &str,
) {
    let outcomes: Vec<(u16, String)> = std::thread::scope(|scope| {
        let transfers: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(move || {
                    let sent = app.transfer(sender, &json!({"receiver_id": receiver.id, "amount": amount}));
                    (sent.status, sent.code().to_owned())
                })
            })
            .collect();
        transfers.into_iter().map(|transfer| transfer.join().unwrap()).collect()
    });
    let made = outcomes.iter().filter(|(status, _)| *status == 201).count();
    let refused = outcomes.iter().filter(|(status, code)| (*status, code.as_str()) == (422, refusal)).count();
    assert_eq!((made, refused), made_and_refused, "{outcomes:?}");
}

/// A user's outgoing total per UTC day is capped (`daily_outgoing_max`), transfers and payments in
/// chat together, and concurrent transfers cannot pass the cap together: they queue on the
/// sender's account row, where the day's total is kept.
#[test]
fn concurrent_transfers_cannot_pass_the_daily_limit_together() {
    let Some((app, alice, bob)) = funded_pair_on_app_with("daily_outgoing_max", "10.00", "100") else {
        return;
    };
    assert_concurrent_transfers_made_and_refused(&app, &alice, &bob, "2.00", (5, 3), "daily_limit_exceeded");
    assert_eq!(app.balance(&alice), "90.00");

    // Payments in chat spend the same day's budget; receiving money does not.
    let room = app.create_room(&alice, &json!({"name": "limits", "member_ids": [bob.id]}));
    let room = room.body["id"].as_i64().unwrap();
    let in_chat = app.pay_in_room(&alice, room, &json!({"receiver_id": bob.id, "amount": "0.01"}));
    assert_eq!((in_chat.status, in_chat.code()), (422, "daily_limit_exceeded"), "{}", in_chat.text);
    let back = app.pay_in_room(&bob, room, &json!({"receiver_id": alice.id, "amount": "10.00"}));
    assert_eq!(back.status, 201, "{}", back.text);
    assert_eq!(app.balance(&alice), "100.00");
    assert_ledger_invariants(&mut app.database());
}

/// Row locks queue by account, not by time: a transfer whose transaction began before midnight
/// (UTC) can reach its sender's row after one that began after it, and then counts toward that
/// later day, so no day's limits are had twice. The row is set as such a later transfer leaves
/// it (the day after today, its limit nearly used); every transfer made now then reaches it late.
#[test]
fn a_transfer_reaching_its_sender_after_midnight_counts_toward_the_new_day() {
    let Some((app, alice, bob)) = funded_pair_on_app_with("daily_outgoing_max", "10.00", "100") else {
        return;
    };
    let mut database = app.database();
    let tomorrow = "(now() AT TIME ZONE 'UTC')::date + 1";
    let set = database
        .execute(
            &format!(
                "UPDATE accounts SET outgoing_day = {tomorrow}, outgoing_day_total = 9.00, \
                 outgoing_day_transfers = 1 WHERE owner_user_id = $1"
            ),
            &[&alice.id],
        )
        .unwrap();
    assert_eq!(set, 1);
    let over = app.transfer(&alice, &json!({"receiver_id": bob.id, "amount": "2.00"}));
    assert_eq!((over.status, over.code()), (422, "daily_limit_exceeded"), "{}", over.text);
    let fits = app.transfer(&alice, &json!({"receiver_id": bob.id, "amount": "1.00"}));
    assert_eq!(fits.status, 201, "{}", fits.text);
    let row = database
        .query_one(
            &format!(
                "SELECT outgoing_day = {tomorrow}, outgoing_day_total::text, outgoing_day_transfers \
                 FROM accounts WHERE owner_user_id = $1"
            ),
            &[&alice.id],
        )
        .unwrap();
    let (on_later_day, total, count): (bool, String, i32) = (row.get(0), row.get(1), row.get(2));
    assert_eq!((on_later_day, total.as_str(), count), (true, "10.00", 2), "the day on the row never goes back");
    assert_ledger_invariants(&mut database);
}

/// A user's number of outgoing transfers per UTC day is capped (`daily_outgoing_transfers_max`),
/// transfers, payments in chat and refunds together, and concurrent transfers cannot pass the cap
/// together. Receiving is not counted.
#[test]
fn concurrent_transfers_cannot_pass_the_daily_count_together() {
    let Some((app, alice, bob)) = funded_pair_on_app_with("daily_outgoing_transfers_max", "3", "100") else {
        return;
    };
    assert_concurrent_transfers_made_and_refused(&app, &alice, &bob, "1.00", (3, 5), "daily_transfers_exceeded");
    assert_eq!(app.balance(&alice), "97.00");

    let room = app.create_room(&alice, &json!({"name": "counts", "member_ids": [bob.id]}));
    let room = room.body["id"].as_i64().unwrap();
    let in_chat = app.pay_in_room(&alice, room, &json!({"receiver_id": bob.id, "amount": "0.01"}));
    assert_eq!((in_chat.status, in_chat.code()), (422, "daily_transfers_exceeded"), "{}", in_chat.text);
    let received = app.pay_in_room(&bob, room, &json!({"receiver_id": alice.id, "amount": "2.00"}));
    assert_eq!(received.status, 201, "receiving is not counted: {}", received.text);
    let payment = received.body["transfer"]["id"].as_i64().unwrap();
    let refunded = app.refund(&alice, payment, &json!({"amount": "0.01"}));
    assert_eq!((refunded.status, refunded.code()), (422, "daily_transfers_exceeded"), "{}", refunded.text);
    assert_eq!(app.balance(&alice), "99.00");
    assert_ledger_invariants(&mut app.database());
}
