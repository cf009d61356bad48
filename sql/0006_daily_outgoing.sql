-- A per-user daily outgoing total (issue 18): what each account has sent today (UTC), kept on
-- the account row the transfer already locks, so the limit is checked and the total moved in the
-- statements a transfer makes anyway, and concurrent transfers of one sender cannot exceed the
-- limit together (they queue on that row lock).
ALTER TYPE ledger_outcome ADD VALUE 'daily_limit_exceeded';

ALTER TABLE accounts
    ADD COLUMN outgoing_day date,
    ADD COLUMN outgoing_day_total numeric NOT NULL DEFAULT 0,
    ADD CONSTRAINT accounts_outgoing_day_total_non_negative CHECK (outgoing_day_total >= 0);
