#!/usr/bin/env bash
# Spin's keep-alive stall, reproduced with the local host, and what removes it.
#
#   bench/keepalive-stall.sh [--from spin.toml]     (needs root: it makes a network namespace)
#
# Spin 4.1's HTTP trigger leaves Nagle's algorithm on for accepted sockets. A response whose body
# has no stated length is chunked, and its terminator goes out in a write of its own once the
# component's body stream ends, after the rest; on a kept-alive connection that small write waits
# for the client's delayed ACK (~40 ms). `sendinchat-host up --mimic-spin-sockets` serves the same
# way. In a private network namespace (its own loopback, so routing changes touch nothing else)
# this starts Postgres, Redis and the app, registers a user, and times requests on one kept-alive
# connection (wrk -c1) to the app's routes, which state their length, and to the host conformance
# probe's, which answer chunked as every route of the app once did:
#   1. the host as it normally serves (TCP_NODELAY, coalesced writes);
#   2. --mimic-spin-sockets: Spin's behaviour;
#   3. --mimic-spin-sockets with the client's route set to `quickack 1`, the deployment-side
#      mitigation for the proxy (Pushpin) in front of an unpatched Spin;
# and prints requests/s and p50/p99 latency of each. Figures, not a pass/fail test.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"
source "$(dirname "$0")/../scripts/lib/services.sh"
cd "$PROJECT_ROOT"

manifest=$PROJECT_ROOT/spin.toml
while [ $# -gt 0 ]; do
    case $1 in
        --from) manifest=$(realpath "$2"); shift ;;
        *) die "unknown argument $1" ;;
    esac
    shift
done
[ "$(id -u)" -eq 0 ] || die "needs root (ip netns)"
apt_ensure wrk curl iproute2

host_bin=${SENDINCHAT_HOST_BIN:-}
if [ -z "$host_bin" ]; then
    cargo build --quiet --release -p sendinchat-host
    host_bin=${CARGO_TARGET_DIR:-$PROJECT_ROOT/target}/release/sendinchat-host
fi
scripts/build-components.sh auth docs web probe

namespace=sendinchat-stall-$$
data=$(mktemp -d)
chmod 755 "$data"
in_namespace() { ip netns exec "$namespace" "$@"; }
host_pid=""
cleanup() {
    [ -z "$host_pid" ] || kill "$host_pid" 2>/dev/null || true
    in_namespace bash -c "source scripts/lib/common.sh; source scripts/lib/services.sh; stop_postgres '$data'; stop_redis '$data'" || true
    ip netns delete "$namespace" 2>/dev/null || true
    rm -rf "$data"
}
trap cleanup EXIT
ip netns add "$namespace"
in_namespace ip link set lo up

# Services inside the namespace, on its own loopback.
in_namespace bash -c "source scripts/lib/common.sh; source scripts/lib/services.sh
    start_postgres '$data' 15432 no >/dev/null; start_redis '$data' 16379 no >/dev/null"
database_url="postgres://postgres:$(cat "$data/postgres.password")@127.0.0.1:15432/stall?sslmode=disable"
in_namespace psql -q "${database_url/\/stall?/\/postgres?}" -c "CREATE DATABASE stall"
in_namespace bash -c "source scripts/lib/common.sh; migrate '$database_url'" >/dev/null

secret() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
# Starts the host in the namespace serving manifest $1, with the rest as extra flags; sets host_pid.
start_host() {
    local serving=$1
    shift
    # Emptied first: the previous host's `ready` must not count for this one.
    : >"$data/host.log"
    # `ip netns exec` and `env` exec the host, so $! is the host itself (through a function, it
    # would be a subshell, and killing that would leave the host running).
    ip netns exec "$namespace" env SPIN_VARIABLE_DATABASE_URL="$database_url" SPIN_VARIABLE_DATABASE_HOST=127.0.0.1:15432 \
        SPIN_VARIABLE_REDIS_URL=redis://127.0.0.1:16379 SPIN_VARIABLE_REDIS_HOST=127.0.0.1:16379 \
        SPIN_VARIABLE_JWT_SECRET="$jwt_secret" SPIN_VARIABLE_ADMIN_TOKEN="$(secret)" \
        SPIN_VARIABLE_GRIP_SIG_KEY="$(secret)" SPIN_VARIABLE_BCRYPT_COST=4 \
        SPIN_VARIABLE_LOG_LEVEL=warn "$host_bin" up --from "$serving" --listen 127.0.0.1:13000 --quiet "$@" >"$data/host.log" 2>&1 &
    host_pid=$!
    for _ in $(seq 300); do grep -qsx ready "$data/host.log" && return 0; sleep 0.1; done
    die "the host did not start: $(cat "$data/host.log")"
}
stop_host() {
    kill "$host_pid" 2>/dev/null || die "the host had exited: $(tail -20 "$data/host.log")"
    wait "$host_pid" 2>/dev/null || true
    host_pid=""
}
jwt_secret=$(secret)

start_host "$manifest"
credentials='{"username":"stall","password":"a password for the stall"}'
in_namespace curl -sf -X POST http://127.0.0.1:13000/users/register -H 'content-type: application/json' \
    -d "$credentials" >/dev/null
token=$(in_namespace curl -sf -X POST http://127.0.0.1:13000/users/token -H 'content-type: application/json' \
    -d "$credentials" | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
stop_host

cat >"$data/me.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
function done(summary, latency, requests)
  io.write(string.format("RESULT %.1f %.2f %.2f %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
# Prints one result line per path of the host serving <manifest>, started with the flags after it.
measure() {
    local label=$1 serving=$2 path result
    shift 2
    start_host "$serving" "$@"
    for path in "${paths[@]}"; do
        result=$(in_namespace wrk -t1 -c1 -d5s --latency -s "$data/me.lua" "http://127.0.0.1:13000$path" \
            | sed -n 's/^RESULT //p')
        read -r rps p50 p99 errors <<<"$result"
        printf '%-52s %-18s %9s %8s %8s %7s\n' "$label" "$path" "$rps" "$p50" "$p99" "$errors"
    done
    stop_host
}
# Every response of the app states its length (shared::response::complete_reply): /users/me
# (JSON after a Postgres query), /openapi.yaml and / (static files). The host conformance probe
# answers as every response of the app did before: JSON without a length, so chunked; one after a
# Postgres query, one without.
app_paths=(/users/me /openapi.yaml /)
probe_paths=(/probe/pg/echo/1 /probe/variable/greeting)
probe_manifest=$PROJECT_ROOT/tests/components/conformance.spin.toml

# One row per serving mode and path.
measure_both() {
    paths=("${app_paths[@]}")
    measure "$1" "$manifest" "${@:2}"
    paths=("${probe_paths[@]}")
    measure "$1" "$probe_manifest" "${@:2}"
}

printf '\nOne kept-alive connection (wrk -c1), components from %s and the conformance probe\n' "$manifest"
printf '%-52s %-18s %9s %8s %8s %7s\n' "serving" "path" "req/s" "p50 ms" "p99 ms" "errors"
measure_both "host (TCP_NODELAY, coalesced writes)"
measure_both "--mimic-spin-sockets (as Spin 4.1 serves)" --mimic-spin-sockets
in_namespace ip route replace local 127.0.0.1 dev lo table local proto kernel scope host src 127.0.0.1 quickack 1
measure_both "--mimic-spin-sockets, client route quickack 1" --mimic-spin-sockets
