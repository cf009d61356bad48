#!/usr/bin/env bash
# Benchmarks the local Spin host on a trivial route (the probe component reading one variable,
# tests/components/conformance.spin.toml) at 1, 16 and 64 concurrent connections, next to a
# plain native hyper server answering the same bytes, in the same run. Prints requests/s and
# p50/p99 latency for both and the host/native ratio. Figures, not a pass/fail test.
#
#   bench/host.sh                        # 10 s per measurement
#   BENCH_DURATION=30 bench/host.sh      # longer runs
#   SENDINCHAT_HOST_BIN=/tmp/old-host bench/host.sh   # another build of the host, to compare
#
# Needs wrk (Debian package `wrk`), Redis (the conformance app's Redis trigger subscribes at
# start) and the test services' environment variables if they are not the defaults:
# SENDINCHAT_TEST_DATABASE_URL, SENDINCHAT_TEST_REDIS_URL. Builds everything in release mode.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"
cd "$PROJECT_ROOT"

duration=${BENCH_DURATION:-10}
connections=(1 16 64)
route=/probe/variable/greeting
# What the probe answers on $route; the native server answers exactly this.
body='{"value":"hello, world"}'
content_type=application/json
database_url=${SENDINCHAT_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
redis_url=${SENDINCHAT_TEST_REDIS_URL:-redis://127.0.0.1:6379}
target_dir=${CARGO_TARGET_DIR:-$PROJECT_ROOT/target}

command -v wrk >/dev/null || apt_ensure wrk

log "building the host, the native server and the probe (release)"
host_bin=${SENDINCHAT_HOST_BIN:-}
if [ -z "$host_bin" ]; then
    cargo build --quiet --release -p sendinchat-host
    host_bin=$target_dir/release/sendinchat-host
fi
cargo build --quiet --release --manifest-path bench/native-server/Cargo.toml --target-dir "$target_dir"
scripts/build-components.sh probe redis-recorder

workdir=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$workdir"
}
trap cleanup EXIT

# Starts "$@" in the background with stdout in $1.out and waits for its `listening on` line
# (and, for the host, `ready`); sets server_url. Not run in a subshell, so `pids` keeps the pid
# for cleanup.
start_server() {
    local name=$1
    shift
    "$@" >"$workdir/$name.out" 2>"$workdir/$name.err" &
    pids+=($!)
    local _
    for _ in $(seq 1 600); do
        if grep -q '^listening on ' "$workdir/$name.out" && { [ "$name" != host ] || grep -qx ready "$workdir/$name.out"; }; then
            server_url=$(sed -n 's/^listening on //p' "$workdir/$name.out")
            return 0
        fi
        kill -0 "${pids[-1]}" 2>/dev/null || { cat "$workdir/$name.err" >&2; die "$name exited during start-up"; }
        sleep 0.1
    done
    die "$name did not start"
}

start_server native "$target_dir/release/native-server" static 127.0.0.1:0 "$body" "$content_type"
native_url=$server_url
SPIN_VARIABLE_DATABASE_URL=$database_url SPIN_VARIABLE_REDIS_URL=$redis_url \
    start_server host "$host_bin" up \
        --from tests/components/conformance.spin.toml --listen 127.0.0.1:0 --quiet
host_url=$server_url

[ "$(curl -sS "$host_url$route")" = "$body" ] || die "the host's answer on $route is not $body"
[ "$(curl -sS "$native_url$route")" = "$body" ] || die "the native server's answer is not $body"

# wrk's latency distribution prints values like 85.00us, 1.20ms, 2.00s; convert to ms.
to_ms() {
    awk -v value="$1" 'BEGIN {
        unit = value; sub(/^[0-9.]+/, "", unit); number = value + 0
        if (unit == "us") number /= 1000; else if (unit == "s") number *= 1000
        printf "%.2f", number }'
}

# Runs wrk and prints "requests_per_second p50_ms p99_ms".
measure() {
    local url=$1 connections=$2 threads=$(( $2 < 2 ? $2 : 2 ))
    wrk -t"$threads" -c"$connections" -d2s "$url" >/dev/null # warm-up: instances, pools, caches
    local output
    output=$(wrk -t"$threads" -c"$connections" -d"${duration}s" --latency "$url")
    grep -q 'Non-2xx' <<<"$output" && die "non-2xx answers from $url"
    local rps p50 p99
    rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$output")
    p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$output")")
    p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$output")")
    echo "$rps $p50 $p99"
}

echo
echo "GET $route, ${duration}s per run, wrk on $(nproc) cores shared with both servers"
printf '%-12s | %-26s | %-26s | %-17s | %s\n' connections "host req/s  p50  p99 (ms)" "native req/s  p50  p99 (ms)" "host/native req/s" "load before"
for c in "${connections[@]}"; do
    # The 1-minute load average: on a shared machine, figures compare only at similar load.
    load=$(cut -d' ' -f1 /proc/loadavg)
    read -r host_rps host_p50 host_p99 < <(measure "$host_url$route" "$c")
    read -r native_rps native_p50 native_p99 < <(measure "$native_url$route" "$c")
    ratio=$(awk -v h="$host_rps" -v n="$native_rps" 'BEGIN { printf "%.2f", h / n }')
    printf '%-12s | %8s %7s %7s   | %8s %7s %7s     | %-17s | %s\n' \
        "$c" "$host_rps" "$host_p50" "$host_p99" "$native_rps" "$native_p50" "$native_p99" "$ratio" "$load"
done
