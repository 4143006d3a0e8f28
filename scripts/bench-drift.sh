#!/usr/bin/env bash
# What drift sampling costs the Python reader's Redis read (issue 15, part
# 1), in one run on one redis-server: sampling off, at the default 1 %, and on
# every read, side by side (python/bench/drift_sampling.py). Prints JSON lines.
# The freshet package is the one on PYTHONPATH or in .tools/venv.
# Usage: scripts/bench-drift.sh [calls per rate, default 5000]
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
N=${1:-5000}
VENV="$TOOLS/venv"
own_redis
(cd python/bench && "$VENV/bin/python" drift_sampling.py "$REDIS_PORT" "$ROOT/features.toml" "$N")
# The edge: three workers (rates 0, 0.01, 1) on the same redis-server; needs edge/build.
(cd python/bench && "$VENV/bin/python" drift_edge.py "$REDIS_PORT" "$((N / 5))")
