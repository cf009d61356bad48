-- Re-applied by sendinchat-migrate on every run, after the migrations (see migrate/src/lib.rs).

-- GET /fintech/audit (operator only): the checks a ledger operator runs daily, in one statement
-- so they read one consistent snapshot of the books.
--
-- - per currency: the sum of all entries (must be 0: every transfer moves money, none creates
--   it) and the money held by users;
-- - user accounts below zero (must be none);
-- - transfers without exactly two entries, or whose entries do not sum to zero (none);
-- - accounts whose cached balance differs from the sum of their entries (listed, at most
--   p_listed_max of each list).
--
-- Cost: two aggregations over ledger_entries (by account and by transfer) and one pass over
-- accounts; linear in the entries, with no index needed since every row is read anyway. The
-- README gives the time on a million transfers.
CREATE FUNCTION fintech_audit(p_listed_max integer) RETURNS text
LANGUAGE sql STABLE
BEGIN ATOMIC
    WITH account_totals AS (
        SELECT a.id, a.kind, a.currency, a.balance, coalesce(s.entries_sum, 0) AS entries_sum
        FROM accounts a
        LEFT JOIN (SELECT account_id, sum(amount) AS entries_sum FROM ledger_entries GROUP BY account_id) s
            ON s.account_id = a.id
    ),
    per_currency AS (
        SELECT t.currency,
               round(sum(t.entries_sum), c.minor_units) AS entries_sum,
               round(coalesce(sum(t.balance) FILTER (WHERE t.kind = 'user'), 0), c.minor_units) AS user_money
        FROM account_totals t
        JOIN currencies c ON c.code = t.currency
        GROUP BY t.currency, c.minor_units
    ),
    malformed AS (
        SELECT t.id
        FROM transfers t
        LEFT JOIN (SELECT transfer_id, count(*) AS entries, sum(amount) AS total FROM ledger_entries GROUP BY transfer_id) e
            ON e.transfer_id = t.id
        WHERE e.entries IS DISTINCT FROM 2 OR e.total <> 0
        ORDER BY t.id
        LIMIT p_listed_max
    ),
    negative AS (
        SELECT id FROM account_totals WHERE kind = 'user' AND balance < 0 ORDER BY id LIMIT p_listed_max
    ),
    mismatched AS (
        SELECT id, balance, entries_sum FROM account_totals WHERE balance <> entries_sum ORDER BY id LIMIT p_listed_max
    )
    SELECT json_build_object(
        'clean', NOT EXISTS (SELECT FROM per_currency WHERE entries_sum <> 0)
            AND NOT EXISTS (SELECT FROM malformed)
            AND NOT EXISTS (SELECT FROM negative)
            AND NOT EXISTS (SELECT FROM mismatched),
        'currencies', coalesce((SELECT json_agg(json_build_object(
                'currency', currency, 'entries_sum', entries_sum::text, 'user_money', user_money::text)
                ORDER BY currency) FROM per_currency), '[]'),
        'negative_accounts', coalesce((SELECT json_agg(id ORDER BY id) FROM negative), '[]'),
        'malformed_transfers', coalesce((SELECT json_agg(id ORDER BY id) FROM malformed), '[]'),
        'balance_mismatches', coalesce((SELECT json_agg(json_build_object(
                'account_id', id, 'balance', balance::text, 'entries_sum', entries_sum::text) ORDER BY id)
                FROM mismatched), '[]')
    )::text;
END;
