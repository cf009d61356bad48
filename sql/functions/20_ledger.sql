-- The ledger's operations, as SQL functions so each API call costs one database round trip and
-- every transfer runs inside one statement's transaction: nothing is left half-written and no
-- transaction is ever left open on a pooled connection.
--
-- Functions return an `outcome` word instead of raising for business failures
-- ('insufficient_funds', 'receiver_not_found', ...): the component maps outcomes to HTTP
-- statuses in one place, and an Idempotency-Key stores failures as faithfully as successes.
--
-- Deadlocks are avoided, not retried: a transfer claims its idempotency key first, then locks its
-- two accounts in ascending id order.

-- The API representation of a transfer. Amounts are strings: JSON numbers are binary floats in
-- most clients, and money must survive the round trip exactly.
CREATE FUNCTION transfer_json(t transfers) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE
RETURN json_build_object(
    'id', t.id,
    'kind', t.kind,
    'sender_id', t.sender_user_id,
    'receiver_id', t.receiver_user_id,
    'amount', t.amount::text,
    'currency', t.currency,
    'status', t.status,
    'note', t.note,
    'created_at', api_timestamp(t.created_at)
);

-- The resource a ledger operation produced: the transfer's JSON text, or NULL when it failed.
CREATE FUNCTION completed_transfer_json(p_outcome text, p_posted transfers) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE WHEN p_outcome = 'completed' THEN transfer_json(p_posted)::text END;

-- Claims an idempotency key for the current transaction. Returns no row when the caller should go
-- ahead (no key given, or the key is new); otherwise one row with the stored outcome, or
-- 'idempotency_mismatch' when the key was used for a different request. A concurrent duplicate
-- waits here until the first request commits.
CREATE FUNCTION idempotency_claim(p_scope text, p_key text, p_fingerprint bytea)
RETURNS TABLE (outcome text, resource text)
LANGUAGE plpgsql AS $$
DECLARE
    stored idempotency_keys;
BEGIN
    IF p_key IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO idempotency_keys (scope, key, request_fingerprint, outcome)
    VALUES (p_scope, p_key, p_fingerprint, 'in_progress')
    ON CONFLICT DO NOTHING;
    IF FOUND THEN
        RETURN;
    END IF;
    SELECT * INTO STRICT stored FROM idempotency_keys WHERE scope = p_scope AND key = p_key;
    IF stored.request_fingerprint <> p_fingerprint THEN
        RETURN QUERY SELECT 'idempotency_mismatch'::text, NULL::text;
    ELSE
        RETURN QUERY SELECT stored.outcome, stored.resource;
    END IF;
END;
$$;

-- Records the outcome of a request whose key idempotency_claim granted (no-op without a key).
CREATE FUNCTION idempotency_record(p_scope text, p_key text, p_outcome text, p_resource text)
RETURNS void
LANGUAGE sql
BEGIN ATOMIC
    UPDATE idempotency_keys SET outcome = p_outcome, resource = p_resource
    WHERE scope = p_scope AND key = p_key;
END;

-- The fingerprint of a request: operation name and normalised parameters, so "10.5" and "10.50"
-- or reordered JSON fields are the same request.
CREATE FUNCTION request_fingerprint(VARIADIC parts text[]) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN sha256(convert_to(array_to_string(parts, E'\x1f', E'\x1e'), 'UTF8'));

-- A user's account in a currency. The default currency's account opens on first use; an account
-- in any other currency exists only once a deposit in it has been made, so NULL means "this user
-- cannot hold that currency".
CREATE FUNCTION ledger_user_account(p_user_id bigint, p_currency char(3), p_default_currency char(3))
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    account_id bigint;
BEGIN
    SELECT id INTO account_id FROM accounts
    WHERE owner_user_id = p_user_id AND currency = p_currency;
    IF FOUND OR p_currency <> p_default_currency THEN
        RETURN account_id;
    END IF;
    INSERT INTO accounts (kind, owner_user_id, currency) VALUES ('user', p_user_id, p_currency)
    ON CONFLICT DO NOTHING;
    SELECT id INTO STRICT account_id FROM accounts
    WHERE owner_user_id = p_user_id AND currency = p_currency;
    RETURN account_id;
END;
$$;

-- Moves p_amount (already validated and scaled to its currency) between two accounts: locks both
-- in id order, debits the sender unless that would take a user account below zero, credits the
-- receiver, and writes the transfer with its two entries. Outcome 'completed' (with the transfer)
-- or 'insufficient_funds'.
CREATE FUNCTION ledger_post(
    p_kind text, p_sender_account bigint, p_receiver_account bigint, p_amount numeric,
    p_note text, p_idempotency_key text, p_fingerprint bytea,
    OUT outcome text, OUT posted transfers)
LANGUAGE plpgsql AS $$
DECLARE
    sender accounts;
    receiver accounts;
