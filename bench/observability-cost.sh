#!/usr/bin/env bash
# What request logs and metrics cost: POST /fintech/transfer (uniform mix, 16 connections)
# through the whole stack with both off (`--quiet --no-metrics`) and both on (the run command's
# defaults: a JSON line per request from the component and one from the host, Prometheus metrics
# served and scraped once a second), alternating the two modes on the same data.
#
#   bench/observability-cost.sh      (BENCH_DURATION=20 seconds per run, BENCH_ROUNDS=3)
#
# Prints transfers/s of every run, the median of each mode and the ratio on/off. Figures, not a
# pass/fail test; the target (issue 15) is a ratio of at least 0.95.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"
source "$(dirname "$0")/../scripts/lib/services.sh"
source "$(dirname "$0")/lib/transfer-load.sh"
cd "$PROJECT_ROOT"
apt_ensure wrk curl bc

duration=${BENCH_DURATION:-20}
rounds=${BENCH_ROUNDS:-3}
users=200
connections=16
data=.data/bench-observability
work=$(mktemp -d)
app_port=$(free_port 18280)
ws_port=$(free_port 18290)
metrics_port=$(free_port 18299)
base=http://127.0.0.1:$app_port
scraper_pid=

stop_all() {
    [ -z "$scraper_pid" ] || kill "$scraper_pid" 2>/dev/null || true
    stop_system
}
trap 'stop_all; rm -rf "$work"' EXIT

rm -rf "$data"
start_system "$data" "$app_port" "$ws_port" "$work/setup.log" --quiet --no-metrics
source "$data/secrets.env"
log "creating and funding $users users"
create_funded_users "$base" "$users" "$ADMIN_TOKEN" "$work/tokens.lua"
write_transfer_lua "$work/tokens.lua" "$users" "$work/transfer.lua"
stop_system

# run_mode <off|on>: one timed run; prints transfers/s.
run_mode() {
    local mode=$1 flags=(--quiet --no-metrics)
    [ "$mode" = on ] && flags=(--metrics-port "$metrics_port")
    start_system "$data" "$app_port" "$ws_port" "$work/run-$mode.log" "${flags[@]}"
    if [ "$mode" = on ]; then
        # A Prometheus-like scraper, so the cost of rendering the metrics is in the figure too.
        (while sleep 1; do curl -sf "http://127.0.0.1:$metrics_port/metrics" >/dev/null || true; done) &
        scraper_pid=$!
    fi
    local result errors
    result=$(wrk_transfers "$base" "$connections" 0 "$duration" "$work/transfer.lua")
    [ -z "$scraper_pid" ] || { kill "$scraper_pid" 2>/dev/null || true; scraper_pid=; }
    stop_system
    read -r tps _ _ status_errors socket_errors <<<"$result"
    errors=$((status_errors + socket_errors))
    [ "$errors" = 0 ] || log "warning: $errors errors in the $mode run"
    echo "$tps"
}

median() { sort -n | awk '{ value[NR] = $1 } END { print (NR % 2) ? value[(NR + 1) / 2] : (value[NR / 2] + value[NR / 2 + 1]) / 2 }'; }

off_runs=() on_runs=()
for round in $(seq "$rounds"); do
    off_runs+=("$(run_mode off)")
    on_runs+=("$(run_mode on)")
    log "round $round: off ${off_runs[-1]} transfers/s, on ${on_runs[-1]} transfers/s"
done
off=$(printf '%s\n' "${off_runs[@]}" | median)
on=$(printf '%s\n' "${on_runs[@]}" | median)
printf '\nlogs and metrics off: %s transfers/s (runs: %s)\n' "$off" "${off_runs[*]}"
printf 'logs and metrics on:  %s transfers/s (runs: %s)\n' "$on" "${on_runs[*]}"
printf 'ratio on/off: %.3f   (%s connections, uniform mix, %ss per run; load average %s)\n' \
    "$(echo "$on / $off" | bc -l)" "$connections" "$duration" "$(cut -d' ' -f1-3 /proc/loadavg)"
