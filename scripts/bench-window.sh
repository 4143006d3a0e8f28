#!/usr/bin/env bash
# What a window's `precision` costs per entity in each store (issue 14,
# point 4): core/examples/entity_memory.rs fills a 7-day count window at the
# default precision and finer ones, through the Redis apply script on a
# redis-server it starts, the MongoDB update fields and the Durable Object's
# document. Writes the "Window precision" section of BENCHMARKS.md.
# NO_REPORT=1 prints the section instead of writing it.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
bash scripts/tools.sh rust redis >&2
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
cargo run -q --release -p freshet-core --features bson --example entity_memory -- window > "$OUT"
if [ -n "${NO_REPORT:-}" ]; then cat "$OUT"; else python3 scripts/bench_section.py window-precision < "$OUT"; cat "$OUT"; fi
