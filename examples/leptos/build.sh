#!/usr/bin/env bash
# Builds the example Rust web app into examples/leptos/dist/ without trunk:
# cargo (wasm32, release; the repository's target/ is shared) -> the
# wasm-bindgen CLI (web target) -> wasm-opt from npm's binaryen (not
# Debian's: see TOOLCHAIN.md), beside a static index.html. Serve dist/ with
# any static server that sends .wasm as application/wasm.
# SKIP_OPT=1 leaves the wasm as wasm-bindgen wrote it.
set -euo pipefail
source "$(dirname "$0")/../../scripts/env.sh"
HERE="$ROOT/examples/leptos"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
cd "$HERE"
sdk_rlib_build cargo build -q --release --target wasm32-unknown-unknown
# Under `make test`, scripts/prefetch.sh compiles ahead and stops here.
[ "${FRESHET_COMPILE_ONLY:-0}" = 1 ] && exit 0
# The CLI must be the crate's version exactly (Cargo.toml pins =0.2.130).
want=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)
have=$(wasm-bindgen --version | awk '{print $2}')
if [ "$want" != "$have" ]; then
  echo "wasm-bindgen CLI $have does not match the crate's $want (scripts/tools.sh rust installs it)" >&2
  exit 1
fi
OUT=dist
rm -rf "$OUT" && mkdir -p "$OUT"
wasm-bindgen --target web --no-typescript --remove-name-section --remove-producers-section \
  --out-dir "$OUT" --out-name app "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/freshet-leptos-example.wasm"
if [ "${SKIP_OPT:-0}" != 1 ]; then
  "$WASM_OPT_BIN" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue \
    "$OUT/app_bg.wasm" -o "$OUT/app_bg.wasm"
fi
cp index.html "$OUT/"
for f in "$OUT/app_bg.wasm" "$OUT/app.js"; do
  echo "built $f: $(wc -c < "$f") bytes, $(gzip -9 -c "$f" | wc -c) gzip -9" >&2
done
