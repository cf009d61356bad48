-- The ledger's operations, as SQL functions so each API call costs one database round trip and
-- every transfer runs inside one statement's transaction: nothing is left half-written and no
-- transaction is ever left open on a pooled connection.
--
-- Functions return an `outcome` word instead of raising for business failures
-- ('insufficient_funds', 'receiver_not_found', ...): the component maps outcomes to HTTP
-- statuses in one place, and an Idempotency-Key stores failures as faithfully as successes.
--
-- Deadlocks are avoided, not retried: accounts open in one statement in user id order, and a
-- transfer locks its two accounts in ascending id order before it writes anything else.

-- The API representation of a transfer, given what has been refunded of it (NULL: nothing).
-- Amounts are strings: JSON numbers are binary floats in most clients, and money must survive the
-- round trip exactly. One expression without a sub-select, so Postgres inlines it into the caller:
-- a function that is not inlined has its body parsed and planned again in every transaction that
-- calls it, which was a fifth of a transfer's cost.
CREATE FUNCTION transfer_json(t transfers, refunded numeric) RETURNS json
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
    'created_at', api_timestamp(t.created_at),
    'refund_of', t.refund_of,
    -- Zero at the amount's scale ("0.00") when nothing was refunded (sql/0008_refunds.sql).
    'refunded_amount', coalesce(refunded, t.amount - t.amount)::text
);

-- The API representation of a stored transfer, with what its refunds total.
CREATE FUNCTION transfer_json(t transfers) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE
RETURN transfer_json(t, (SELECT r.refunded FROM refund_totals r WHERE r.transfer_id = t.id));

-- The fingerprint of a request: operation name and normalised parameters, so "10.5" and "10.50"
-- or reordered JSON fields are the same request.
-- STABLE, as array_to_string and convert_to are: a function declared more constant than its body
-- is never inlined, and runs through the SQL-function executor on every call.
CREATE FUNCTION request_fingerprint(VARIADIC parts text[]) RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE
RETURN sha256(convert_to(array_to_string(parts, E'\x1f', E'\x1e'), 'UTF8'));

-- The stored answer to an earlier request with this Idempotency-Key, if there was one: the outcome
-- recorded in idempotency_keys, else a transfer made under the key (ledger_post writes it on the
-- row; a chat payment has both, and its answer is the recorded message). A different fingerprint
-- answers 'idempotency_mismatch'. No row when the key is new.
-- A transfer is replayed as it was first answered, byte for byte: with nothing refunded, as when
-- it was made (its other fields never change). What has been refunded since is the transfer's
-- own resource (GET /fintech/transactions/{id}), not the answer to this request.
-- Two outer joins from one row rather than a sorted union: the same two index probes, with half
-- the plan to set up on every call.
CREATE FUNCTION idempotency_replay(p_scope text, p_key text, p_fingerprint bytea)
RETURNS TABLE (outcome text, resource text)
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT CASE WHEN stored.fingerprint = p_fingerprint THEN stored.outcome ELSE 'idempotency_mismatch' END,
           CASE WHEN stored.fingerprint = p_fingerprint THEN stored.resource END
    FROM (
        SELECT coalesce(k.request_fingerprint, t.request_fingerprint) AS fingerprint,
               CASE WHEN k.key IS NOT NULL THEN k.outcome ELSE 'completed' END AS outcome,
               CASE WHEN k.key IS NOT NULL THEN k.resource ELSE transfer_json(t, NULL)::text END AS resource
        FROM (VALUES (1)) one
        LEFT JOIN idempotency_keys k ON k.scope = p_scope AND k.key = p_key
        LEFT JOIN transfers t ON t.idempotency_scope = p_scope AND t.idempotency_key = p_key
        WHERE k.key IS NOT NULL OR t.id IS NOT NULL
    ) stored;
END;

-- Serialises the requests that share an Idempotency-Key, until the transaction ends. Every keyed
-- operation takes it first, before any row lock: a retry sent while the first request still runs
-- then waits for its answer instead of racing it. Without it, a refusal stored in idempotency_keys
-- and a transfer posted under the same key by a concurrent retry could both exist (the first
-- refused for lack of funds, the retry paid after a deposit landed), answering one key two ways.
-- Keys whose hashes collide only queue behind each other.
CREATE FUNCTION idempotency_lock(p_scope text, p_key text) RETURNS void
LANGUAGE sql
BEGIN ATOMIC
    SELECT pg_advisory_xact_lock(hashtextextended('idempotency:' || p_scope || E'\x1f' || p_key, 0));
END;

