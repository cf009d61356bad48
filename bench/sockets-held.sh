#!/usr/bin/env bash
# Sockets held: 10,000 idle WebSockets (SOCKETS=N for another count) on one Pushpin node, the
# memory of Pushpin's and the app's processes, and fan-out to a 1,000-member room after holding
# them HOLD_SECONDS (35: past their first keep-alive re-checks). NODES=N and INSTANCES=N spread
# them over more Pushpin nodes and app instances; RECHECK_SECONDS=N sets the app's
# socket_recheck_interval_seconds. Prints figures.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"
source "$(dirname "$0")/../scripts/lib/services.sh"
cd "$PROJECT_ROOT"
apt_ensure pushpin
scripts/build-components.sh auth fintech chat chat-fanout health
cargo build --quiet --release -p sendinchat-host -p sendinchat-bench

data=.data/bench-sockets-held
trap 'stop_postgres "$data"; stop_redis "$data"' EXIT
start_postgres "$data" "$(free_port 15472)" yes
start_redis "$data" "$(free_port 16419)" no
ulimit -n "$(ulimit -Hn)"
SENDINCHAT_TEST_DATABASE_URL=$PG_ADMIN_URL SENDINCHAT_TEST_REDIS_URL=$REDIS_URL_LOCAL \
    SENDINCHAT_HOST_BIN=target/release/sendinchat-host target/release/sockets-held
