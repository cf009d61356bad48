-- The double-entry ledger.
--
-- Money lives in accounts (one per user per currency). Every movement is a transfer between two
-- accounts, written as two ledger entries that sum to zero: a debit (negative) on the sender and
-- a credit (positive) on the receiver. Transfers and entries are never updated or deleted;
-- corrections are new transfers. A balance is a cached sum of its account's entries, updated in
-- the same transaction as the entries.
--
-- Money enters through deposits from a per-currency funding account, the only account allowed
-- below zero: its balance is minus everything ever deposited, so all balances of a currency sum to
-- zero and the books always balance.
--
-- Amounts are NUMERIC without a declared scale: a value keeps the scale it was written with, and
-- every amount is rounded to its currency's minor units before it is stored, so balances render
-- as "100.50" rather than "100.5" or "100.5000".

CREATE TABLE currencies (
    code        char(3) PRIMARY KEY,
    minor_units smallint NOT NULL,
    CONSTRAINT currencies_code_format CHECK (code ~ '^[A-Z]{3}$'),
    CONSTRAINT currencies_minor_units_range CHECK (minor_units BETWEEN 0 AND 4)
);

INSERT INTO currencies (code, minor_units) VALUES
    ('USD', 2), ('EUR', 2), ('GBP', 2), ('CHF', 2), ('CAD', 2), ('AUD', 2), ('INR', 2),
    ('NGN', 2), ('KES', 2), ('GHS', 2), ('ZAR', 2), ('BRL', 2), ('MXN', 2),
    ('JPY', 0), ('KRW', 0), ('KWD', 3), ('BHD', 3);

CREATE TABLE accounts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          text NOT NULL,
    owner_user_id bigint REFERENCES users (id),
    currency      char(3) NOT NULL REFERENCES currencies (code),
    balance       numeric NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT accounts_kind_valid CHECK (kind IN ('user', 'funding')),
    CONSTRAINT accounts_owner_matches_kind CHECK ((kind = 'user') = (owner_user_id IS NOT NULL)),
    -- NULLS NOT DISTINCT: also at most one funding account (owner NULL) per currency.
    CONSTRAINT accounts_owner_currency_key UNIQUE NULLS NOT DISTINCT (owner_user_id, currency),
    CONSTRAINT accounts_balance_non_negative CHECK (balance >= 0 OR kind = 'funding')
);

CREATE TABLE transfers (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind                text NOT NULL,
    sender_account_id   bigint NOT NULL REFERENCES accounts (id),
    receiver_account_id bigint NOT NULL REFERENCES accounts (id),
    -- Denormalised owners (NULL for the funding account) so a user's history is an index scan.
    sender_user_id      bigint REFERENCES users (id),
    receiver_user_id    bigint REFERENCES users (id),
    amount              numeric NOT NULL,
    currency            char(3) NOT NULL REFERENCES currencies (code),
    status              text NOT NULL DEFAULT 'completed',
    note                text,
    idempotency_key     text,
    request_fingerprint bytea,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT transfers_kind_valid CHECK (kind IN ('payment', 'deposit')),
    CONSTRAINT transfers_amount_positive CHECK (amount > 0),
    CONSTRAINT transfers_distinct_accounts CHECK (sender_account_id <> receiver_account_id),
    -- Transfers settle synchronously; the column exists so a later asynchronous rail can add
    -- states without rewriting history.
    CONSTRAINT transfers_status_valid CHECK (status = 'completed'),
    CONSTRAINT transfers_note_length CHECK (char_length(note) <= 280)
);

CREATE INDEX transfers_sender_history_idx ON transfers (sender_user_id, id DESC);
CREATE INDEX transfers_receiver_history_idx ON transfers (receiver_user_id, id DESC);

CREATE TABLE ledger_entries (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transfer_id bigint NOT NULL REFERENCES transfers (id),
    account_id  bigint NOT NULL REFERENCES accounts (id),
    -- Negative: money leaves the account (debit). Positive: money arrives (credit).
    amount      numeric NOT NULL,
    CONSTRAINT ledger_entries_amount_nonzero CHECK (amount <> 0),
    CONSTRAINT ledger_entries_transfer_account_key UNIQUE (transfer_id, account_id)
);

CREATE INDEX ledger_entries_account_idx ON ledger_entries (account_id);

-- History is append-only: refuse any UPDATE, DELETE or TRUNCATE of transfers and entries.
CREATE FUNCTION ledger_refuse_rewrite() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger history is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER transfers_append_only BEFORE UPDATE OR DELETE ON transfers
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_rewrite();
CREATE TRIGGER transfers_no_truncate BEFORE TRUNCATE ON transfers
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_rewrite();
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_rewrite();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_rewrite();

-- Every transfer's entries sum to zero, checked at commit (deferred) once all of its entries
-- exist, so no code path can commit half a transfer.
CREATE FUNCTION ledger_check_transfer_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    total numeric;
BEGIN
    SELECT sum(amount) INTO total FROM ledger_entries WHERE transfer_id = NEW.transfer_id;
    IF total <> 0 THEN
        RAISE EXCEPTION 'transfer % entries sum to %, not 0', NEW.transfer_id, total
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_transfer_balanced();

-- Stored outcomes of requests carrying an Idempotency-Key. A row is written in the same
-- transaction as the effect it records, so it exists if and only if the effect happened. A
-- concurrent duplicate blocks on the primary key until the first commits, then reads its outcome.
CREATE TABLE idempotency_keys (
    -- Who may replay: 'user:<id>' or 'operator'.
    scope               text NOT NULL,
    key                 text NOT NULL,
    -- SHA-256 of the operation name and its normalised parameters.
    request_fingerprint bytea NOT NULL,
    outcome             text NOT NULL,
    -- The JSON the first request produced (the resource, or null for an error outcome).
    resource            text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key),
    CONSTRAINT idempotency_keys_key_length CHECK (char_length(key) BETWEEN 1 AND 255)
);
