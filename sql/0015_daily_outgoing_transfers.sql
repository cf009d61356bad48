-- A per-user daily count of outgoing transfers, next to the daily outgoing total (0006) on the
-- account row a transfer already locks. Moving money costs its sender nothing but the amount
-- limit, so two accounts of one client sending 0.01 back and forth could otherwise append
-- transfers and entries to the append-only ledger as fast as the server takes them.
--
-- The count's guard is a domain, as the other single-column guards of the ledger's tables are
-- since 0011: a table CHECK would be rebuilt for every UPDATE of accounts, once per transfer.
ALTER TYPE ledger_outcome ADD VALUE 'daily_transfers_exceeded';

CREATE DOMAIN account_outgoing_day_transfers AS integer
    CONSTRAINT accounts_outgoing_day_transfers_non_negative CHECK (VALUE >= 0);

ALTER TABLE accounts ADD COLUMN outgoing_day_transfers account_outgoing_day_transfers NOT NULL DEFAULT 0;
