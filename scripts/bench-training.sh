#!/usr/bin/env bash
# Training data (issue 13, point 7): a generated event log (default 1M
# events) replayed into point-in-time rows (default 100k x 3 features) by
# freshet's replay, from the NDJSON stream the export route sends and from a
# folder of gzipped log objects (python/bench/training.py), and for
# orientation Feast's get_historical_features on 1,000 of the rows over
# feature rows precomputed from the same log (feast_training.py, in
# .tools/feast-venv). Writes the
# "Training data" section of BENCHMARKS.md.
# Usage: scripts/bench-training.sh [events, default $EVENTS or 1000000] [rows, default $ROWS or 100000]
#        NO_REPORT=1 prints the section instead of writing it.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
EVENTS=${1:-${EVENTS:-1000000}}
ROWS=${2:-${ROWS:-100000}}
bash scripts/tools.sh rust python feast >&2
VENV=${FRESHET_VENV:-$TOOLS/venv}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

step "training bench: the wheel (maturin) into $VENV"
(cd python && "$VENV/bin/maturin" build --quiet --out "$TMP/wheels")
"$VENV/bin/pip" install -q --force-reinstall --no-deps "$TMP"/wheels/freshet-*.whl
rm -rf "$TMP/wheels"

step "training bench: $EVENTS events, $ROWS rows"
OUT="$TMP/section.md"
(cd python/bench && FEAST_PYTHON="$TOOLS/feast-venv/bin/python" "$VENV/bin/python" training.py "$TMP" "$ROOT/features.toml" "$EVENTS" "$ROWS") > "$OUT"
if [ -n "${NO_REPORT:-}" ]; then cat "$OUT"; else python3 scripts/bench_section.py training-data < "$OUT"; cat "$OUT"; fi
