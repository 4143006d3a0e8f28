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
# FRESHET_COMPILE_ONLY=1 (scripts/prefetch.sh) stops after what it compiles.
compile_only() { [ "${FRESHET_COMPILE_ONLY:-0}" = 1 ]; }
if compile_only; then
  with_clippy bash examples/leptos/build.sh
  exit 0
fi
step "leptos: format of the example (its own workspace)"
cargo fmt --manifest-path examples/leptos/Cargo.toml -- --check
step "leptos: the edge worker"
(cd edge && { [ -x node_modules/.bin/wrangler ] || npm install --no-audit --no-fund >/dev/null; })
build_worker
# Its lints come with its build (with_clippy, -D warnings), not a second
# compile of Leptos by `cargo clippy`.
step "leptos: build the example with clippy's lints (examples/leptos/dist)"
with_clippy bash examples/leptos/build.sh
step "leptos: test dependencies (playwright-core) into tests/e2e/node_modules"
(cd tests/e2e && npm install --no-audit --no-fund --loglevel=error)
step "leptos: the app in headless Chromium, the edge under wrangler dev"
cd tests/e2e
node --test --test-concurrency=1 leptos.test.mjs
