#!/usr/bin/env bash
# Training data on Spark (issue 26): a generated log (default 1M events, as
# plain NDJSON files) and entity rows (default 100k x 3 features) answered
# by one process and by freshet.spark on local[1] and local[2], time and
# peak memory per process kind, then every Spark row compared with the
# one-process frame (python/bench/training_spark.py). Writes the section
# NAME of BENCHMARKS.md (default training-spark-<events>).
# Usage: scripts/bench-training-spark.sh [events] [rows] [bot events]
#        NO_REPORT=1 prints the section instead of writing it.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
EVENTS=${1:-1000000}
ROWS=${2:-100000}
BOT=${3:-0}
suffix=""
if [ "$BOT" != 0 ]; then suffix="-bot"; fi
NAME=${NAME:-training-spark-$EVENTS$suffix}
bash scripts/tools.sh rust python java >&2
bash scripts/install-python.sh
VENV="$TOOLS/venv"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

step "training on Spark bench: $EVENTS events ($BOT of a bot), $ROWS rows"
OUT="$TMP/section.md"
(cd python/bench && "$VENV/bin/python" training_spark.py "$TMP" "$ROOT/features.toml" "$EVENTS" "$ROWS" "$BOT") > "$OUT"
if [ -n "${NO_REPORT:-}" ]; then cat "$OUT"; else python3 scripts/bench_section.py "$NAME" < "$OUT"; cat "$OUT"; fi
