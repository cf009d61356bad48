# Shared helpers for the project's scripts. Source it; do not run it.
# shellcheck shell=bash

PROJECT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export PROJECT_ROOT

log() { printf '\033[1m[%s]\033[0m %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Installs the named Debian packages that are not installed yet. A no-op (and no apt-get call)
# when all of them are present, so scripts can call it on every run.
apt_ensure() {
    local missing=()
    local package
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    command -v apt-get >/dev/null || die "apt-get not found; install ${missing[*]} by hand"
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
}

# migrate <database url>: applies sql/ with $SENDINCHAT_MIGRATE_BIN when set (the test command
# passes the binary it built), otherwise through cargo.
migrate() {
    if [ -n "${SENDINCHAT_MIGRATE_BIN:-}" ]; then
        "$SENDINCHAT_MIGRATE_BIN" --database-url "$1" --dir "$PROJECT_ROOT/sql"
    else
        cargo run --quiet -p sendinchat-migrate -- --database-url "$1" --dir "$PROJECT_ROOT/sql"
    fi
}