BEGIN
    PERFORM 1 FROM accounts WHERE id IN (p_sender_account, p_receiver_account)
    ORDER BY id FOR UPDATE;
    UPDATE accounts SET balance = balance - p_amount
    WHERE id = p_sender_account AND (kind = 'funding' OR balance >= p_amount)
    RETURNING * INTO sender;
    IF NOT FOUND THEN
        outcome := 'insufficient_funds';
        RETURN;
    END IF;
    UPDATE accounts SET balance = balance + p_amount WHERE id = p_receiver_account
    RETURNING * INTO receiver;
    INSERT INTO transfers (kind, sender_account_id, receiver_account_id, sender_user_id,
                           receiver_user_id, amount, currency, note, idempotency_key,
                           request_fingerprint)
    VALUES (p_kind, sender.id, receiver.id, sender.owner_user_id, receiver.owner_user_id,
            p_amount, sender.currency, p_note, p_idempotency_key, p_fingerprint)
    RETURNING * INTO posted;
    INSERT INTO ledger_entries (transfer_id, account_id, amount)
    VALUES (posted.id, sender.id, -p_amount), (posted.id, receiver.id, p_amount);
    outcome := 'completed';
END;
$$;

-- Scales an amount to its currency: NULL when the currency is unknown or the amount has more
-- decimal places than the currency has minor units.
CREATE FUNCTION ledger_scaled_amount(p_amount numeric, p_currency char(3)) RETURNS numeric
LANGUAGE sql STABLE PARALLEL SAFE
RETURN (SELECT round(p_amount, minor_units) FROM currencies
        WHERE code = p_currency AND round(p_amount, minor_units) = p_amount);

-- The rules of a payment between two users, shared by /fintech/transfer and payments in chat.
-- Outcomes: 'completed', 'self_transfer', 'receiver_not_found', 'unsupported_currency',
-- 'invalid_amount_precision', 'currency_mismatch', 'insufficient_funds'.
CREATE FUNCTION ledger_pay(
    p_sender_user_id bigint, p_receiver_user_id bigint, p_amount numeric, p_currency char(3),
    p_note text, p_default_currency char(3), p_idempotency_key text, p_fingerprint bytea,
    OUT outcome text, OUT posted transfers)
LANGUAGE plpgsql AS $$
DECLARE
    amount numeric;
    sender_account bigint;
    receiver_account bigint;
    result record;
BEGIN
    IF p_sender_user_id = p_receiver_user_id THEN
        outcome := 'self_transfer';
    ELSIF NOT EXISTS (SELECT 1 FROM users WHERE id = p_receiver_user_id) THEN
        outcome := 'receiver_not_found';
    ELSIF NOT EXISTS (SELECT 1 FROM currencies WHERE code = p_currency) THEN
        outcome := 'unsupported_currency';
    ELSE
        amount := ledger_scaled_amount(p_amount, p_currency);
        sender_account := ledger_user_account(p_sender_user_id, p_currency, p_default_currency);
        receiver_account := ledger_user_account(p_receiver_user_id, p_currency, p_default_currency);
        IF amount IS NULL THEN
            outcome := 'invalid_amount_precision';
        ELSIF sender_account IS NULL OR receiver_account IS NULL THEN
            outcome := 'currency_mismatch';
        ELSE
            SELECT * INTO result FROM ledger_post(
                'payment', sender_account, receiver_account, amount, p_note,
                p_idempotency_key, p_fingerprint);
            outcome := result.outcome;
            posted := result.posted;
        END IF;
    END IF;
END;
$$;

-- POST /fintech/transfer. The receiver is given by id or by username (exactly one non-NULL).
-- Returns the outcome, the transfer's JSON when one exists, and whether this is a replay of an
-- earlier request with the same Idempotency-Key.
CREATE FUNCTION fintech_transfer(
    p_sender_user_id bigint, p_receiver_user_id bigint, p_receiver_username text,
    p_amount numeric, p_currency char(3), p_note text, p_default_currency char(3),
    p_idempotency_key text)
