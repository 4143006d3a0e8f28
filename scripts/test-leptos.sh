#!/usr/bin/env bash
# make help: the Leptos example app in Chromium against the edge
# The example Rust web app (examples/leptos: Leptos, tracking with
# freshet-sdk's `web` feature) in headless Chromium against the edge worker
# under `wrangler dev` (tests/e2e/leptos.test.mjs): exact counts through the
# serving API, across batches, a reload with events queued, and the edge
# down across a reload. The example is its own cargo workspace, so its
# format and lints are checked here. Builds what it needs first.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
bash scripts/tools.sh rust chromium node worker
step "leptos: format and lints of the example (its own workspace)"
cargo fmt --manifest-path examples/leptos/Cargo.toml -- --check
CARGO_TARGET_DIR="$ROOT/target" cargo clippy -q --manifest-path examples/leptos/Cargo.toml \
  --target wasm32-unknown-unknown -- -D warnings
step "leptos: the edge worker"
(cd edge && { [ -x node_modules/.bin/wrangler ] || npm install --no-audit --no-fund >/dev/null; })
build_worker
step "leptos: build the example (examples/leptos/dist)"
bash examples/leptos/build.sh
step "leptos: test dependencies (playwright-core) into tests/e2e/node_modules"
(cd tests/e2e && npm install --no-audit --no-fund --loglevel=error)
step "leptos: the app in headless Chromium, the edge under wrangler dev"
cd tests/e2e
node --test --test-concurrency=1 leptos.test.mjs
