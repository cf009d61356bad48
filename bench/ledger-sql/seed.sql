-- The users, money and history both ledger benchmarks start from: :users users with a million USD
-- each in both the project's ledger and the reference's, then :history transfers of 0.01 in each
-- among all of them, so that tables and indexes have the shape of a used database (on near-empty
-- tables the planner prefers sequential scans), then VACUUM ANALYZE. Run with psql -v users=N
-- -v history=N, after the migrations and bench/ledger-sql/reference.sql.
INSERT INTO users (username, password_hash)
SELECT 'bench_' || i, '$2b$04$' || repeat('x', 53) FROM generate_series(1, :users) i;

SELECT count(*) FILTER (WHERE d.outcome <> 'completed') > 0 AS failed_deposits
FROM users u, fintech_deposit(u.id, 1000000, 'USD', NULL, NULL) d \gset
\if :failed_deposits
    DO $$ BEGIN RAISE 'a deposit failed'; END $$;
\endif

INSERT INTO reference.accounts (id, balance) SELECT i, 1000000 FROM generate_series(1, :users) i;

-- Each i moves 0.01 from user 1 + i % users to another user, the same pairs in both ledgers.
SELECT count(*) FILTER (WHERE t.outcome <> 'completed' OR r.outcome <> 'completed') > 0 AS failed_history
FROM generate_series(1, :history) i,
     LATERAL (SELECT 1 + i % :users AS sender, 1 + (i % :users + 1 + i / :users % (:users - 1)) % :users AS receiver) pair,
     LATERAL fintech_transfer(pair.sender, pair.receiver, NULL, 0.01, 'USD', NULL, 'USD', 'history-' || i) t,
     LATERAL reference.transfer(pair.sender, pair.receiver, 0.01, 'history-' || i) r (outcome) \gset
\if :failed_history
    DO $$ BEGIN RAISE 'a transfer of the history failed'; END $$;
\endif

VACUUM ANALYZE;
