#!/usr/bin/env bash
# The Python reader (issue 12, point 7), in-process, in one run: one
# redis-server and one SecantusDB on free 127.0.0.1 ports, the state seeded in
# Freshet's layout (python/bench/seed.py); freshet sync and async beside raw
# redis-py / pymongo reading the same keys (the floor), then Feast's SDK
# (`get_online_features`, .tools/feast-venv) on the same values in the same
# redis-server, side by side with freshet (the same wheel, installed into the
# Feast venv too). One user x five features, and one user + 100 items. Writes
# the "Python reader" section of BENCHMARKS.md.
# Usage: scripts/bench-python.sh [calls per row, default $N or 3000]
#        NO_REPORT=1 prints the section instead of writing it.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
N=${1:-${N:-3000}}
bash scripts/tools.sh rust redis mongo python feast >&2
VENV="$TOOLS/venv"
FEAST_PY="$TOOLS/feast-venv/bin/python"
TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  [ -n "${REDIS_PORT:-}" ] && redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

step "python bench: the wheel (maturin) into .tools/venv"
(cd python && "$VENV/bin/maturin" build --quiet --out "$TMP/wheels")
"$VENV/bin/pip" install -q --force-reinstall --no-deps "$TMP"/wheels/freshet-*.whl

step "python bench: redis-server and SecantusDB"
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --pidfile "$TMP/redis.pid" --logfile "$TMP/redis.log"
wait_port "$REDIS_PORT"
MONGO_PORT=$(free_port)
mkdir -p "$TMP/mongo"
"$VENV/bin/secantusd-py" --host 127.0.0.1 --port "$MONGO_PORT" --storage-path "$TMP/mongo" --standalone \
  --log-level WARNING > "$TMP/mongo.log" 2>&1 &
PIDS+=($!)
wait_port "$MONGO_PORT"

step "python bench: freshet and raw redis-py / pymongo ($N calls per row)"
RESULTS="$TMP/results.jsonl"
(cd python/bench && "$VENV/bin/python" reader.py "$REDIS_PORT" "$MONGO_PORT" "$ROOT/features.toml" "$N") | tee "$RESULTS"

step "python bench: Feast's SDK on the same redis-server"
FEAST_VERSION=$("$FEAST_PY" -c 'import importlib.metadata as m; print(m.version("feast"))')
export FEAST_USAGE=False
cp -r bench/feast/feature_repo "$TMP/feast-repo"
cp python/bench/feast_items.py "$TMP/feast-repo/"
"$FEAST_PY" bench/feast/prepare.py "$TMP/feast-repo" "$REDIS_PORT"
"$FEAST_PY" -c 'import sys, pandas as pd; pd.DataFrame({"product_id": pd.Series([], dtype="string"),
"popularity_7d": pd.Series([], dtype="int64"), "event_timestamp": pd.Series([], dtype="datetime64[ns, UTC]")}
).to_parquet(sys.argv[1])' "$TMP/feast-repo/data/product_features.parquet"
(cd "$TMP/feast-repo" && "$TOOLS/feast-venv/bin/feast" apply > "$TMP/feast-apply.log" 2>&1) ||
  { cat "$TMP/feast-apply.log" >&2; exit 1; }
# The same wheel in Feast's venv, so freshet is measured beside Feast in one process.
"$TOOLS/feast-venv/bin/pip" install -q --force-reinstall --no-deps "$TMP"/wheels/freshet-*.whl
(cd python/bench && "$FEAST_PY" feast_reader.py "$TMP/feast-repo" "$REDIS_PORT" "$ROOT/features.toml" "$N") |
  tee -a "$RESULTS"

step "python bench: report"
REPORT=("$VENV/bin/python" python/bench/report.py "$RESULTS" "$N" "$FEAST_VERSION")
if [ -n "${NO_REPORT:-}" ]; then "${REPORT[@]}"; else "${REPORT[@]}" | python3 scripts/bench_section.py python-reader; fi
