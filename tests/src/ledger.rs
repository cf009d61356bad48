//! The ledger's invariants, checked in the app's database after a test has moved money.

/// Asserts, for the whole database: user balances sum to what was deposited (per currency); no
/// user account is negative; every transfer has exactly one debit and one credit that sum to
/// zero; every account's balance equals the sum of its entries; every payment's refunds sum to its
/// recorded refund total and stay within its amount.
pub fn assert_ledger_invariants(database: &mut postgres::Client) {
    let unbalanced_books: i64 = database
        .query_one(
            "SELECT count(*) FROM (
                SELECT a.currency,
                       sum(a.balance) FILTER (WHERE a.kind = 'user') AS held,
                       (SELECT coalesce(sum(t.amount), 0) FROM transfers t
                        WHERE t.kind = 'deposit' AND t.currency = a.currency) AS deposited,
                       sum(a.balance) AS net
                FROM accounts a GROUP BY a.currency
            ) books WHERE held <> deposited OR net <> 0",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(unbalanced_books, 0, "money held differs from money deposited");

    let negative: i64 =
        database.query_one("SELECT count(*) FROM accounts WHERE kind = 'user' AND balance < 0", &[]).unwrap().get(0);
    assert_eq!(negative, 0, "a user account is negative");

    let malformed_transfers: i64 = database
        .query_one(
            "SELECT count(*) FROM transfers t WHERE (
                SELECT count(*) <> 2 OR sum(e.amount) <> 0 OR min(e.amount) <> -t.amount OR max(e.amount) <> t.amount
                FROM ledger_entries e WHERE e.transfer_id = t.id)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(malformed_transfers, 0, "a transfer's entries are not one debit and one credit summing to zero");

    let drifted_balances: i64 = database
        .query_one(
            "SELECT count(*) FROM accounts a
             LEFT JOIN (SELECT account_id, sum(amount) AS total FROM ledger_entries GROUP BY account_id) e
                 ON e.account_id = a.id
             WHERE a.balance <> coalesce(e.total, 0)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(drifted_balances, 0, "an account's balance differs from the sum of its entries");

    // Refunds (sql/0008_refunds.sql): each payment's recorded refund total is the sum of the
    // refunds naming it, never more than the payment, and only payments are refunded.
    let misrefunded: i64 = database
        .query_one(
            "SELECT count(*) FROM transfers p
             LEFT JOIN refund_totals r ON r.transfer_id = p.id
             LEFT JOIN (SELECT refund_of, sum(amount) AS refunded FROM transfers
                        WHERE refund_of IS NOT NULL GROUP BY refund_of) s ON s.refund_of = p.id
             WHERE coalesce(r.refunded, 0) <> coalesce(s.refunded, 0)
                OR coalesce(s.refunded, 0) > p.amount
                OR (s.refunded IS NOT NULL AND p.kind <> 'payment')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        misrefunded, 0,
        "a payment's refunds differ from its refund total, pass its amount, or refund no payment"
    );
}

/// Asserts that Postgres itself refuses each way of breaking the ledger, tried as direct SQL
/// (not through the API), each refused by the guard meant for it (a constraint name, or the
/// SQLSTATE where the guard is a trigger without one). `keyed_transfer_id` is a payment made
/// under an Idempotency-Key. Nothing is left behind: each attempt is one statement, and touches
/// only that payment's rows, so a guard that failed could not spoil other tests' data.
pub fn assert_postgres_refuses_ledger_violations(database: &mut postgres::Client, keyed_transfer_id: i64) {
    let senders_account = format!("id = (SELECT sender_account_id FROM transfers WHERE id = {keyed_transfer_id})");
    // A copy of the keyed transfer without its key, with the given entries, in one statement.
    let with_entries = |entries: &str| {
        format!(
            "WITH t AS (
                INSERT INTO transfers (kind, sender_account_id, receiver_account_id, sender_user_id,
                                       receiver_user_id, amount, currency)
                SELECT kind, sender_account_id, receiver_account_id, sender_user_id, receiver_user_id, amount, currency
                FROM transfers WHERE id = {keyed_transfer_id}
                RETURNING *)
             INSERT INTO ledger_entries (transfer_id, account_id, amount)
             SELECT t.id, e.account_id, e.amount FROM t, LATERAL ({entries}) e (account_id, amount)"
        )
    };
    let refusals = [
        ("rewrite history", format!("UPDATE transfers SET amount = amount + 1 WHERE id = {keyed_transfer_id}"), "23001"),
        ("delete history", format!("DELETE FROM ledger_entries WHERE transfer_id = {keyed_transfer_id}"), "23001"),
        ("overdraw", format!("UPDATE accounts SET balance = -1 WHERE {senders_account}"), "accounts_balance_non_negative"),
        (
            "a lone entry",
            format!(
                "INSERT INTO ledger_entries (transfer_id, account_id, amount)
                 SELECT t.id, a.id, 5 FROM transfers t JOIN accounts a ON a.kind = 'funding' AND a.currency = t.currency
                 WHERE t.id = {keyed_transfer_id}"
            ),
            "ledger_entries_balanced",
        ),
        (
            "an unbalanced pair",
            with_entries("VALUES (t.sender_account_id, -t.amount), (t.receiver_account_id, t.amount + 1)"),
            "ledger_entries_balanced",
        ),
        (
            "a balanced pair on the wrong accounts",
            with_entries(
                "SELECT t.sender_account_id, -t.amount UNION ALL
                 SELECT a.id, t.amount FROM accounts a WHERE a.kind = 'funding' AND a.currency = t.currency",
            ),
            "ledger_entries_balanced",
        ),
        (
            "the debit only",
            with_entries("VALUES (t.sender_account_id, -t.amount)"),
            "ledger_entries_balanced",
        ),
        (
            "a transfer's entries written twice",
            format!(
                "INSERT INTO ledger_entries (transfer_id, account_id, amount)
                 SELECT transfer_id, account_id, amount FROM ledger_entries WHERE transfer_id = {keyed_transfer_id}"
            ),
            "ledger_entries_transfer_account_key",
        ),
        (
            "a second transfer under one idempotency key",
            format!(
                "INSERT INTO transfers (kind, sender_account_id, receiver_account_id, sender_user_id, receiver_user_id,
                                        amount, currency, idempotency_scope, idempotency_key, request_fingerprint)
                 SELECT kind, sender_account_id, receiver_account_id, sender_user_id, receiver_user_id, amount + 1,
                        currency, idempotency_scope, idempotency_key, request_fingerprint
                 FROM transfers WHERE id = {keyed_transfer_id}"
            ),
            "transfers_idempotency_key",
        ),
        (
            "a transfer naming another owner than its account's",
            format!(
                "INSERT INTO transfers (kind, sender_account_id, receiver_account_id, sender_user_id, receiver_user_id,
                                        amount, currency)
                 SELECT kind, sender_account_id, receiver_account_id, receiver_user_id, receiver_user_id, amount, currency
                 FROM transfers WHERE id = {keyed_transfer_id}"
            ),
            "transfers_sender_owner_fkey",
        ),
    ];
    // Single-column rules are domains (sql/0011_cheaper_ledger_checks.sql), named as the table
    // constraints they replaced.
    let domain_refusals = [
        (
            "a transfer of nothing",
            format!(
                "INSERT INTO transfers (kind, sender_account_id, receiver_account_id, sender_user_id, receiver_user_id,
                                        amount, currency)
                 SELECT kind, sender_account_id, receiver_account_id, sender_user_id, receiver_user_id, 0, currency
                 FROM transfers WHERE id = {keyed_transfer_id}"
            ),
            "transfers_amount_positive",
        ),
        (
            "an entry of nothing",
            format!(
                "INSERT INTO ledger_entries (transfer_id, account_id, amount)
                 SELECT id, sender_account_id, 0 FROM transfers WHERE id = {keyed_transfer_id}"
            ),
            "ledger_entries_amount_nonzero",
        ),
        (
            "a negative outgoing total",
            format!("UPDATE accounts SET outgoing_day_total = -1 WHERE {senders_account}"),
            "accounts_outgoing_day_total_non_negative",
        ),
        (
            "a negative count of transfers",
            format!("UPDATE accounts SET outgoing_day_transfers = -1 WHERE {senders_account}"),
            "accounts_outgoing_day_transfers_non_negative",
        ),
    ];
    for (what, statement, guard) in refusals.into_iter().chain(domain_refusals) {
        let error = database.batch_execute(&statement).expect_err(&format!("{what} was allowed"));
        let db_error = error.as_db_error().unwrap_or_else(|| panic!("{what}: {error}"));
        let refused_by = db_error.constraint().unwrap_or(db_error.code().code());
        assert_eq!(refused_by, guard, "{what} was refused for another reason: {}", db_error.message());
    }
}
