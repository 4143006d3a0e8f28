#!/usr/bin/env bash
# make help: the Rust tracker's web feature in Chromium (wasm-bindgen-test)
# The tracker for Rust web apps (sdk/, feature `web`) in headless Chromium:
# wasm-bindgen-test through Debian's chromedriver, against the tests'
# collector (tests/sdk/collector-server.mjs) started here.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
bash scripts/tools.sh rust node wasm chromedriver
# FRESHET_COMPILE_ONLY=1 (scripts/prefetch.sh) stops after what it compiles.
compile_only() { [ "${FRESHET_COMPILE_ONLY:-0}" = 1 ]; }

step "sdk web: lints of the wasm-only code (both drivers, the browser tests)"
cargo clippy -q -p freshet-sdk --target wasm32-unknown-unknown --features web,js --all-targets -- -D warnings

if compile_only; then
  cargo test -q -p freshet-sdk --features web --target wasm32-unknown-unknown --test web --no-run
  bash scripts/size-sdk-web.sh
  exit 0
fi

step "sdk web: the collector for the browser tests"
LOG=$(mktemp)
node tests/sdk/collector-server.mjs >"$LOG" 2>&1 &
COLLECTOR_PID=$!
trap 'kill $COLLECTOR_PID 2>/dev/null || true; rm -f "$LOG"' EXIT
for _ in $(seq 100); do [ -s "$LOG" ] && break; sleep 0.1; done
FRESHET_COLLECTOR=$(head -1 "$LOG")
case "$FRESHET_COLLECTOR" in http://127.0.0.1:*) ;; *) echo "collector did not start: $(cat "$LOG")" >&2; exit 1 ;; esac
echo "collector at $FRESHET_COLLECTOR"

step "sdk web: wasm-bindgen-test in headless Chromium"
# The runner reads sdk/webdriver.json (chromium's flags) from the crate dir.
FRESHET_COLLECTOR=$FRESHET_COLLECTOR \
CHROMEDRIVER=$(type -P chromedriver) \
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
WASM_BINDGEN_TEST_TIMEOUT=120 \
  cargo test -p freshet-sdk --features web --target wasm32-unknown-unknown --test web

step "sdk web: size budget of the tracker's part of a Rust web app (gzip -9)"
bash scripts/size-sdk-web.sh 64