RETURNS TABLE (outcome text, resource text, replayed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    scope text := 'user:' || p_sender_user_id;
    receiver_id bigint := p_receiver_user_id;
    fingerprint bytea := request_fingerprint('fintech_transfer', p_receiver_user_id::text,
        p_receiver_username, trim_scale(p_amount)::text, p_currency, p_note);
    result record;
BEGIN
    SELECT * INTO result FROM idempotency_claim(scope, p_idempotency_key, fingerprint);
    IF FOUND THEN
        RETURN QUERY SELECT result.outcome, result.resource, true;
        RETURN;
    END IF;
    IF receiver_id IS NULL THEN
        SELECT id INTO receiver_id FROM users WHERE username = p_receiver_username;
    END IF;
    SELECT * INTO result FROM ledger_pay(p_sender_user_id, coalesce(receiver_id, 0), p_amount,
        p_currency, p_note, p_default_currency, p_idempotency_key, fingerprint);
    outcome := result.outcome;
    resource := completed_transfer_json(outcome, result.posted);
    replayed := false;
    PERFORM idempotency_record(scope, p_idempotency_key, outcome, resource);
    RETURN NEXT;
END;
$$;

-- POST /fintech/deposits (operator only): money enters from the currency's funding account.
-- Outcomes: 'completed', 'receiver_not_found', 'unsupported_currency', 'invalid_amount_precision'.
CREATE FUNCTION fintech_deposit(
    p_user_id bigint, p_amount numeric, p_currency char(3), p_note text,
    p_idempotency_key text)
RETURNS TABLE (outcome text, resource text, replayed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    fingerprint bytea := request_fingerprint('fintech_deposit', p_user_id::text,
        trim_scale(p_amount)::text, p_currency, p_note);
    amount numeric := ledger_scaled_amount(p_amount, p_currency);
    funding_account bigint;
    user_account bigint;
    result record;
BEGIN
    SELECT * INTO result FROM idempotency_claim('operator', p_idempotency_key, fingerprint);
    IF FOUND THEN
        RETURN QUERY SELECT result.outcome, result.resource, true;
        RETURN;
    END IF;
    replayed := false;
    IF NOT EXISTS (SELECT 1 FROM users WHERE id = p_user_id) THEN
        outcome := 'receiver_not_found';
    ELSIF NOT EXISTS (SELECT 1 FROM currencies WHERE code = p_currency) THEN
        outcome := 'unsupported_currency';
    ELSIF amount IS NULL THEN
        outcome := 'invalid_amount_precision';
    ELSE
        INSERT INTO accounts (kind, currency) VALUES ('funding', p_currency) ON CONFLICT DO NOTHING;
        SELECT id INTO STRICT funding_account FROM accounts
        WHERE kind = 'funding' AND currency = p_currency;
        INSERT INTO accounts (kind, owner_user_id, currency) VALUES ('user', p_user_id, p_currency)
        ON CONFLICT DO NOTHING;
        SELECT id INTO STRICT user_account FROM accounts
        WHERE owner_user_id = p_user_id AND currency = p_currency;
        SELECT * INTO result FROM ledger_post('deposit', funding_account, user_account, amount,
            p_note, p_idempotency_key, fingerprint);
        outcome := result.outcome;
        resource := completed_transfer_json(outcome, result.posted);
    END IF;
    PERFORM idempotency_record('operator', p_idempotency_key, outcome, resource);
    RETURN NEXT;
END;
$$;

-- GET /fintech/balance: every account of the user, the default currency always included. Rounding
-- to the currency's minor units renders an untouched account as "0.00", like every other amount.
CREATE FUNCTION fintech_balances(p_user_id bigint, p_default_currency char(3)) RETURNS text
LANGUAGE sql STABLE
RETURN (
    SELECT json_build_object('balances', json_agg(
        json_build_object('currency', c.code, 'balance', round(coalesce(a.balance, 0), c.minor_units)::text)
        ORDER BY c.code <> p_default_currency, c.code))::text
    FROM currencies c
    LEFT JOIN accounts a ON a.currency = c.code AND a.owner_user_id = p_user_id
    WHERE a.id IS NOT NULL OR c.code = p_default_currency
);

-- GET /fintech/transactions[/sent|/received]: newest first, keyset-paginated by id so a page is
-- stable while new transfers arrive. p_direction: 'all', 'sent' or 'received'.
CREATE FUNCTION fintech_history(p_user_id bigint, p_direction text, p_before bigint, p_limit integer)
RETURNS text
LANGUAGE sql STABLE
RETURN (
    WITH page AS (
        SELECT t.* FROM transfers t
        WHERE ((p_direction IN ('all', 'sent') AND t.sender_user_id = p_user_id)
            OR (p_direction IN ('all', 'received') AND t.receiver_user_id = p_user_id))
          AND (p_before IS NULL OR t.id < p_before)
        ORDER BY t.id DESC
        LIMIT p_limit + 1
    ), shown AS (
        SELECT * FROM page ORDER BY id DESC LIMIT p_limit
    )
    SELECT json_build_object(
        'items', coalesce((SELECT json_agg(transfer_json(shown) ORDER BY shown.id DESC) FROM shown), '[]'),
        'next_before', CASE WHEN (SELECT count(*) FROM page) > p_limit
                            THEN (SELECT min(id) FROM shown) END)::text
);

-- GET /fintech/transactions/{id}: NULL unless the user sent or received it.
CREATE FUNCTION fintech_transaction(p_user_id bigint, p_transfer_id bigint) RETURNS text
LANGUAGE sql STABLE
RETURN (
    SELECT transfer_json(t)::text FROM transfers t
    WHERE t.id = p_transfer_id AND p_user_id IN (t.sender_user_id, t.receiver_user_id)
);
