#!/usr/bin/env bash
# `GET /users/me` (a token check and one SELECT) through the local host, next to a native Rust
# server answering the same request in the same run (bench/native-server: hyper + tokio-postgres
# with a prepared statement), against the same durable Postgres.
#
#   bench/users-me.sh            (BENCH_DURATION=15 seconds per run, BENCH_ROUNDS=2 by default)
#
# Brings the system up with the run command (its own data folder, release host without
# per-request logging; $SENDINCHAT_HOST_BIN picks another host build), registers one user, then
# alternates host and native runs of wrk at 16 and 64 connections and prints requests/s, p50 and
# p99 for both and the host/native ratio of each round. Figures, not a pass/fail test.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"
source "$(dirname "$0")/../scripts/lib/services.sh"
cd "$PROJECT_ROOT"
apt_ensure wrk curl

duration=${BENCH_DURATION:-15}
rounds=${BENCH_ROUNDS:-2}
data=.data/bench-users-me
work=$(mktemp -d)
app_port=$(free_port 18180)
ws_port=$(free_port 18990)
base=http://127.0.0.1:$app_port
target_dir=${CARGO_TARGET_DIR:-$PROJECT_ROOT/target}

log "building the native server (release)"
cargo build --quiet --release --manifest-path bench/native-server/Cargo.toml --target-dir "$target_dir"

rm -rf "$data"
scripts/run.sh --quiet --no-metrics --data "$data" --port "$app_port" --ws-port "$ws_port" >"$work/run.log" 2>&1 &
run_pid=$!
native_pid=""
stop_all() {
    [ -z "$native_pid" ] || kill "$native_pid" 2>/dev/null || true
    kill "$run_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap stop_all EXIT
for _ in $(seq 900); do grep -qx ready "$work/run.log" && break; sleep 1; done
grep -qx ready "$work/run.log" || die "the system did not start; see $work/run.log"
source "$data/secrets.env"

credentials='{"username":"bench_me","password":"bench password for me"}'
curl -sf -X POST "$base/users/register" -H 'content-type: application/json' -d "$credentials" >/dev/null
token=$(curl -sf -X POST "$base/users/token" -H 'content-type: application/json' -d "$credentials" \
    | sed 's/.*"access_token":"\([^"]*\)".*/\1/')

database_url="postgres://postgres:$(cat "$data/postgres.password")@127.0.0.1:$(sed -n 4p "$data/postgres/postmaster.pid")/sendinchat"
native_port=$(free_port 18280)
"$target_dir/release/native-server" users-me "127.0.0.1:$native_port" "$database_url" "$JWT_SECRET" sendinchat \
    >"$work/native.log" 2>&1 &
native_pid=$!
for _ in $(seq 100); do grep -q '^listening on' "$work/native.log" && break; sleep 0.1; done
native=http://127.0.0.1:$native_port

host_answer=$(curl -sf "$base/users/me" -H "authorization: Bearer $token")
native_answer=$(curl -sf "$native/users/me" -H "authorization: Bearer $token")
[ "$host_answer" = "$native_answer" ] || die "the answers differ: host $host_answer, native $native_answer"

# me.lua sends the user's token; forged.lua the same token with its signature altered.
for script in me:"$token" forged:"${token}x"; do cat >"$work/${script%%:*}.lua" <<LUA
wrk.headers["Authorization"] = "Bearer ${script#*:}"
function done(summary, latency, requests)
  io.write(string.format("RESULT %.1f %.2f %.2f %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
done
# CPU seconds (user + system, in clock ticks) the given processes have used so far. Requests/s swing
# with whatever else the machine runs; CPU time per request much less so.
cpu_ticks() { local pid total=0; for pid in "$@"; do
    [ -r "/proc/$pid/stat" ] && total=$((total + $(sed 's/.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }')))
done; echo "$total"; }
postmaster_pid=$(sed -n 1p "$data/postgres/postmaster.pid")
host_pid=$(pgrep -f " up --from .*--listen 127.0.0.1:$app_port" | head -1)
[ -n "$host_pid" ] || die "cannot find the host process"
# Prints requests/s, p50, p99, errors, then the CPU microseconds per request of the server ($3)
# and of Postgres' backends; $4 and $5 pick another path and wrk script than GET /users/me's.
measure() {
    local path=${4:-/users/me} script=${5:-$work/me.lua} before_server before_postgres result requests
    before_server=$(cpu_ticks "$3")
    before_postgres=$(cpu_ticks $(pgrep -P "$postmaster_pid"))
    result=$(wrk -t2 -c"$2" -d"${duration}s" --latency -s "$script" "$1$path" | sed -n 's/^RESULT //p')
    requests=$(awk -v rps="${result%% *}" -v d="$duration" 'BEGIN { print rps * d }')
    awk -v r="$result" -v n="$requests" -v hz="$(getconf CLK_TCK)" \
        -v s="$(($(cpu_ticks "$3") - before_server))" -v p="$(($(cpu_ticks $(pgrep -P "$postmaster_pid")) - before_postgres))" \
        'BEGIN { printf "%s %.0f %.0f\n", r, s * 1e6 / hz / n, p * 1e6 / hz / n }'
}

printf '\n%5s %5s | %10s %7s %7s %6s %6s %6s | %10s %7s %7s %6s %6s %6s | %11s\n' round conns "host req/s" p50 p99 \
    errors "cpu us" "pg us" "native req/s" p50 p99 errors "cpu us" "pg us" "host/native"
for round in $(seq "$rounds"); do
    for connections in 16 64; do
        read -r host_rps host_p50 host_p99 host_errors host_cpu host_pg <<<"$(measure "$base" "$connections" "$host_pid")"
        read -r native_rps native_p50 native_p99 native_errors native_cpu native_pg \
            <<<"$(measure "$native" "$connections" "$native_pid")"
        printf '%5s %5s | %10s %7s %7s %6s %6s %6s | %10s %7s %7s %6s %6s %6s | %11.2f\n' "$round" "$connections" \
            "$host_rps" "$host_p50" "$host_p99" "$host_errors" "$host_cpu" "$host_pg" "$native_rps" "$native_p50" \
            "$native_p99" "$native_errors" "$native_cpu" "$native_pg" \
            "$(awk -v h="$host_rps" -v n="$native_rps" 'BEGIN { print h / n }')"
    done
done
echo "cpu us, pg us: CPU microseconds per request used by the server process and by Postgres' backends"

# Where the host's CPU per request goes: the same request refused before it reaches the database
# (its token's signature altered), and a route that does no work.
read -r _ _ _ _ health_cpu _ <<<"$(measure "$base" 16 "$host_pid" /health)"
read -r _ _ _ _ refused_cpu _ <<<"$(measure "$base" 16 "$host_pid" /users/me "$work/forged.lua")"
read -r _ _ _ _ me_cpu me_pg <<<"$(measure "$base" 16 "$host_pid")"
echo
echo "host CPU us per request at 16 connections: GET /health $health_cpu; GET /users/me refused before the"
echo "database (401) $refused_cpu; GET /users/me $me_cpu (Postgres $me_pg): its query costs the host $((me_cpu - refused_cpu))"
echo
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; ${duration}s per run; latencies in ms"
