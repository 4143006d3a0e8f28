#!/usr/bin/env bash
# make help: the worker under wrangler dev, Durable Object and Redis stores
# The edge worker under workerd: builds it (worker-build, offline), then
# edge/tests/worker.test.mjs starts `wrangler dev` (Durable Object store, then
# a real redis-server on a free port) and drives it over HTTP. Everything
# listens on 127.0.0.1 only. The native unit and Redis tests of the crate run
# in `cargo test --workspace`.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
bash scripts/tools.sh rust redis node worker
step "edge: npm tools (wrangler, esbuild, workerd)"
(cd edge && { [ -x node_modules/.bin/wrangler ] || npm install --no-audit --no-fund >/dev/null; })
step "edge: build the worker"
build_worker
step "edge: the worker under wrangler dev, with the Durable Object store and with Redis"
EDGE_DIR="$ROOT/edge" node --test --test-concurrency=1 edge/tests/worker.test.mjs
