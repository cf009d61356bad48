-- The ledger's guards, cheaper per transfer (issue 13): single-column rules become domains, and the
-- check that entries balance needs no aggregation.
--
-- Postgres 15 builds the target table's CHECK constraints afresh for every INSERT or UPDATE
-- statement: it reads each one's stored expression, parses it back into a tree, plans it and
-- compiles it (ExecConstraints -> ExecRelCheck, per statement because each statement gets a new
-- result relation). Statements run from a SQL function pay it on every call: about 20,000 CPU
-- instructions per check, however small (callgrind), and a transfer rebuilt 16 checks in four
-- statements. A domain's constraints are parsed and planned once per session (kept in the type
-- cache) and only compiled into the statement that assigns the column.
--
-- So each rule on one column becomes the column's domain, its constraint keeping the name the
-- table constraint had: a violation still names the same guard (the message names the domain).
-- Rules across columns stay table CHECKs. Values are checked whenever they are written, as
-- before; columns a statement does not assign keep values already checked.
--
-- Each column first takes an unconstrained domain (binary-compatible: no table rewrite), then the
-- domain takes its constraint, which Postgres validates against every existing row.

CREATE DOMAIN transfer_kind AS text;
CREATE DOMAIN transfer_amount AS numeric;
CREATE DOMAIN transfer_status AS text;
CREATE DOMAIN transfer_note AS text;
CREATE DOMAIN ledger_entry_amount AS numeric;
CREATE DOMAIN account_kind AS text;
CREATE DOMAIN account_outgoing_day_total AS numeric;

ALTER TABLE transfers
    DROP CONSTRAINT transfers_kind_valid,
    DROP CONSTRAINT transfers_amount_positive,
    DROP CONSTRAINT transfers_status_valid,
    DROP CONSTRAINT transfers_note_length,
    ALTER COLUMN kind TYPE transfer_kind,
    ALTER COLUMN amount TYPE transfer_amount,
    ALTER COLUMN status TYPE transfer_status,
    ALTER COLUMN note TYPE transfer_note;

ALTER TABLE ledger_entries
    DROP CONSTRAINT ledger_entries_amount_nonzero,
    ALTER COLUMN amount TYPE ledger_entry_amount;

ALTER TABLE accounts
    DROP CONSTRAINT accounts_kind_valid,
    DROP CONSTRAINT accounts_outgoing_day_total_non_negative,
    ALTER COLUMN kind TYPE account_kind,
    ALTER COLUMN outgoing_day_total TYPE account_outgoing_day_total;

ALTER DOMAIN transfer_kind
    ADD CONSTRAINT transfers_kind_valid CHECK (VALUE IN ('payment', 'deposit', 'refund'));
ALTER DOMAIN transfer_amount
    ADD CONSTRAINT transfers_amount_positive CHECK (VALUE > 0);
-- Transfers settle synchronously; the column exists so a later asynchronous rail can add states
-- without rewriting history.
ALTER DOMAIN transfer_status
    ADD CONSTRAINT transfers_status_valid CHECK (VALUE = 'completed');
ALTER DOMAIN transfer_note
    ADD CONSTRAINT transfers_note_length CHECK (char_length(VALUE) <= 280);
ALTER DOMAIN ledger_entry_amount
    ADD CONSTRAINT ledger_entries_amount_nonzero CHECK (VALUE <> 0);
ALTER DOMAIN account_kind
    ADD CONSTRAINT accounts_kind_valid CHECK (VALUE IN ('user', 'funding'));
ALTER DOMAIN account_outgoing_day_total
    ADD CONSTRAINT accounts_outgoing_day_total_non_negative CHECK (VALUE >= 0);

-- The check of sql/0004_ledger_guards.sql, without GROUP BY: setting up an aggregation is most of
-- what such a query costs for the two rows a transfer writes. Each new entry must be its
-- transfer's debit (its sender account, minus its amount) or its credit (its receiver account,
-- plus its amount), and have a partner entry of the same transfer on another account in the same
-- statement. As sender and receiver accounts differ (transfers_distinct_accounts) and a transfer
-- has one entry per account (ledger_entries_transfer_account_key), that is exactly its debit and
-- its credit, as before.
CREATE OR REPLACE FUNCTION ledger_check_entries_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    unbalanced bigint;
BEGIN
    SELECT e.transfer_id INTO unbalanced
    FROM new_entries e
    WHERE NOT EXISTS (SELECT FROM transfers t
                      WHERE t.id = e.transfer_id
                        AND ((e.account_id = t.sender_account_id AND e.amount = -t.amount)
                          OR (e.account_id = t.receiver_account_id AND e.amount = t.amount)))
       OR NOT EXISTS (SELECT FROM new_entries partner
                      WHERE partner.transfer_id = e.transfer_id AND partner.account_id <> e.account_id)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'transfer % is not written as exactly its debit and its credit', unbalanced
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_entries_balanced';
    END IF;
    RETURN NULL;
END;
$$;
