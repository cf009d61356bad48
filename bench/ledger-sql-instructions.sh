#!/usr/bin/env bash
# The CPU work of one transfer inside Postgres, counted in instructions: the ledger's
# fintech_transfer next to the reference transfer (bench/ledger-sql/reference.sql), each run by a
# single-user Postgres backend under valgrind's callgrind.
#
#   bench/ledger-sql-instructions.sh
#
# Instruction counts do not depend on what else the machine is doing, so a change to the SQL can
# be judged from one run on a busy machine, where bench/ledger-sql.sh's transfers/s swing by a
# third between rounds. They leave out what pgbench's figures include: waiting for locks and for
# the WAL flush.
#
# The database is shaped like a used one: 3,000 funded users and 20,000 earlier transfers in each
# ledger, then VACUUM ANALYZE. On a near-empty database the planner picks sequential scans, and
# tables that grow during the count without being analysed again make later transfers costlier
# than earlier ones. Each target then runs 150 and 350 transfers among users 1 to 200 (one
# statement each, as pgbench sends them) on a fresh copy of that cluster; the difference between
# the two counts, divided by 200, is the cost of one transfer without start-up and warm-up.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"
source "$PROJECT_ROOT/scripts/lib/services.sh"
cd "$PROJECT_ROOT"
apt_ensure valgrind

data="$PROJECT_ROOT/.data/bench-instructions"
work=$(mktemp -d)
[ "$(id -u)" -eq 0 ] && chown postgres "$work"
trap 'stop_postgres "$data"; rm -rf "$work"' EXIT

# A fresh cluster every run, so the counts depend only on the SQL.
stop_postgres "$data"
rm -rf "$data"
start_postgres "$data" "$(free_port 15432)" no
database_url="${PG_ADMIN_URL%/postgres\?sslmode=disable}/ledger?sslmode=disable"
psql -qX "$PG_ADMIN_URL" -c "CREATE DATABASE ledger"
migrate "$database_url" >/dev/null
psql -qX "$database_url" -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" -f bench/ledger-sql/reference.sql
log "seeding 3,000 users and 20,000 transfers in each ledger"
psql -qX "$database_url" -v ON_ERROR_STOP=1 -v users=3000 -v history=20000 -f bench/ledger-sql/seed.sql
stop_postgres "$data"

# Prints <count> statements of <target>: pseudo-random distinct sender and receiver among users
# 1 to 200, the same sequence for every target, each with a new Idempotency-Key.
statements() {
    awk -v target="$1" -v count="$2" 'BEGIN {
        srand(7)
        for (i = 0; i < count; i++) {
            sender = 1 + int(rand() * 200); receiver = 1 + (sender + int(rand() * 199)) % 200
            key = "'\''bench-" i "'\''"
            if (target == "reference")
                printf "SELECT reference.transfer(%d, %d, 0.01, %s);\n", sender, receiver, key
            else
                printf "SELECT outcome FROM fintech_transfer(%d, %d, NULL, 0.01, '\''USD'\'', NULL, '\''USD'\'', %s);\n",
                    sender, receiver, (target == "keyed" ? key : "NULL")
        }
    }'
}

# Prints the instructions a single-user backend executes for <count> transfers of <target>.
instructions() {
    local target=$1 count=$2 run="$work/cluster"
    rm -rf "$run"
    cp -a "$data/postgres" "$run"
    statements "$target" "$count" >"$work/statements.sql"
    as_postgres valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" \
        "$(postgres_bin)/postgres" --single -D "$run" -c synchronous_commit=off ledger \
        <"$work/statements.sql" >"$work/output" 2>"$work/valgrind.log"
    if grep -q ERROR "$work/valgrind.log" || [ "$(grep -c '"completed"' "$work/output")" -ne "$count" ]; then
        grep -m 3 ERROR "$work/valgrind.log" >&2 || true
        die "$target: not every one of $count transfers completed"
    fi
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$work/valgrind.log"
}

printf '\n%-10s | %24s | %12s\n' target "instructions per transfer" "reference / target"
for target in reference keyed unkeyed; do
    per_transfer=$((($(instructions "$target" 350) - $(instructions "$target" 150)) / 200))
    [ "$target" = reference ] && reference=$per_transfer
    printf '%-10s | %24d | %12.2f\n' "$target" "$per_transfer" "$(echo "$reference / $per_transfer" | bc -l)"
done
echo
echo "keyed: fintech_transfer with an Idempotency-Key (the reference's work); unkeyed: without one." \
    "Postgres $(as_postgres "$(postgres_bin)/postgres" --version | awk '{print $3}'), $(valgrind --version)"
