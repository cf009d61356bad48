-- Cheaper guards for the same ledger invariants (issue 13).
--
-- A transfer used to write an idempotency row, update it, and re-sum its entries in a deferred
-- per-row trigger at commit: more work than the transfer itself. Here the idempotency key lives
-- on the transfer row, and the entries are checked once per INSERT statement.

-- What a ledger operation can end in. A typo in a function is then an error at its first run, not
-- an unknown word reaching the component.
CREATE TYPE ledger_outcome AS ENUM (
    'completed', 'self_transfer', 'receiver_not_found', 'unsupported_currency',
    'invalid_amount_precision', 'currency_mismatch', 'insufficient_funds', 'idempotency_mismatch'
);

-- A transfer made under an Idempotency-Key carries it: who may replay it (the scope), the key and
-- the fingerprint of the request. One transfer per (scope, key), enforced by the unique index; a
-- request that reuses a key for something else is told so by comparing fingerprints. Earlier
-- transfers carry a key without a scope; their outcomes stay in idempotency_keys.
ALTER TABLE transfers
    ADD COLUMN idempotency_scope text,
    ADD CONSTRAINT transfers_idempotency_complete
        CHECK (idempotency_scope IS NULL OR (idempotency_key IS NOT NULL AND request_fingerprint IS NOT NULL));

CREATE UNIQUE INDEX transfers_idempotency_key ON transfers (idempotency_scope, idempotency_key)
    WHERE idempotency_scope IS NOT NULL;

-- A transfer's accounts, currency and denormalised owners must agree: composite foreign keys into
-- accounts, whose rows the transfer already holds FOR UPDATE, replace the separate keys to users
-- and currencies (each of which share-locked a users row per transfer); accounts still reference
-- users and currencies. An owner is checked when not NULL (the funding account has none).
ALTER TABLE accounts
    ADD CONSTRAINT accounts_id_currency_key UNIQUE (id, currency),
    ADD CONSTRAINT accounts_id_owner_key UNIQUE (id, owner_user_id);

ALTER TABLE transfers
    DROP CONSTRAINT transfers_sender_account_id_fkey,
    DROP CONSTRAINT transfers_receiver_account_id_fkey,
    DROP CONSTRAINT transfers_sender_user_id_fkey,
    DROP CONSTRAINT transfers_receiver_user_id_fkey,
    DROP CONSTRAINT transfers_currency_fkey,
    ADD CONSTRAINT transfers_sender_account_fkey
        FOREIGN KEY (sender_account_id, currency) REFERENCES accounts (id, currency),
    ADD CONSTRAINT transfers_receiver_account_fkey
        FOREIGN KEY (receiver_account_id, currency) REFERENCES accounts (id, currency),
    ADD CONSTRAINT transfers_sender_owner_fkey
        FOREIGN KEY (sender_account_id, sender_user_id) REFERENCES accounts (id, owner_user_id),
    ADD CONSTRAINT transfers_receiver_owner_fkey
        FOREIGN KEY (receiver_account_id, receiver_user_id) REFERENCES accounts (id, owner_user_id);

-- Every INSERT into ledger_entries must write, for each transfer it touches, exactly that
-- transfer's debit (its sender account, minus its amount) and credit (its receiver account, plus
-- its amount). With the UNIQUE (transfer_id, account_id) constraint and append-only history, no
-- later statement can add a third entry, so each transfer's entries sum to zero. One check per
-- statement over its new rows replaces a deferred trigger that re-summed per row at commit.
--
-- The same check proves each entry's transfer exists and that its account is one the transfer
-- references (and so exists, by the transfer's keys); transfers are never deleted and an account
-- a transfer references cannot be. So the entries' own foreign keys, four row lookups per
-- transfer, go. Their index by account goes too: no query reads entries by account (a user's
-- history is the transfers' sender and receiver indexes).
DROP TRIGGER ledger_entries_balanced ON ledger_entries;
DROP FUNCTION ledger_check_transfer_balanced();
ALTER TABLE ledger_entries
    DROP CONSTRAINT ledger_entries_transfer_id_fkey,
    DROP CONSTRAINT ledger_entries_account_id_fkey;
DROP INDEX ledger_entries_account_idx;

CREATE FUNCTION ledger_check_entries_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    unbalanced bigint;
BEGIN
    SELECT e.transfer_id INTO unbalanced
    FROM new_entries e LEFT JOIN transfers t ON t.id = e.transfer_id
    GROUP BY e.transfer_id
    HAVING count(*) <> 2
        OR count(*) FILTER (WHERE e.account_id = t.sender_account_id AND e.amount = -t.amount) <> 1
        OR count(*) FILTER (WHERE e.account_id = t.receiver_account_id AND e.amount = t.amount) <> 1
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'transfer % is not written as exactly its debit and its credit', unbalanced
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_entries_balanced';
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_check_entries_balanced();
