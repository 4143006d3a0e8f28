#!/usr/bin/env bash
# Freshness: from a click in the browser to the value visible in the serving
# API, p50 and p99 over 200 clicks (or $1), with each store: the Durable
# Object (default), Redis (a redis-server on a free port) and MongoDB's wire
# protocol (SecantusDB from .tools/venv). Headless Chromium in the built
# example shop; the edge under `wrangler dev`. Writes the `freshness` section
# of BENCHMARKS.md. Measured, not asserted. Everything on 127.0.0.1.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
CLICKS=${1:-200}
STORES=${FRESHNESS_STORES:-durable-object,redis,mongo}
# FRESHNESS_PIPELINES=direct,queue and FRESHNESS_LEADING_EDGE=on measure the
# queue pipeline beside the direct one (tests/e2e/freshness.mjs), into the
# section FRESHNESS_SECTION (BENCHMARKS "Pipeline" takes pipeline-freshness).
SECTION=${FRESHNESS_SECTION:-freshness}
bash scripts/tools.sh rust redis chromium node worker mongo
source scripts/lib-shop.sh
build_shop_stack
(cd tests/e2e && npm install --no-audit --no-fund --loglevel=error)
step "freshness: $CLICKS clicks per store ($STORES; pipelines ${FRESHNESS_PIPELINES:-direct})"
out=$(mktemp)
(cd tests/e2e && SECANTUSD="$TOOLS/venv/bin/secantusd-py" node freshness.mjs "$CLICKS" "$STORES") | tee "$out"
knobs=$(env | grep -E '^FRESHNESS_(STORES|PIPELINES|LEADING_EDGE|SECTION)=' | sort | tr '\n' ' ' || true)
node tests/e2e/freshness-report.mjs "${knobs}bash scripts/bench-freshness.sh $*" < "$out" | python3 scripts/bench_section.py "$SECTION"
rm -f "$out"
step "freshness: written to BENCHMARKS.md (section $SECTION)"