-- Claims an idempotency key for the current transaction, for operations that have no transfer row
-- to carry it. Returns no row when the caller should go ahead (no key given, or the key is new);
-- otherwise one row with the stored outcome, or 'idempotency_mismatch' when the key was used for a
-- different request. A concurrent duplicate waits here until the first request commits.
CREATE FUNCTION idempotency_claim(p_scope text, p_key text, p_fingerprint bytea)
RETURNS TABLE (outcome text, resource text)
LANGUAGE plpgsql AS $$
BEGIN
    IF p_key IS NULL THEN
        RETURN;
    END IF;
    PERFORM idempotency_lock(p_scope, p_key);
    -- A transfer made under this key by /fintech/transfer claimed it without a row here.
    IF EXISTS (SELECT FROM transfers t WHERE t.idempotency_scope = p_scope AND t.idempotency_key = p_key
               AND t.request_fingerprint <> p_fingerprint) THEN
        RETURN QUERY SELECT 'idempotency_mismatch'::text, NULL::text;
        RETURN;
    END IF;
    -- A stored refusal can be forgotten (idempotency_forget_old_refusals) between the insert that
    -- meets it and the read of its answer: the key is then new again, and claimed on the second
    -- turn. No third: only a request under the same key could store it again, and that one waits
    -- on the key's lock, which this transaction holds.
    FOR turn IN 1..2 LOOP
        INSERT INTO idempotency_keys (scope, key, request_fingerprint, outcome)
        VALUES (p_scope, p_key, p_fingerprint, 'in_progress')
        ON CONFLICT DO NOTHING;
        IF FOUND THEN
            RETURN;
        END IF;
        RETURN QUERY SELECT * FROM idempotency_replay(p_scope, p_key, p_fingerprint);
        IF FOUND THEN
            RETURN;
        END IF;
    END LOOP;
    RAISE EXCEPTION 'idempotency key of scope % neither claimed nor stored', p_scope;
END;
$$;

-- How many refused requests' answers a scope (a user, or the operator) keeps. A refused request
-- had no effect, so a retry of one forgotten is judged afresh: it can make its effect once, never
-- twice. Nothing throttles refusals, so without a bound a client could fill the table.
CREATE FUNCTION idempotency_refusals_kept_max() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 1000;

-- Forgets a few of the scope's refusals past the latest idempotency_refusals_kept_max(), oldest
-- first; called as each refusal is stored, so the kept ones stay near the bound. Rows locked by
-- a concurrent request are skipped: forgetting is never worth a wait.
CREATE FUNCTION idempotency_forget_old_refusals(p_scope text) RETURNS void
LANGUAGE sql
BEGIN ATOMIC
    DELETE FROM idempotency_keys
    WHERE (scope, key) IN (
        SELECT k.scope, k.key FROM idempotency_keys k
        WHERE k.scope = p_scope AND k.outcome <> 'completed'
        ORDER BY k.created_at DESC
        OFFSET idempotency_refusals_kept_max() LIMIT 16
        FOR UPDATE SKIP LOCKED);
END;

-- Stores a refused request's answer under its key, unless a concurrent duplicate stored its own
-- first (that one keeps the first answer).
CREATE FUNCTION idempotency_store_refusal(p_scope text, p_key text, p_fingerprint bytea, p_outcome text)
RETURNS void
LANGUAGE sql
BEGIN ATOMIC
    INSERT INTO idempotency_keys (scope, key, request_fingerprint, outcome)
    VALUES (p_scope, p_key, p_fingerprint, p_outcome)
    ON CONFLICT DO NOTHING;
    SELECT idempotency_forget_old_refusals(p_scope);
END;

-- Records the outcome of a request whose key idempotency_claim granted (no-op without a key).
-- PL/pgSQL, so a request without a key or a completed one runs no statement it does not need
-- (a SQL function runs each of its statements, a no-op WHERE included).
CREATE FUNCTION idempotency_record(p_scope text, p_key text, p_outcome text, p_resource text)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_key IS NULL THEN
        RETURN;
    END IF;
    UPDATE idempotency_keys SET outcome = p_outcome, resource = p_resource
    WHERE scope = p_scope AND key = p_key;
    IF p_outcome <> 'completed' THEN
        PERFORM idempotency_forget_old_refusals(p_scope);
    END IF;
END;
$$;

