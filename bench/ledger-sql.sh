#!/usr/bin/env bash
# The ledger's SQL alone next to a reference transfer doing the minimum correct work, by pgbench
# against the same Postgres in the same run: no HTTP, no host, no component.
#
#   bench/ledger-sql.sh     (BENCH_DURATION=5 seconds per run, BENCH_ROUNDS=3, BENCH_CLIENTS=16)
#
# Migrates a scratch database with the project's migrate tool ($SENDINCHAT_MIGRATE_BIN, else
# through cargo), adds the reference (bench/ledger-sql/reference.sql, its own schema), seeds both
# with the same 3,000 funded users and 20,000 earlier transfers (bench/ledger-sql/seed.sql), then,
# with transfers among the first 200 users, for a uniform mix and a mix where 30% of transfers
# involve one hot account runs pgbench (-j 2) on
#   - reference.transfer(...), each call with a new idempotency key;
#   - fintech_transfer(...) with a new Idempotency-Key each call (the reference's work);
#   - fintech_transfer(...) without a key;
# and prints transfers/s of each and the ratio to the reference, with commits that wait for the
# WAL flush (the server's setting) and without (the SQL's CPU cost alone). Figures, not a
# pass/fail test.
# PGHOST/PGPORT/PGUSER (default 127.0.0.1:5432, postgres) name the server; the scratch database
# (BENCH_DATABASE, default sendinchat_bench_ledger) is dropped and recreated.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"
cd "$PROJECT_ROOT"

duration=${BENCH_DURATION:-5}
clients=${BENCH_CLIENTS:-16}
users=200
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
database=${BENCH_DATABASE:-sendinchat_bench_ledger}
database_url="postgres://$PGUSER@$PGHOST:$PGPORT/$database"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

psql -qX -d postgres -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $database" \
    -c "CREATE DATABASE $database"
migrate "$database_url" >/dev/null
psql -qX -d "$database" -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" -f bench/ledger-sql/reference.sql
# The same 3,000 funded users and 20,000 earlier transfers in both (bench/ledger-sql/seed.sql);
# the benchmark's transfers are among the first $users of them.
psql -qX -d "$database" -v ON_ERROR_STOP=1 -v users=3000 -v history=20000 -f bench/ledger-sql/seed.sql

# Each pgbench transaction: a random sender and receiver among the users; with hot_percent, that
# share of transfers has user 1 as sender or receiver.
pick='\set pick random(1, 100)
\set sender random(1, :users)
\set receiver 1 + (:sender + random(0, :users - 2)) % :users
\if :pick <= :hot_percent / 2
\set sender 1
\elif :pick <= :hot_percent
\set receiver 1
\endif
\if :sender = :receiver
\set receiver 2
\endif
\set key random(1, 9000000000000000000)'
printf '%s\n%s\n' "$pick" "SELECT reference.transfer(:sender, :receiver, 0.01, 'bench-' || :key);" >"$work/reference.sql"
printf '%s\n%s\n' "$pick" \
    "SELECT outcome FROM fintech_transfer(:sender, :receiver, NULL, 0.01, 'USD', NULL, 'USD', 'bench-' || :key);" \
    >"$work/keyed.sql"
printf '%s\n%s\n' "$pick" \
    "SELECT outcome FROM fintech_transfer(:sender, :receiver, NULL, 0.01, 'USD', NULL, 'USD', NULL);" \
    >"$work/unkeyed.sql"

# Prints the transfers/s of one pgbench run of <script> with <hot percent>; PGOPTIONS passes the
# commit mode to the sessions.
tps() {
    PGOPTIONS="-c synchronous_commit=$commit" pgbench -n -f "$work/$1.sql" -D users="$users" -D hot_percent="$2" \
        -c "$clients" -j 2 -T "$duration" "$database_url" 2>&1 | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | tail -n 1
}

# The median of the numbers on stdin.
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# The three run in turns, BENCH_ROUNDS times, so a neighbour's load lands on all of them alike;
# each figure is the median of its rounds. "durable" waits for the WAL flush at commit, as the
# server is configured; "no-flush-wait" (synchronous_commit=off in the benchmark's sessions only)
# shows the SQL's own CPU cost, which a fast disk would expose.
rounds=${BENCH_ROUNDS:-3}
server_commit=$(psql -tAX -d "$database" -c "SHOW synchronous_commit")
printf '\n%-13s %-8s | %14s | %14s %6s | %14s %6s\n' commit mix "reference tx/s" "keyed tx/s" ratio "no key tx/s" ratio
for commit in "$server_commit" off; do
    for hot in 0 30; do
        for target in reference keyed unkeyed; do : >"$work/$target.tps"; done
        for _ in $(seq "$rounds"); do
            for target in reference keyed unkeyed; do tps "$target" "$hot" >>"$work/$target.tps"; done
        done
        reference=$(median <"$work/reference.tps")
        keyed=$(median <"$work/keyed.tps")
        unkeyed=$(median <"$work/unkeyed.tps")
        mode=$([ "$commit" = off ] && echo no-flush-wait || echo durable)
        mix=$([ "$hot" = 0 ] && echo uniform || echo "hot$hot%")
        printf '%-13s %-8s | %14.1f | %14.1f %6.2f | %14.1f %6.2f\n' "$mode" "$mix" "$reference" "$keyed" \
            "$(echo "$keyed / $reference" | bc -l)" "$unkeyed" "$(echo "$unkeyed / $reference" | bc -l)"
    done
done
echo
echo "$clients clients, -j 2, ${duration}s per run, median of $rounds rounds; load average $(cut -d' ' -f1-3 /proc/loadavg);" \
    "$(nproc) cores; Postgres $(psql -tAX -d "$database" -c "SELECT split_part(version(), ' ', 2) || ' fsync=' ||
        current_setting('fsync') || ' synchronous_commit=' || current_setting('synchronous_commit') ||
        ' wal_sync_method=' || current_setting('wal_sync_method')")"
psql -tAX -d "$database" -c "SELECT 'ledger check: ' || count(*) || ' transfers, ' ||
    (SELECT count(*) FROM accounts WHERE kind = 'user' AND balance < 0) || ' negative balances, books net ' ||
    (SELECT sum(balance) FROM accounts) FROM transfers"
