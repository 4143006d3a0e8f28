#!/usr/bin/env bash
# The edge on a Redis Cluster (3 masters and 3 replicas on loopback,
# scripts/redis-cluster.sh) against one Redis, in the same run, under
# `wrangler dev`, both through 4 StoreGateway objects: ingest (a fresh
# 15-event batch per request), one user's read, and a ranking read of 1 user
# + 100 items + 100 pairs (keys on every master), at 1 and 8 connections.
# Then, on the cluster, what moving 2,000 slots (`redis-cli --cluster
# reshard`) and a failover (`CLUSTER FAILOVER` on a replica) cost while
# ingest runs at 8 connections: requests refused (503: the tracker sends
# the batch again), the longest request. Writes the `## Stores beyond one
# node` section of BENCHMARKS.md. Only 127.0.0.1.
# Usage: scripts/bench-cluster.sh [seconds per run, default 10]
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
SECONDS_PER_RUN=${1:-10}
bash scripts/tools.sh rust redis node wasm python >&2
source scripts/lib-edge-bench.sh
edge_bench_prerequisites
edge_bench_load_generator

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done
  [ -n "${REDIS_PORT:-}" ] && redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  bash scripts/redis-cluster.sh down "$TMP/cluster" || true
  rm -rf "$TMP"
}
trap cleanup EXIT
cp -r edge/build "$TMP/build"
wrangler_config "$TMP/build/index.js" > "$TMP/wrangler.toml"

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --pidfile "$TMP/redis.pid" --logfile "$TMP/redis.log"
# Six ports in a row with nothing on them, nor on their cluster bus ports.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
FIRST=
for _ in $(seq 100); do
  first=$((20000 + RANDOM % 9000)) ok=1
  for p in $(seq "$first" $((first + 5))); do
    if listening "$p" || listening $((p + 10000)); then ok=0; break; fi
  done
  [ "$ok" = 1 ] && { FIRST=$first; break; }
done
[ -n "$FIRST" ] || { echo "no six free ports in a row" >&2; exit 1; }
bash scripts/redis-cluster.sh up "$TMP/cluster" "$FIRST"
CLUSTER="redis+cluster://127.0.0.1:$FIRST,127.0.0.1:$((FIRST + 1))"

READ_TOKEN=bench-read-token
start_worker() { # store
  PORT=$(free_port); INSPECT=$(free_port)
  setsid edge/node_modules/.bin/wrangler dev --config "$TMP/wrangler.toml" --local --ip 127.0.0.1 \
    --port "$PORT" --inspector-port "$INSPECT" --show-interactive-dev-session=false \
    --persist-to "$TMP/state" --var "FRESHET_STORE:$1" --var "FRESHET_READ_TOKEN:$READ_TOKEN" \
    --var "FRESHET_WRITE_KEYS:dev=*" --var "FRESHET_STORE_GATEWAYS:4" \
    > "$TMP/wrangler-$PORT.log" 2>&1 < /dev/null &
  WORKER_PID=$!
  PIDS+=("$WORKER_PID")
  wait_http "http://127.0.0.1:$PORT/health"
}
stop_worker() { kill -TERM -- "-$WORKER_PID" 2>/dev/null || true; wait "$WORKER_PID" 2>/dev/null || true; }
load() { node edge/bench/load.mjs "$@" | tee -a "$TMP/results.jsonl"; }
AUTH="authorization:Bearer $READ_TOKEN"
READ="v1/features/user/cid-bench-1?names=pageviews,clicks_product_card,searches,last_interacted_product,viewed_categories"

for store in "redis://127.0.0.1:$REDIS_PORT" "$CLUSTER"; do
  label=one-redis
  [ "$store" = "$CLUSTER" ] && label=cluster
  start_worker "$store"
  U="http://127.0.0.1:$PORT"
  node edge/bench/load.mjs warmup "$U/v1/ingest" 2 2 >/dev/null
  for c in 1 8; do
    load "$label ingest" "$U/v1/ingest" "$c" "$SECONDS_PER_RUN"
    load "$label read" "$U/$READ" "$c" "$SECONDS_PER_RUN" get "$AUTH"
    load "$label rank" "$U/v1/features/batch" "$c" "$SECONDS_PER_RUN" rank "$AUTH"
  done
  [ "$store" = "$CLUSTER" ] || stop_worker
done