-- Opens the accounts the users lack in a currency. One statement, in user id order: two first
-- transfers A->B and B->A open the same accounts in the same order, so neither can wait on an
-- account the other opened while holding one it opened itself (no deadlock).
CREATE FUNCTION ledger_open_user_accounts(p_user_ids bigint[], p_currency char(3)) RETURNS void
LANGUAGE sql
BEGIN ATOMIC
    INSERT INTO accounts (kind, owner_user_id, currency)
    SELECT 'user', user_id, p_currency FROM unnest(p_user_ids) user_id ORDER BY user_id
    ON CONFLICT DO NOTHING;
END;

-- Moves p_amount (already validated and scaled to its currency) between two accounts: locks both
-- in id order, refuses if the sender is a user account the amount would take below zero, writes
-- the transfer (carrying its idempotency key, if any) with its two entries and updates both
-- balances. Outcome 'completed' (with the transfer), 'insufficient_funds', 'daily_limit_exceeded'
-- (the sender's outgoing total today, UTC, would pass p_daily_max) or 'daily_transfers_exceeded'
-- (the sender made p_daily_transfers_max transfers today, refunds included; NULL limits: none).
-- When another
-- transaction committed a transfer under the same key first, that transfer is the answer
-- (replayed), or 'idempotency_mismatch' if it was a different request. A refund names its payment
-- in p_refund_of and does not add to the sender's outgoing total for the day: it gives back money
-- received rather than spending (see fintech_refund); it adds to their count of transfers.
CREATE FUNCTION ledger_post(
    p_kind text, p_sender_account bigint, p_receiver_account bigint, p_amount numeric,
    p_note text, p_idempotency_scope text, p_idempotency_key text, p_fingerprint bytea,
    p_daily_max numeric DEFAULT NULL, p_refund_of bigint DEFAULT NULL, p_daily_transfers_max integer DEFAULT NULL,
    OUT outcome ledger_outcome, OUT posted transfers, OUT replayed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    today date := (now() AT TIME ZONE 'UTC')::date;
    -- What the transfer adds to the sender's outgoing total for the day.
    counted_today numeric := CASE WHEN p_refund_of IS NULL THEN p_amount ELSE 0 END;
    covered boolean;
    spent_today numeric;
    transfers_today integer;
    over_total boolean;
    over_count boolean;
    sender_user bigint;
    receiver_user bigint;
    currency char(3);
BEGIN
    replayed := false;
    -- Callers pass their scope whether or not the request had a key.
    IF p_idempotency_key IS NULL THEN
        p_idempotency_scope := NULL;
    END IF;
    SELECT bool_or(a.id = p_sender_account AND (a.kind = 'funding' OR a.balance >= p_amount)),
           min(a.owner_user_id) FILTER (WHERE a.id = p_sender_account),
           min(a.owner_user_id) FILTER (WHERE a.id = p_receiver_account),
           min(a.currency),
           min(CASE WHEN a.outgoing_day >= today THEN a.outgoing_day_total ELSE 0 END)
               FILTER (WHERE a.id = p_sender_account),
           min(CASE WHEN a.outgoing_day >= today THEN a.outgoing_day_transfers ELSE 0 END)
               FILTER (WHERE a.id = p_sender_account)
    INTO covered, sender_user, receiver_user, currency, spent_today, transfers_today
    FROM (SELECT * FROM accounts WHERE id IN (p_sender_account, p_receiver_account)
          ORDER BY id FOR UPDATE) a;
    -- Under the sender's row lock, so two transfers cannot both fit in what is left of the day.
    -- Row locks queue by account, not by time: a transaction begun before midnight (UTC) can get
    -- the row after one begun after it. It then counts toward that later day (`>=` above,
    -- greatest() below): the day on the row never goes back, so no day's limit is had twice.
    over_total := p_daily_max IS NOT NULL AND spent_today + p_amount > p_daily_max;
    over_count := p_daily_transfers_max IS NOT NULL AND transfers_today >= p_daily_transfers_max;
    IF covered AND NOT over_total AND NOT over_count THEN
        INSERT INTO transfers (kind, sender_account_id, receiver_account_id, sender_user_id,
                               receiver_user_id, amount, currency, note, idempotency_scope,
                               idempotency_key, request_fingerprint, refund_of)
        VALUES (p_kind, p_sender_account, p_receiver_account, sender_user, receiver_user, p_amount,
                currency, p_note, p_idempotency_scope, p_idempotency_key, p_fingerprint, p_refund_of)
        ON CONFLICT (idempotency_scope, idempotency_key) WHERE idempotency_scope IS NOT NULL DO NOTHING
        RETURNING * INTO posted;
        IF FOUND THEN
            -- Both accounts in one statement: each UPDATE statement compiles the table's checks.
            UPDATE accounts SET
                balance = balance + CASE WHEN id = p_sender_account THEN -p_amount ELSE p_amount END,
                outgoing_day_total = CASE
                    WHEN id <> p_sender_account THEN outgoing_day_total
                    WHEN outgoing_day >= today THEN outgoing_day_total + counted_today
                    ELSE counted_today END,
                outgoing_day_transfers = CASE
                    WHEN id <> p_sender_account THEN outgoing_day_transfers
                    WHEN outgoing_day >= today THEN outgoing_day_transfers + 1
                    ELSE 1 END,
                outgoing_day = CASE WHEN id = p_sender_account THEN greatest(outgoing_day, today) ELSE outgoing_day END
            WHERE id IN (p_sender_account, p_receiver_account);
            INSERT INTO ledger_entries (transfer_id, account_id, amount)
            VALUES (posted.id, p_sender_account, -p_amount), (posted.id, p_receiver_account, p_amount);
            outcome := 'completed';
            RETURN;
        END IF;
    END IF;
    -- Refused or a key conflict: a retry that waited on the account locks for the first request
    -- finds its transfer here, rather than a balance that no longer covers it.
    IF p_idempotency_scope IS NOT NULL THEN
        SELECT * INTO posted FROM transfers
        WHERE idempotency_scope = p_idempotency_scope AND idempotency_key = p_idempotency_key;
    END IF;
    IF posted.id IS NULL THEN
        outcome := CASE WHEN covered AND over_total THEN 'daily_limit_exceeded'
                        WHEN covered AND over_count THEN 'daily_transfers_exceeded'
                        ELSE 'insufficient_funds' END;
    ELSIF posted.request_fingerprint = p_fingerprint THEN
        outcome := 'completed';
        replayed := true;
    ELSE
        outcome := 'idempotency_mismatch';
        posted := NULL;
        replayed := true;
    END IF;
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
-- 'invalid_amount_precision', 'currency_mismatch', 'insufficient_funds', 'daily_limit_exceeded',
-- 'daily_transfers_exceeded' (see ledger_post), and, with an idempotency key that another transfer
-- holds, 'idempotency_mismatch' or a replay.
-- A user's account in the default currency opens on first use; an account in any other
-- currency exists only once a deposit in it has been made.
CREATE FUNCTION ledger_pay(
    p_sender_user_id bigint, p_receiver_user_id bigint, p_amount numeric, p_currency char(3),
    p_note text, p_default_currency char(3), p_idempotency_scope text, p_idempotency_key text,
    p_fingerprint bytea, p_daily_max numeric DEFAULT NULL, p_daily_transfers_max integer DEFAULT NULL,
    OUT outcome ledger_outcome, OUT posted transfers, OUT replayed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    receiver_exists boolean;
    minor_units smallint;
    sender_account bigint;
    receiver_account bigint;
    result record;
BEGIN
    replayed := false;
    -- Receiver, currency and both accounts in one query.
    SELECT EXISTS (SELECT FROM users WHERE id = p_receiver_user_id),
           (SELECT c.minor_units FROM currencies c WHERE c.code = p_currency),
           (SELECT id FROM accounts WHERE owner_user_id = p_sender_user_id AND currency = p_currency),
           (SELECT id FROM accounts WHERE owner_user_id = p_receiver_user_id AND currency = p_currency)
    INTO receiver_exists, minor_units, sender_account, receiver_account;
    IF p_sender_user_id = p_receiver_user_id THEN
        outcome := 'self_transfer';
    ELSIF NOT receiver_exists THEN
        outcome := 'receiver_not_found';
    ELSIF minor_units IS NULL THEN
        outcome := 'unsupported_currency';
    ELSIF round(p_amount, minor_units) <> p_amount THEN
        outcome := 'invalid_amount_precision';
    ELSIF (sender_account IS NULL OR receiver_account IS NULL) AND p_currency <> p_default_currency THEN
        outcome := 'currency_mismatch';
    ELSE
        IF sender_account IS NULL OR receiver_account IS NULL THEN
            PERFORM ledger_open_user_accounts(ARRAY[p_sender_user_id, p_receiver_user_id], p_currency);
            SELECT (SELECT id FROM accounts WHERE owner_user_id = p_sender_user_id AND currency = p_currency),
                   (SELECT id FROM accounts WHERE owner_user_id = p_receiver_user_id AND currency = p_currency)
            INTO sender_account, receiver_account;
        END IF;
        -- An assignment, not SELECT ... FROM: a plain expression skips a query's executor setup.
        result := ledger_post('payment', sender_account, receiver_account, round(p_amount, minor_units),
            p_note, p_idempotency_scope, p_idempotency_key, p_fingerprint, p_daily_max, NULL, p_daily_transfers_max);
        outcome := result.outcome;
        posted := result.posted;
        replayed := result.replayed;
    END IF;
END;
$$;

-- POST /fintech/transfer. The receiver is given by id or by username (exactly one non-NULL).
-- Returns the outcome, the transfer's JSON when one exists, and whether this is a replay of an
-- earlier request with the same Idempotency-Key: one row, as OUT parameters rather than a set, so
-- no tuplestore is built for it. A transfer carries its key on its own row; only a refused
-- request stores its outcome in idempotency_keys.
--
-- An earlier answer under the key is found where it can be, at the least cost to a new key: an
-- outcome stored in idempotency_keys (a refusal, or another operation's answer) before anything
-- else; a transfer made under the key by ledger_post, whose insert meets it (the key is unique
-- on transfers), also when the balance has moved on since; and, when the rules refuse the
-- request before ledger_post runs, by one look-up before the refusal is stored. So a retry gets
-- the first answer, and a different request under a used key gets 'idempotency_mismatch'; one
-- sent while the first still runs waits on the key's lock (idempotency_lock) for it. (A
-- retry of a completed transfer thus takes its accounts' row locks for a moment, as a new
-- transfer would; retries are rare, new keys are not.)
CREATE FUNCTION fintech_transfer(
    p_sender_user_id bigint, p_receiver_user_id bigint, p_receiver_username text,
    p_amount numeric, p_currency char(3), p_note text, p_default_currency char(3),
    p_idempotency_key text, p_daily_max numeric DEFAULT NULL, p_daily_transfers_max integer DEFAULT NULL,
    OUT outcome text, OUT resource text, OUT replayed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    key_scope text;
    fingerprint bytea;
    receiver_id bigint := p_receiver_user_id;
    result record;
    earlier record;
BEGIN
    replayed := true;
    IF p_idempotency_key IS NOT NULL THEN
        key_scope := 'user:' || p_sender_user_id;
        fingerprint := request_fingerprint('fintech_transfer', p_receiver_user_id::text,
            p_receiver_username, trim_scale(p_amount)::text, p_currency, p_note);
        PERFORM idempotency_lock(key_scope, p_idempotency_key);
        IF EXISTS (SELECT FROM idempotency_keys k WHERE k.scope = key_scope AND k.key = p_idempotency_key) THEN
            SELECT r.outcome, r.resource INTO outcome, resource
            FROM idempotency_replay(key_scope, p_idempotency_key, fingerprint) r;
            IF FOUND THEN
                RETURN;
            END IF;
            -- A refusal forgotten since the check (idempotency_forget_old_refusals) is judged
            -- afresh, as any forgotten refusal is.
        END IF;
    END IF;
    IF receiver_id IS NULL THEN
        SELECT id INTO receiver_id FROM users WHERE username = p_receiver_username;
    END IF;
    result := ledger_pay(p_sender_user_id, coalesce(receiver_id, 0), p_amount, p_currency, p_note,
        p_default_currency, key_scope, p_idempotency_key, fingerprint, p_daily_max, p_daily_transfers_max);
    outcome := result.outcome;
    -- Posted now or replayed, as it was first answered (see idempotency_replay).
    resource := CASE WHEN result.outcome = 'completed' THEN transfer_json(result.posted, NULL)::text END;
    replayed := result.replayed;
    IF p_idempotency_key IS NOT NULL AND outcome <> 'completed' AND NOT replayed THEN
        -- Refused by the rules: a transfer made under the key is the answer, not this refusal.
        SELECT r.outcome, r.resource INTO earlier
        FROM idempotency_replay(key_scope, p_idempotency_key, fingerprint) r;
        IF FOUND THEN
            outcome := earlier.outcome;
            resource := earlier.resource;
            replayed := true;
            RETURN;
        END IF;
        PERFORM idempotency_store_refusal(key_scope, p_idempotency_key, fingerprint, outcome);
    END IF;
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
        PERFORM ledger_open_user_accounts(ARRAY[p_user_id], p_currency);
        SELECT id INTO STRICT user_account FROM accounts
        WHERE owner_user_id = p_user_id AND currency = p_currency;
        -- The key is claimed in idempotency_keys, so the transfer row does not carry it.
        result := ledger_post('deposit', funding_account, user_account, amount, p_note, NULL, NULL, NULL);
        outcome := result.outcome;
        -- A deposit cannot be refunded.
        resource := CASE WHEN result.outcome = 'completed' THEN transfer_json(result.posted, NULL)::text END;
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
