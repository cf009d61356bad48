-- Statements (issue 18): an account's transfers in a time range, oldest first. Entries have no
-- index by account (sql/0004_ledger_guards.sql dropped it); a statement reads the transfers instead,
-- whose rows say which account sent and which received, by these two indexes: each gives one
-- account's transfers in (created_at, id) order, the statement's order, so Postgres merges the two
-- and streams the lines without sorting, and the amount it needs for balances is in the index.
-- The price: two more index entries per transfer written.
CREATE INDEX transfers_sender_account_time_idx ON transfers (sender_account_id, created_at, id) INCLUDE (amount);
CREATE INDEX transfers_receiver_account_time_idx ON transfers (receiver_account_id, created_at, id) INCLUDE (amount);
