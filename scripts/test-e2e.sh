#!/usr/bin/env bash
# make help: the shop in Chromium against the edge (DO and Redis), the ranker loop
# End-to-end tests across every part (tests/e2e/shop.test.mjs): headless
# Chromium clicks through the built example shop (examples/nuxt), whose
# tracker sends through the shop's /api/ingest to the edge under `wrangler
# dev`, with the Durable Object store and with a real redis-server on a free
# port; features are read back through the serving API, from Redis and from
# the shop's panel; then the Python package's `freshet consistency` replays
# the event log and compares it with what the store serves (100%). Builds what it needs
# first (skipping what is current). Then the loop (tests/e2e/recommend.test.mjs):
# a ranker trained from generated traffic, served by KServe, orders the
# shop's "Recommended for you" row. Everything listens on 127.0.0.1.
# E2E_STORES=redis runs one store only; the shop then runs once more on Redis
# and on the Durable Object in the queue pipeline (FRESHET_PIPELINE=queue),
# or on the stores E2E_QUEUE_STORES names (empty: none).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
bash scripts/tools.sh rust redis chromium node worker python
source scripts/lib-shop.sh
build_shop_stack
# `freshet consistency` checks the log's replay against what was served.
bash scripts/install-python.sh
step "e2e: test dependencies (playwright-core) into tests/e2e/node_modules"
(cd tests/e2e && npm install --no-audit --no-fund --loglevel=error)
step "e2e: the shop in headless Chromium, the edge under wrangler dev, Durable Object store and Redis"
cd tests/e2e
read -ra files <<<"${E2E_FILES:-shop.test.mjs recommend.test.mjs}"
node --test --test-concurrency=1 "${files[@]}"
