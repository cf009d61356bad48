#!/usr/bin/env bash
# Chat fan-out across two app instances and two Pushpin nodes (100 members, half on each node):
# latency from send to receipt per node. Prints figures.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"
source "$(dirname "$0")/../scripts/lib/services.sh"
cd "$PROJECT_ROOT"
apt_ensure pushpin
scripts/build-components.sh auth fintech chat chat-fanout health
cargo build --quiet --release -p sendinchat-host -p sendinchat-bench

data=.data/bench-fanout-nodes
trap 'stop_postgres "$data"; stop_redis "$data"' EXIT
start_postgres "$data" "$(free_port 15462)" yes
start_redis "$data" "$(free_port 16409)" no
ulimit -n "$(ulimit -Hn)"
SENDINCHAT_TEST_DATABASE_URL=$PG_ADMIN_URL SENDINCHAT_TEST_REDIS_URL=$REDIS_URL_LOCAL \
    SENDINCHAT_HOST_BIN=target/release/sendinchat-host target/release/fanout-nodes
