#!/usr/bin/env bash
# make help: the MongoDB store: native tests and the worker on SecantusDB
# The MongoDB store: SecantusDB (a MongoDB wire-protocol server from PyPI) and
# pymongo into .tools/venv, the store's native tests against a real server
# with authentication on (required here, skipped by `cargo test` when the
# server is not installed), then the worker under `wrangler dev` against it
# (edge/tests/mongo.test.mjs). Everything listens on 127.0.0.1 only.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
bash scripts/tools.sh rust node worker mongo
step "mongo: the store's native tests against SecantusDB"
FRESHET_REQUIRE_MONGO=1 FRESHET_SECANTUSD="$TOOLS/venv/bin/secantusd-py" with_clippy cargo test -p freshet-edge --lib store::mongo
step "mongo: npm tools (wrangler, esbuild, workerd)"
(cd edge && { [ -x node_modules/.bin/wrangler ] || npm install --no-audit --no-fund >/dev/null; })
step "mongo: build the worker"
build_worker
step "mongo: the worker under wrangler dev with the MongoDB store"
EDGE_DIR="$ROOT/edge" PYTHON="$TOOLS/venv/bin/python" SECANTUSD="$TOOLS/venv/bin/secantusd-py" \
  node --test --test-concurrency=1 edge/tests/mongo.test.mjs
