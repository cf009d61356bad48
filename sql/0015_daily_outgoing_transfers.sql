-- A per-user daily count of outgoing transfers, next to the daily outgoing total (0006) on the
-- account row a transfer already locks. Moving money costs its sender nothing but the amount
-- limit, so two accounts of one client sending 0.01 back and forth could otherwise append
-- transfers and entries to the append-only ledger as fast as the server takes them.
ALTER TYPE ledger_outcome ADD VALUE 'daily_transfers_exceeded';

ALTER TABLE accounts
    ADD COLUMN outgoing_day_transfers integer NOT NULL DEFAULT 0,
    ADD CONSTRAINT accounts_outgoing_day_transfers_non_negative CHECK (outgoing_day_transfers >= 0);
