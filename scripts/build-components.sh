#!/usr/bin/env bash
# Builds the Spin components (every `cdylib` crate in the workspace, or the packages named as
# arguments) for wasm32-wasip2 in release mode, into target/wasm32-wasip2/release/.
#
# Two routes, chosen automatically:
#   - rustup has the wasm32-wasip2 target: the ordinary `cargo build --target wasm32-wasip2`;
#   - otherwise Debian's rustc-web toolchain builds std itself (-Zbuild-std) and links with
#     wasi-libc and lld. See docs in README.md ("Building").
# Running it twice does no work the second time: package checks are dpkg queries and cargo's
# own fingerprints skip unchanged crates. `--install-only` installs the toolchain and fetches the
# npm packages (docs assets, the web client's), and builds nothing.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$PROJECT_ROOT"

rustup_has_wasm_target() {
    command -v rustup >/dev/null && rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2
}

if [ "${1:-}" = --install-only ]; then
    rustup_has_wasm_target || apt_ensure rustc-web cargo-web rust-web-src wasi-libc lld-16
    scripts/fetch-docs-assets.sh
    scripts/build-web-client.sh --install-only
    exit 0
fi

wasm_packages() {
    local manifest
    for manifest in components/*/Cargo.toml tests/components/*/Cargo.toml; do
        [ -f "$manifest" ] && grep -q 'crate-type = \["cdylib"\]' "$manifest" \
            && sed -n 's/^name = "\(.*\)"/\1/p' "$manifest" | head -n 1
    done
}

# The test command lints its native build through clippy-driver; the wasm build is not linted
# (the same crates are, natively) and must run plain rustc, whose standard library it builds.
unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS

if [ $# -gt 0 ]; then packages=("$@"); else mapfile -t packages < <(wasm_packages); fi
package_flags=()
for package in "${packages[@]}"; do package_flags+=(-p "$package"); done
# The docs component embeds npm packages (Swagger UI, ReDoc), unpacked before it compiles; the
# web component embeds the web client, built from web/ before it compiles.
if [[ " ${packages[*]} " == *" docs "* ]]; then scripts/fetch-docs-assets.sh; fi
if [[ " ${packages[*]} " == *" web "* ]]; then scripts/build-web-client.sh; fi

if rustup_has_wasm_target; then
    cargo build --quiet --release --target wasm32-wasip2 "${package_flags[@]}"
else
    apt_ensure rustc-web cargo-web rust-web-src wasi-libc lld-16
    # /usr/bin first: rustup's cargo and rustc in ~/.cargo/bin would otherwise shadow Debian's.
    PATH=/usr/lib/llvm-16/bin:/usr/bin:$PATH \
    RUSTC=/usr/bin/rustc \
    RUSTFLAGS="-L /usr/lib/wasm32-wasi" \
    RUSTC_BOOTSTRAP=1 \
        /usr/bin/cargo build --quiet --release --target wasm32-wasip2 \
            -Zbuild-std=std,panic_abort "${package_flags[@]}"
fi

# Spin resolves `source` paths relative to spin.toml, so the artifacts must exist under ./target
# even when CARGO_TARGET_DIR points at a shared cache elsewhere.
target_dir=${CARGO_TARGET_DIR:-$PROJECT_ROOT/target}
if [ "$(realpath -m "$target_dir")" != "$PROJECT_ROOT/target" ]; then
    mkdir -p target/wasm32-wasip2/release
    for package in "${packages[@]}"; do
        cp -u "$target_dir/wasm32-wasip2/release/${package//-/_}.wasm" target/wasm32-wasip2/release/
    done
fi
