#!/usr/bin/env bash
# Chat fan-out latency (rooms of 10, 100 and 1,000 WebSocket subscribers, through Redis, the
# chat-fanout trigger and Pushpin; the 1,000-member room also at a quarter of the send rate) and
# messages persisted per second. Prints figures, with the slowest delivery of the first and the
# last message: when the last is far slower, deliveries queued (the machine was saturated).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"
source "$(dirname "$0")/../scripts/lib/services.sh"
cd "$PROJECT_ROOT"
apt_ensure pushpin
scripts/build-components.sh auth fintech chat chat-fanout health
cargo build --quiet --release -p sendinchat-host -p sendinchat-bench

data=.data/bench-fanout
trap 'stop_postgres "$data"; stop_redis "$data"' EXIT
start_postgres "$data" "$(free_port 15452)" yes
start_redis "$data" "$(free_port 16399)" no
# A thousand sockets, each a file descriptor in this process and in Pushpin.
ulimit -n "$(ulimit -Hn)"
SENDINCHAT_TEST_DATABASE_URL=$PG_ADMIN_URL SENDINCHAT_TEST_REDIS_URL=$REDIS_URL_LOCAL \
    SENDINCHAT_HOST_BIN=target/release/sendinchat-host target/release/fanout
