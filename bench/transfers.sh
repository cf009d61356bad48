#!/usr/bin/env bash
# Transfer throughput and latency through the whole stack, next to the database's ceiling and
# next to a reference transfer doing the minimum correct work (issue 13's yardstick).
#
#   bench/transfers.sh            (BENCH_DURATION=20 seconds per run by default)
#
# Brings the system up with the run command (its own data folder, durable Postgres settings,
# release host without per-request logging), registers 1,000 users through the API and funds
# them, then for a uniform mix and a mix where 30% of transfers involve one hot account, at 16
# and 64 connections:
#   - wrk drives POST /fintech/transfer (0.01 USD, random sender and receiver);
#   - pgbench runs the same SQL call (fintech_transfer) directly against Postgres;
#   - pgbench runs the reference (bench/ledger-sql/reference.sql) on the same users;
# and prints transfers/s and latencies of each and the ratios app / ledger SQL and app / reference.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"
source "$(dirname "$0")/../scripts/lib/services.sh"
source "$(dirname "$0")/lib/transfer-load.sh"
cd "$PROJECT_ROOT"
apt_ensure wrk postgresql-contrib openssl bc

duration=${BENCH_DURATION:-20}
users=1000
data=.data/bench-transfers
work=$(mktemp -d)
app_port=$(free_port 18080)
ws_port=$(free_port 18999)
base=http://127.0.0.1:$app_port

rm -rf "$data"
trap 'stop_system; rm -rf "$work"' EXIT
start_system "$data" "$app_port" "$ws_port" "$work/run.log" --quiet --no-metrics
source "$data/secrets.env"

log "creating and funding $users users"
create_funded_users "$base" "$users" "$ADMIN_TOKEN" "$work/tokens.lua"
write_transfer_lua "$work/tokens.lua" "$users" "$work/transfer.lua"

# pgbench: the same random pairs; the ledger's own call, and the reference one-call transfer of
# bench/ledger-sql/reference.sql (the minimum correct work, each call with a new key).
pick="\\set pick random(1, 100)
\\set sender random(1, $users)
\\set receiver 1 + (:sender + random(0, $users - 2)) % $users
\\if :pick <= :hot_percent / 2
\\set sender 1
\\elif :pick <= :hot_percent
\\set receiver 1
\\endif
\\if :sender = :receiver
\\set receiver 2
\\endif
\\set key random(1, 9000000000000000000)"
printf '%s\n%s\n' "$pick" "SELECT outcome FROM fintech_transfer(:sender, :receiver, NULL, 0.01, 'USD', NULL, 'USD', NULL);" \
    >"$work/ledger.sql"
printf '%s\n%s\n' "$pick" "SELECT reference.transfer(:sender, :receiver, 0.01, 'bench-' || :key);" >"$work/reference.sql"

database_url="postgres://postgres:$(cat "$data/postgres.password")@127.0.0.1:$(sed -n 4p "$data/postgres/postmaster.pid")/sendinchat"

psql -qX "$database_url" -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" -f bench/ledger-sql/reference.sql
psql -qX "$database_url" -v ON_ERROR_STOP=1 \
    -c "INSERT INTO reference.accounts (id, balance) SELECT i, 1000000 FROM generate_series(1, $users) i" -c "VACUUM ANALYZE"

# Prints "transfers/s p50_ms p99_ms" for pgbench running <script> at <clients> with <hot percent>.
pgbench_run() {
    local script=$1 clients=$2 hot=$3 log_prefix="$work/pgbench_$1_$2_$3"
    (cd "$work" && pgbench -n -f "$script.sql" -D hot_percent="$hot" -c "$clients" -j 2 -T "$duration" \
        -l --log-prefix="$log_prefix" "$database_url" >"$log_prefix.out" 2>&1)
    local tps
    tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$log_prefix.out" | tail -n 1)
    # Per-transaction log lines: the third field is the latency in microseconds.
    local latencies
    latencies=$(cat "$log_prefix".[0-9]* | awk '{print $3}' | sort -n)
    local count p50 p99
    count=$(echo "$latencies" | wc -l)
    p50=$(echo "$latencies" | sed -n "$(( (count + 1) / 2 ))p")
    p99=$(echo "$latencies" | sed -n "$(( (count * 99 + 99) / 100 ))p")
    rm -f "$log_prefix".[0-9]*
    printf '%s %.2f %.2f\n' "$tps" "$(echo "$p50 / 1000" | bc -l)" "$(echo "$p99 / 1000" | bc -l)"
}

# The first run on a freshly created schema measured far below the next ones (the reference's
# 2,230 then 10,471 tx/s, 2026-12-03): its tables and indexes still grow into their first pages and
# autovacuum analyses them meanwhile. Both SQL calls are warmed up, untimed, first.
for script in ledger reference; do
    (cd "$work" && pgbench -n -f "$script.sql" -D hot_percent=0 -c 16 -j 2 -T 5 "$database_url" >/dev/null 2>&1)
done

printf '\n%-8s %5s | %10s %8s %8s %9s | %10s %8s | %10s %8s | %6s %6s\n' mix conns "app tx/s" "p50 ms" "p99 ms" \
    "non-2xx/io" "ledger/s" "p99 ms" "ref tx/s" "p99 ms" "app/ledger" "app/ref"
for hot in 0 30; do
    for connections in 16 64; do
        result=$(wrk_transfers "$base" "$connections" "$hot" "$duration" "$work/transfer.lua")
        read -r app_tps app_p50 app_p99 status_errors socket_errors <<<"$result"
        read -r db_tps _ db_p99 <<<"$(pgbench_run ledger "$connections" "$hot")"
        read -r ref_tps _ ref_p99 <<<"$(pgbench_run reference "$connections" "$hot")"
        mix=$([ "$hot" = 0 ] && echo uniform || echo "hot$hot%")
        printf '%-8s %5s | %10s %8s %8s %9s | %10.1f %8s | %10.1f %8s | %6.2f %6.2f\n' "$mix" "$connections" \
            "$app_tps" "$app_p50" "$app_p99" "$status_errors/$socket_errors" "$db_tps" "$db_p99" "$ref_tps" \
            "$ref_p99" "$(echo "$app_tps / $db_tps" | bc -l)" "$(echo "$app_tps / $ref_tps" | bc -l)"
    done
done
echo
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; Postgres durable (fsync on); ${duration}s per run"
psql -tA "$database_url" -c "SELECT 'ledger check: ' || count(*) || ' transfers, ' ||
    (SELECT count(*) FROM accounts WHERE kind = 'user' AND balance < 0) || ' negative balances, books net ' ||
    (SELECT sum(balance) FROM accounts) FROM transfers"
