#!/usr/bin/env bash
# Builds the worker into edge/build/ with worker-build, offline: the
# wasm-bindgen CLI, wasm-opt and esbuild are the ones scripts/tools.sh and
# npm installed, never downloads. Usage: edge/build.sh [--dev]
# FRESHET_FEATURES names the spec to compile in, FRESHET_BUILD_DIR (relative
# to edge/) where to build: the tests build a second worker with a changed
# spec this way.
set -euo pipefail
cd "$(dirname "$0")"
source ../scripts/env.sh
[ -x node_modules/.bin/wrangler ] || npm install --no-audit --no-fund >/dev/null
WASM_BINDGEN_BIN=$(command -v wasm-bindgen)
export WASM_BINDGEN_BIN WASM_OPT_BIN
export ESBUILD_BIN="$PWD/node_modules/@esbuild/linux-x64/bin/esbuild"
# The feature spec compiled in; relative to edge/ or absolute.
export FRESHET_FEATURES=${FRESHET_FEATURES:-../features.toml}
OUT=${FRESHET_BUILD_DIR:-build}
if [ "${1:-}" = "--dev" ]; then
  worker-build --dev -d "$OUT"
else
  worker-build --release -d "$OUT"
fi
wasm=$OUT/index_bg.wasm
[ -f "$wasm" ] || wasm=$(find "$OUT" -maxdepth 1 -name "*.wasm" | head -1)
echo "built $wasm: $(wc -c < "$wasm") bytes, $(gzip -9 -c "$wasm" | wc -c) gzipped" >&2
