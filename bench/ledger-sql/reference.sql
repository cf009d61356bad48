-- The reference transfer for bench/ledger-sql.sh: the minimum correct work of one transfer, in one
-- function call, in its own schema so it shares the database (and the Postgres) with the project's
-- fintech_transfer. Ordered FOR UPDATE on the two accounts, a balance check, two balance updates,
-- one transfer row with a unique idempotency key, two entry rows.
DROP SCHEMA IF EXISTS reference CASCADE;
CREATE SCHEMA reference;

CREATE TABLE reference.accounts (
    id      bigint PRIMARY KEY,
    balance numeric NOT NULL CHECK (balance >= 0)
);

CREATE TABLE reference.transfers (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    idempotency_key     text NOT NULL UNIQUE,
    sender_account_id   bigint NOT NULL REFERENCES reference.accounts (id),
    receiver_account_id bigint NOT NULL REFERENCES reference.accounts (id),
    amount              numeric NOT NULL CHECK (amount > 0),
    created_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE reference.entries (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transfer_id bigint NOT NULL REFERENCES reference.transfers (id),
    account_id  bigint NOT NULL REFERENCES reference.accounts (id),
    amount      numeric NOT NULL
);

CREATE FUNCTION reference.transfer(p_sender bigint, p_receiver bigint, p_amount numeric, p_key text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    sender_balance numeric;
    transfer_id bigint;
BEGIN
    PERFORM 1 FROM reference.accounts WHERE id IN (p_sender, p_receiver) ORDER BY id FOR UPDATE;
    SELECT balance INTO sender_balance FROM reference.accounts WHERE id = p_sender;
    IF sender_balance < p_amount THEN
        RETURN 'insufficient_funds';
    END IF;
    UPDATE reference.accounts SET balance = balance - p_amount WHERE id = p_sender;
    UPDATE reference.accounts SET balance = balance + p_amount WHERE id = p_receiver;
    INSERT INTO reference.transfers (idempotency_key, sender_account_id, receiver_account_id, amount)
    VALUES (p_key, p_sender, p_receiver, p_amount)
    RETURNING id INTO transfer_id;
    INSERT INTO reference.entries (transfer_id, account_id, amount)
    VALUES (transfer_id, p_sender, -p_amount), (transfer_id, p_receiver, p_amount);
    RETURN 'completed';
END;
$$;
