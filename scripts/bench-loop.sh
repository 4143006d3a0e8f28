#!/usr/bin/env bash
# The loop's benchmark (tests/e2e/loop-bench.mjs): the ranker trained from
# generated traffic with fresh and with twice-daily features, on the same
# held-out decisions, and click → changed prediction p50/p99 in headless
# Chromium. Writes the `loop` section of BENCHMARKS.md. Usage:
# bash scripts/bench-loop.sh [CLICKS] [VISITORS]. Everything on 127.0.0.1.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
CLICKS=${1:-50}
VISITORS=${2:-800}
bash scripts/tools.sh rust redis chromium node worker python
source scripts/lib-shop.sh
build_shop_stack
bash scripts/install-python.sh
(cd tests/e2e && npm install --no-audit --no-fund --loglevel=error)
step "loop: $VISITORS visitors of traffic, training, then $CLICKS clicks"
out=$(mktemp)
(cd tests/e2e && node loop-bench.mjs "$CLICKS" "$VISITORS" "bash scripts/bench-loop.sh $*") > "$out"
python3 scripts/bench_section.py loop < "$out"
cat "$out"
rm -f "$out"
step "loop: written to BENCHMARKS.md (section loop)"
