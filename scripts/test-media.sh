#!/usr/bin/env bash
# make help: seed 2's media spec compiled into the worker
# Seed 2's media spec (examples/media/features.toml) in the worker under
# `wrangler dev`, on the Durable Object store: builds the worker with that
# spec compiled in, into edge/build-media/ (edge/build/ keeps the
# repository's spec), then edge/tests/media.test.mjs drives it over HTTP.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
bash scripts/tools.sh rust node worker
step "media: npm tools (wrangler, esbuild, workerd)"
(cd edge && { [ -x node_modules/.bin/wrangler ] || npm install --no-audit --no-fund >/dev/null; })
step "media: build the worker with examples/media/features.toml"
build_worker media
step "media: the worker under wrangler dev with the Durable Object store"
EDGE_DIR="$ROOT/edge" FRESHET_EDGE_BUILD=build-media node --test --test-concurrency=1 edge/tests/media.test.mjs
