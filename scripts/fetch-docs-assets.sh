#!/usr/bin/env bash
# Unpacks the npm packages the `docs` component embeds (Swagger UI and ReDoc) into
# components/docs/vendor/<package>/ (git-ignored), at pinned versions whose tarballs must match
# pinned integrity hashes (the registry's sha512 `dist.integrity`), so a build embeds exactly
# the reviewed files. scripts/build-components.sh calls it when it builds `docs`.
#
# Idempotent: a package whose stamp names the pinned version and hash is left alone, so a second
# run does nothing and needs no network.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

# package, version, sha512 integrity of its tarball. Upgrading: change the version, take the new
# hash from `npm view <package>@<version> dist.integrity`, and review what the bundle does.
# ReDoc stays on 2.x: 3.x lays the reference out as separate pages and ships a telemetry client.
PACKAGES=(
    "swagger-ui-dist 5.35.0 sha512-U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/EZbAhw0G8CgwrzU4YmXkn/h0wCDNsXdGarTNNHC3sU8yVUQ=="
    "redoc 2.5.4 sha512-M6jWhG1qoBnH6TFmzJnstyCZ87HmOY/UzDm78mHiYihEdlV/YcS9ogOo1NlElnJMeLsyxHFe2yFc4sNjHTrABQ=="
)

vendor=$PROJECT_ROOT/components/docs/vendor
for entry in "${PACKAGES[@]}"; do
    read -r name version integrity <<<"$entry"
    target=$vendor/$name
    stamp="$name@$version $integrity"
    if [ -f "$target/.stamp" ] && [ "$(cat "$target/.stamp")" = "$stamp" ]; then
        continue
    fi
    command -v npm >/dev/null || apt_ensure npm
    log "fetching $name@$version from the npm registry"
    download=$(mktemp -d)
    trap 'rm -rf "$download"' EXIT
    (cd "$download" && npm pack --silent --loglevel=error "$name@$version" >/dev/null) \
        || die "npm pack $name@$version failed"
    tarball=$download/$name-$version.tgz
    actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
    [ "$actual" = "$integrity" ] || die "$name@$version: tarball hash $actual, expected $integrity"
    rm -rf "$target"
    mkdir -p "$target"
    tar -xzf "$tarball" -C "$target" --strip-components=1 package/
    echo "$stamp" >"$target/.stamp"
    rm -rf "$download"
    trap - EXIT
done
