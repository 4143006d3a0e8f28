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
TMP=$(mktemp -d)
cleanup() {
  [ -n "${REDIS_PORT:-}" ] && redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
REDIS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --pidfile "$TMP/redis.pid" --logfile "$TMP/redis.log"
for _ in $(seq 1 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
(cd python/bench && "$VENV/bin/python" drift_sampling.py "$REDIS_PORT" "$ROOT/features.toml" "$N")
# The edge: three workers (rates 0, 0.01, 1) on the same redis-server; needs edge/build.
(cd python/bench && "$VENV/bin/python" drift_edge.py "$REDIS_PORT" "$((N / 5))")
