#!/usr/bin/env bash
# make help: the npm package in Chromium, its size budget, the Nuxt module
# The browser tracker (sdk/) and the npm package `freshet` (npm/): build the
# package, the tracker's native unit tests, the 20 KB size budget, then the
# package in headless Chromium against a local collector, and the Nuxt module
# (server-rendered HTML loads no wasm; /api/ingest forwards to the edge).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
bash scripts/tools.sh rust node wasm chromium
# FRESHET_COMPILE_ONLY=1 (scripts/prefetch.sh) stops after what it compiles.
compile_only() { [ "${FRESHET_COMPILE_ONLY:-0}" = 1 ]; }

step "sdk: build the npm package (cargo -> wasm-bindgen -> wasm-opt)"
bash npm/build.sh

step "sdk: native unit tests of the tracker's logic"
# Built as scripts/test-core.sh built them (with clippy), so not again.
if compile_only; then
  with_clippy cargo test -q -p freshet-sdk --no-run
  exit 0
fi
with_clippy cargo test -q -p freshet-sdk

step "sdk: test dependencies (playwright-core, esbuild) into tests/sdk/node_modules"
# npm install, not npm ci: see ../shared/TOOLCHAIN.md on npm 11 lockfiles.
(cd tests/sdk && npm install --no-audit --no-fund --loglevel=error)

step "sdk: size budget (JS + wasm, gzip -9)"
node tests/sdk/size.mjs 20

step "sdk: package and browser tests (headless Chromium, local collector)"
cd tests/sdk
node --test --test-concurrency=1 server.test.mjs types.test.mjs browser.test.mjs
if [ "${FRESHET_SKIP_NUXT:-0}" != 1 ]; then
  step "sdk: Nuxt module (build a fixture app, SSR HTML, /api/ingest)"
  node --test --test-concurrency=1 nuxt.test.mjs
fi
