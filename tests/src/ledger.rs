//! The ledger's invariants, checked in the app's database after a test has moved money.

/// Asserts, for the whole database: user balances sum to what was deposited (per currency); no
/// user account is negative; every transfer has exactly one debit and one credit that sum to
/// zero; every account's balance equals the sum of its entries.
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
             WHERE a.balance <> (SELECT coalesce(sum(e.amount), 0) FROM ledger_entries e WHERE e.account_id = a.id)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(drifted_balances, 0, "an account's balance differs from the sum of its entries");
}