# The cluster changing under ingest at 8 connections: the change starts 3 s
# into a 20 s run.
me() { redis-cli -p "$1" cluster nodes | awk '/myself/ {print $1}'; }
under_change() { # label command...
  local label=$1 t0 t1
  shift
  load "$label" "$U/v1/ingest" 8 20 > "$TMP/change.json" &
  local runner=$!
  sleep 3
  t0=$(date +%s.%N)
  "$@" > "$TMP/change.log" 2>&1
  t1=$(date +%s.%N)
  wait "$runner"
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); r["change_s"]=round(float(sys.argv[3])-float(sys.argv[2]),2); print(json.dumps(r))' \
    "$TMP/change.json" "$t0" "$t1" >> "$TMP/changes.jsonl"
}
reshard() {
  redis-cli --cluster reshard "127.0.0.1:$FIRST" --cluster-from "$(me "$FIRST")" \
    --cluster-to "$(me $((FIRST + 1)))" --cluster-slots 2000 --cluster-yes
}
failover() {
  local master replica p
  master=$(me "$FIRST")
  for p in $(seq "$FIRST" $((FIRST + 5))); do
    redis-cli -p "$p" cluster nodes | grep myself | grep -q "slave $master" && replica=$p
  done
  redis-cli -p "$replica" cluster failover
  for _ in $(seq 200); do redis-cli -p "$replica" role | head -1 | grep -q master && return 0; sleep 0.05; done
  return 1
}
# The Python reader on both, side by side, before the cluster changes.
bash scripts/install-python.sh >&2
"$TOOLS/venv/bin/python" python/bench/cluster_reads.py "redis://127.0.0.1:$REDIS_PORT" "$CLUSTER" 1000 \
  > "$TMP/python.jsonl"
under_change "cluster ingest, 2,000 slots moving" reshard
under_change "cluster ingest, a master failing over" failover
stop_worker

LOAD_AVG=$(cut -d' ' -f1 /proc/loadavg)
python3 - "$TMP/results.jsonl" "$TMP/changes.jsonl" "$SECONDS_PER_RUN" "$LOAD_AVG" "$TMP/python.jsonl" <<'PY' | python3 scripts/bench_section.py stores-beyond-one-node
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
changes = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
seconds, load = sys.argv[3], sys.argv[4]
print("The edge under `wrangler dev` on one Redis and on a Redis Cluster (3 masters, 3 replicas on loopback, "
      "`scripts/redis-cluster.sh`), both through 4 `StoreGateway` objects, side by side in one run "
      f"(`bash scripts/bench-cluster.sh {seconds}`: autocannon, {seconds} s a run). "
      "`rank` is `POST /v1/features/batch` of 1 user + 100 items + 100 (user, item) pairs, whose keys span the masters.\n")
print("| run | store | connections | req/s | p50 | p99 | non-2xx |")
print("|---|---|---:|---:|---:|---:|---:|")
for what in ("ingest", "read", "rank"):
    for c in (1, 8):
        for store in ("one-redis", "cluster"):
            r = next(r for r in runs if r["label"] == f"{store} {what}" and r["connections"] == c)
            print(f"| {what} | {store} | {c} | {r['rps']} | {r['p50']} ms | {r['p99']} ms | {r['non2xx']} |")
print()
python = [json.loads(l) for l in open(sys.argv[5]) if l.strip()]
print("The Python reader in-process (`python/bench/cluster_reads.py`, 1,000 calls each, interleaved; the cluster "
      "through redis-py's `RedisCluster`):\n")
print("| read | mode | store | p50 | p95 | p99 |")
print("|---|---|---|---:|---:|---:|")
for r in python:
    print(f"| {r['read']} | {r['mode']} | {r['name']} | {r['p50_us'] / 1000:.2f} ms | {r['p95_us'] / 1000:.2f} ms "
          f"| {r['p99_us'] / 1000:.2f} ms |")
print()
print("While the cluster changes, ingest at 8 connections for 20 s (the change starts at 3 s): requests refused "
      "with 503 (the tracker sends those batches again, under their ids) and the longest request.\n")
print("| change | took | requests | refused (503) | p99 | longest |")
print("|---|---:|---:|---:|---:|---:|")
for r in changes:
    print(f"| {r['label'].split(', ', 1)[1]} | {r['change_s']} s | {r['requests']} | {r['non2xx']} | {r['p99']} ms | {r['max']} ms |")
print()
print("Events lost and doubled through a reshard and a failover: none entity by entity against the memory store in "
      "the edge's `cluster_tests.rs`, and none by `freshet consistency` in `python/tests/test_cluster.py`. (Both "
      "found a loss now and then until the test cluster gave each node its own directory: replicas sharing one loaded "
      "each other's first snapshot; docs/ARCHITECTURE.md, Redis Cluster.)\n")
print(f"Machine: 2 cores, 23 GiB (this sandbox); load average {load} at the end.")
PY
