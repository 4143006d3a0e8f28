#!/usr/bin/env bash
# make help: seed 2's media spec in the worker (FRESHET_SPEC)
# Seed 2's media spec (examples/media/features.toml) in the worker under
# `wrangler dev`, on the Durable Object store: the repository's worker build,
# given the media spec in FRESHET_SPEC, driven over HTTP by
# edge/tests/media.test.mjs.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
bash scripts/tools.sh rust node worker
step "media: npm tools (wrangler, esbuild, workerd)"
(cd edge && { [ -x node_modules/.bin/wrangler ] || npm install --no-audit --no-fund >/dev/null; })
step "media: the worker (edge/build)"
build_worker
step "media: the worker under wrangler dev with the media spec, Durable Object store"
EDGE_DIR="$ROOT/edge" node --test --test-concurrency=1 edge/tests/media.test.mjs
