-- A refused request made under a new Idempotency-Key stores its refusal, and nothing throttles
-- refusals, so a client could fill idempotency_keys without bound. Each user keeps the answers
-- of their latest refused requests (idempotency_forget_old_refusals, sql/functions/20_ledger.sql);
-- this index finds a user's refusals newest first without reading their other answers.
CREATE INDEX idempotency_keys_refusals_idx ON idempotency_keys (scope, created_at)
    WHERE outcome <> 'completed';
