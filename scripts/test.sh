#!/usr/bin/env bash
# The whole test suite, from a fresh machine of this project's kind: installs what is missing
# (wasm toolchain, Postgres, Redis), builds every component, checks formatting and lints, and
# runs unit and integration tests against real services and real wasm components.
#
# Uses SENDINCHAT_TEST_DATABASE_URL / SENDINCHAT_TEST_REDIS_URL when set; otherwise starts
# private instances under .data/test/ and stops them afterwards. SENDINCHAT_BASE_URL points the
# integration suite at an already-running app (e.g. real `spin up`) instead of the local host.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/services.sh"
cd "$PROJECT_ROOT"

data=.data/test
stop_started_services() {
    [ -n "${started_postgres:-}" ] && stop_postgres "$data"
    [ -n "${started_redis:-}" ] && stop_redis "$data"
    return 0
}
trap stop_started_services EXIT

log "building components"
scripts/build-components.sh
# The integration suite runs its own Pushpin instances in front of the app, and renders /docs
# in a headless Chromium.
apt_ensure pushpin chromium fonts-liberation

if [ -z "${SENDINCHAT_TEST_DATABASE_URL:-}" ]; then
    start_postgres "$data" "$(free_port 25432)" no
    started_postgres=1
    export SENDINCHAT_TEST_DATABASE_URL=$PG_ADMIN_URL
fi
if [ -z "${SENDINCHAT_TEST_REDIS_URL:-}" ]; then
    start_redis "$data" "$(free_port 26379)" no
    started_redis=1
    export SENDINCHAT_TEST_REDIS_URL=$REDIS_URL_LOCAL
fi

log "checking formatting and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked --quiet -- -D warnings

log "running tests"
cargo test --workspace --locked --quiet
scripts/fuzz.sh
