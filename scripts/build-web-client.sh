#!/usr/bin/env bash
# Builds the web client (web/, a Preact app bundled by esbuild) into web/dist/ for the `web`
# component to embed. Its npm packages are installed into web/node_modules/ exactly as
# web/package-lock.json pins them (`npm ci`: versions and sha512 integrity hashes); both folders
# are git-ignored. scripts/build-components.sh calls it when it builds `web`.
#
#   scripts/build-web-client.sh [--install-only]
#
# Idempotent and quick: `npm ci` runs only when the lockfile changed since the last install, and
# the type check and bundle only when a source file changed since the last build (a hash of the
# inputs is kept in web/dist/.inputs), so a second run does nothing and needs no network.
# --install-only installs the packages (the end-to-end test needs playwright-core) and builds nothing.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$PROJECT_ROOT/web"

# esbuild, TypeScript and playwright-core need Node.js 20 or later.
command -v node >/dev/null || apt_ensure nodejs npm
node_major=$(node --version | sed 's/^v\([0-9]*\).*/\1/')
[ "$node_major" -ge 20 ] || die "Node.js $(node --version) is too old for the web client's build tools; install Node.js 20 or later"

lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.lock-sha256 2>/dev/null)" != "$lock_hash" ]; then
    log "installing the web client's npm packages (web/package-lock.json)"
    npm ci --no-audit --no-fund --loglevel=error >/dev/null || die "npm ci failed in web/"
    echo "$lock_hash" >node_modules/.lock-sha256
fi
[ "${1:-}" = --install-only ] && exit 0

inputs_hash=$(find src index.html build.mjs tsconfig.json package-lock.json -type f -print0 | sort -z \
    | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
if [ -f dist/files.json ] && [ "$(cat dist/.inputs 2>/dev/null)" = "$inputs_hash" ]; then
    exit 0
fi
log "type-checking and bundling the web client"
node_modules/.bin/tsc --noEmit -p . || die "the web client does not type-check"
node build.mjs >/dev/null
echo "$inputs_hash" >dist/.inputs
