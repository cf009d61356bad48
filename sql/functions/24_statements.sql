-- GET /fintech/statement (issue 18): one account's lines between p_from (inclusive) and p_to
-- (exclusive), oldest first, each with the balance after it. The first row is the opening balance
-- (kind 'opening_balance': the balance at p_from, with no amount); the closing balance is the last
-- row's balance. No row at all: the currency is not one the ledger holds. A user without an account
-- in the currency gets the opening row alone, at zero.
--
-- A line belongs to the statement by its transfer's created_at, and lines are ordered by
-- (created_at, id): immutable, so the same period always gives the same statement. created_at is
-- the transaction's start, so two transfers of one account running at the same moment may be
-- listed in the other order than the one their balances moved in; every running balance is still
-- the opening balance plus the lines above it, and the closing balance is the account's balance at
-- p_to.
--
-- One statement, so one snapshot: the opening balance (the account's balance now, less what moved
-- since p_from) and the lines agree with each other and with the ledger. An inlinable SQL function
-- (one SELECT, STABLE, no SET clause), so it runs as the caller's query and its rows reach the
-- component as they are produced rather than through a function's result store. The two account
-- indexes give each side in order; Postgres may still sort their union (within work_mem, spilling
-- to disk beyond it), so the server's memory stays bounded too.
CREATE FUNCTION fintech_statement(p_user_id bigint, p_currency char(3), p_from timestamptz, p_to timestamptz)
RETURNS TABLE (kind text, transfer_id bigint, created_at text, counterparty_id bigint, counterparty_username text,
               refund_of bigint, note text, amount text, balance text)
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT line.kind, line.id, api_timestamp(line.created_at), line.counterparty_id,
           (SELECT u.username FROM users u WHERE u.id = line.counterparty_id), line.refund_of, line.note,
           round(line.amount, (SELECT c.minor_units FROM currencies c WHERE c.code = p_currency))::text,
           round(sum(coalesce(line.amount, line.opening)) OVER (ORDER BY line.section, line.created_at, line.id
                                                                ROWS UNBOUNDED PRECEDING),
                 (SELECT c.minor_units FROM currencies c WHERE c.code = p_currency))::text
    FROM (
        SELECT 0 AS section, 'opening_balance' AS kind, NULL::bigint AS id, p_from AS created_at,
               NULL::bigint AS counterparty_id, NULL::bigint AS refund_of, NULL::text AS note,
               NULL::numeric AS amount,
               coalesce((SELECT a.balance
                             - coalesce((SELECT sum(t.amount) FROM transfers t
                                         WHERE t.receiver_account_id = a.id AND t.created_at >= p_from), 0)
                             + coalesce((SELECT sum(t.amount) FROM transfers t
                                         WHERE t.sender_account_id = a.id AND t.created_at >= p_from), 0)
                         FROM accounts a WHERE a.owner_user_id = p_user_id AND a.currency = p_currency), 0) AS opening
        WHERE EXISTS (SELECT FROM currencies c WHERE c.code = p_currency)
        UNION ALL
        SELECT 1, t.kind, t.id, t.created_at, t.receiver_user_id, t.refund_of, t.note, -t.amount, NULL
        FROM transfers t
        WHERE t.sender_account_id = (SELECT a.id FROM accounts a WHERE a.owner_user_id = p_user_id AND a.currency = p_currency)
          AND t.created_at >= p_from AND t.created_at < p_to
        UNION ALL
        SELECT 1, t.kind, t.id, t.created_at, t.sender_user_id, t.refund_of, t.note, t.amount, NULL
        FROM transfers t
        WHERE t.receiver_account_id = (SELECT a.id FROM accounts a WHERE a.owner_user_id = p_user_id AND a.currency = p_currency)
          AND t.created_at >= p_from AND t.created_at < p_to
    ) line
    ORDER BY line.section, line.created_at, line.id;
END;
