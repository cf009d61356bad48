#!/usr/bin/env bash
# The whole test suite, from a fresh machine of this project's kind: installs what is missing
# (wasm toolchain, Postgres, Redis, Pushpin, Chromium, schemathesis), builds every component,
# checks formatting and lints, and runs unit and integration tests against real services and real
# wasm components, then fuzzes the API against its contract. Ends with the seconds each phase took.
#
# Uses SENDINCHAT_TEST_DATABASE_URL / SENDINCHAT_TEST_REDIS_URL when set; otherwise starts
# private instances under .data/test/ and stops them afterwards. SENDINCHAT_BASE_URL points the
# integration suite at an already-running app (e.g. real `spin up`) instead of the local host.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/services.sh"
cd "$PROJECT_ROOT"

# The suite holds many sockets at once (idle-connection and fan-out tests): the hard limit, not a
# 1,024 soft default.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || log "cannot raise the open-file limit past $(ulimit -n)"

data=.data/test
target_dir=${CARGO_TARGET_DIR:-$PROJECT_ROOT/target}

# Phase timings, printed on every exit so a failed run still shows where its time went.
phase_names=()
phase_milliseconds=()
phase_name=""
phase_started_ms=0
phase() {
    end_phase
    phase_name=$1
    phase_started_ms=$(date +%s%3N)
    log "$phase_name"
}
end_phase() {
    [ -n "$phase_name" ] || return 0
    phase_names+=("$phase_name")
    phase_milliseconds+=($(($(date +%s%3N) - phase_started_ms)))
    phase_name=""
}
print_timings() {
    end_phase
    local index total_ms=0
    printf '\n%-58s %8s\n' "phase" "seconds" >&2
    for index in "${!phase_names[@]}"; do
        print_timing "${phase_names[$index]}" "${phase_milliseconds[$index]}"
        total_ms=$((total_ms + phase_milliseconds[index]))
    done
    print_timing "total" "$total_ms"
}
print_timing() { printf '%-58s %6d.%d\n' "$1" $(($2 / 1000)) $(($2 % 1000 / 100)) >&2; }

stop_started_services() {
    local status=$?
    [ -n "${started_postgres:-}" ] && stop_postgres "$data"
    [ -n "${started_redis:-}" ] && stop_redis "$data"
    print_timings
    return "$status"
}
trap stop_started_services EXIT

phase "installs (Debian packages, npm assets, schemathesis)"
# The integration suite runs its own Pushpin instances in front of the app, and renders /docs and
# drives the web client (Node.js, playwright-core) in a headless Chromium; the wasm toolchain and
# the npm packages are installed by build-components.sh.
apt_ensure pushpin chromium fonts-liberation postgresql-client
scripts/build-components.sh --install-only
scripts/fuzz.sh --install-only

phase "services (Postgres, Redis)"
if [ -z "${SENDINCHAT_TEST_DATABASE_URL:-}" ]; then
    start_postgres "$data" "$(free_port 25432)" no
    started_postgres=1
    export SENDINCHAT_TEST_DATABASE_URL=$PG_ADMIN_URL
    # The root that issued the cluster's TLS certificate, for the migration tool's TLS tests.
    export SENDINCHAT_TEST_POSTGRES_ROOT_CERT=$PG_TLS_ROOT_CERT
fi
if [ -z "${SENDINCHAT_TEST_REDIS_URL:-}" ]; then
    start_redis "$data" "$(free_port 26379)" no
    started_redis=1
    export SENDINCHAT_TEST_REDIS_URL=$REDIS_URL_LOCAL
fi

phase "wasm build (components, release)"
scripts/build-components.sh

phase "formatting"
cargo fmt --all --check

# One native build serves clippy, the unit tests, the integration suite and the binaries they run:
# clippy-driver stands in for rustc on the workspace's own crates (what `cargo clippy` does, but
# producing code instead of only checking), so the large dependency tree (wasmtime) is compiled
# once, not once for `cargo clippy` and again for `cargo test`. Every later cargo call selects the
# same packages and targets, so feature unification is the same and nothing is rebuilt; tests and
# scripts get the binaries by path rather than building them with another package selection.
export RUSTC_WORKSPACE_WRAPPER=clippy-driver
# How `cargo clippy -- -D warnings` hands its arguments to clippy-driver.
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
phase "native build with clippy lints (host, migrate, tests)"
cargo build --workspace --tests --bins --locked --quiet
export SENDINCHAT_HOST_BIN=$target_dir/debug/sendinchat-host
export SENDINCHAT_MIGRATE_BIN=$target_dir/debug/sendinchat-migrate

phase "compiling components to native code (host cache)"
"$SENDINCHAT_HOST_BIN" compile --from spin.toml
"$SENDINCHAT_HOST_BIN" compile --from tests/components/conformance.spin.toml

phase "unit tests"
cargo test --workspace --locked --quiet --lib --bins

phase "integration tests (suite, migrations)"
# Every secret the suite handles and every line its processes log, for the scan that follows.
export SENDINCHAT_TEST_LOG_DIR=$PROJECT_ROOT/$data/logs
rm -rf "$SENDINCHAT_TEST_LOG_DIR" && mkdir -p "$SENDINCHAT_TEST_LOG_DIR"
cargo test --workspace --locked --quiet --test '*'

phase "log scan (no secret the suite used in any log line)"
scripts/scan-test-logs.sh "$SENDINCHAT_TEST_LOG_DIR"

phase "fuzz (schemathesis against openapi.yaml)"
scripts/fuzz.sh
