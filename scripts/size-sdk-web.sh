#!/usr/bin/env bash
# What the `web` feature weighs in a Rust web app: builds sdk/examples/web_size.rs
# (start, page view, typed event, identify, a JS payload) for the browser as an
# app would ship it (release, opt-level "z" for every crate, fat LTO,
# wasm-bindgen --target web, wasm-opt -Oz), prints gzip -9 sizes of the wasm
# and its JS glue, and the code bytes per crate (from a copy that keeps names).
# Fails above the budget: scripts/size-sdk-web.sh [budgetKB=64]
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
BUDGET_KB=${1:-64}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
OPT=(-Oz --converge --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext
  --enable-mutable-globals --enable-reference-types --enable-multivalue)
gz() { gzip -9c "$1" | wc -c; }
kb() { awk -v n="$1" 'BEGIN { printf "%.1f", n / 1024 }'; }
# build NAME [ENV...]: the example as an app ships it, into $OUT/NAME/.
build() {
  local name=$1
  shift
  sdk_rlib_build env "$@" cargo build -q --release -p freshet-sdk --example web_size --features web \
    --target wasm32-unknown-unknown --config 'profile.release.opt-level="z"'
  # Under `make test`, scripts/prefetch.sh compiles ahead and stops here.
  [ "${FRESHET_COMPILE_ONLY:-0}" = 1 ] && return 0
  mkdir -p "$OUT/$name"
  wasm-bindgen --target web --out-dir "$OUT/$name" --out-name app \
    target/wasm32-unknown-unknown/release/examples/web_size.wasm
  # Names kept, for the code-per-crate table: the full build's only.
  [ "$name" = full ] && "$WASM_OPT_BIN" "${OPT[@]}" -g "$OUT/$name/app_bg.wasm" -o "$OUT/$name/named.wasm"
  "$WASM_OPT_BIN" "${OPT[@]}" --strip-debug --strip-producers "$OUT/$name/app_bg.wasm" -o "$OUT/$name/app_bg.wasm"
}
build typed WEB_SIZE_TYPED_ONLY=1
build full
[ "${FRESHET_COMPILE_ONLY:-0}" = 1 ] && exit 0
typed=$(($(gz "$OUT/typed/app_bg.wasm") + $(gz "$OUT/typed/app.js")))
wasm=$(gz "$OUT/full/app_bg.wasm")
js=$(gz "$OUT/full/app.js")
total=$((wasm + js))
echo "freshet-sdk web (sdk/examples/web_size.rs): wasm $wasm B + JS glue $js B = $total B = $(kb $total) KB gzip -9 (budget $BUDGET_KB KB; wasm raw $(stat -c %s "$OUT/full/app_bg.wasm") B)"
echo "  without the JS payload (track_value, serde-wasm-bindgen): $typed B = $(kb $typed) KB"
echo "code per crate (the full build, names kept):"
node tests/sdk/wasm-crates.mjs "$OUT/full/named.wasm"
if [ "$total" -gt $((BUDGET_KB * 1024)) ]; then
  echo "size check FAILED: $(kb $total) KB is over the $BUDGET_KB KB budget" >&2
  exit 1
fi
