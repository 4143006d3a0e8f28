#!/usr/bin/env bash
# Benchmarks POST /v1/ingest (a fresh 15-event batch per request,
# edge/bench/load.mjs) and the serving read with the MongoDB store beside the
# Redis store, in the same run, against workerd alone (the bundle wrangler
# serves, run by the workerd binary wrangler ships; no dev proxy). MongoDB is
# SecantusDB (a wire-protocol server written in Python) with authentication
# on, as in production, and once without, to show what SCRAM costs per
# request. Writes the `## Mongo` section of BENCHMARKS.md. Only 127.0.0.1;
# bounded in time. Usage: scripts/bench-mongo.sh [seconds per run, default 10]
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
SECONDS_PER_RUN=${1:-10}
bash scripts/tools.sh rust redis node wasm mongo >&2
source scripts/lib-edge-bench.sh
edge_bench_prerequisites
edge_bench_load_generator

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done
  [ -n "${REDIS_PORT:-}" ] && redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  sleep 1
  rm -rf "$TMP"
}
trap cleanup EXIT
wait_port() { for _ in $(seq 1 600); do (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "nothing on $1" >&2; return 1; }

# A copy of the bundle, so a concurrent rebuild cannot change it mid-run.
cp -r edge/build "$TMP/build"

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --pidfile "$TMP/redis.pid" --logfile "$TMP/redis.log"
for _ in $(seq 1 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

SECANTUSD="$TOOLS/venv/bin/secantusd-py"
start_mongo() { # port dir [--auth]
  setsid "$SECANTUSD" --host 127.0.0.1 --port "$1" --storage-path "$2" --standalone --log-level WARNING \
    "${@:3}" > "$TMP/secantusd-$1.log" 2>&1 < /dev/null &
  MONGO_PID=$!
  PIDS+=("$MONGO_PID")
  wait_port "$1"
}
stop_mongo() { kill -TERM -- "-$MONGO_PID" 2>/dev/null || true; wait "$MONGO_PID" 2>/dev/null || true; }
# One server with a user and --auth (created open, then restarted), one open.
AUTH_PORT=$(free_port)
mkdir -p "$TMP/mongo-auth" "$TMP/mongo-open"
start_mongo "$AUTH_PORT" "$TMP/mongo-auth"
"$TOOLS/venv/bin/python" - "$AUTH_PORT" <<'PY'
import sys
from pymongo import MongoClient
c = MongoClient(host="127.0.0.1", port=int(sys.argv[1]), directConnection=True)
c.admin.command("createUser", "freshet", pwd="bench-pw", roles=[{"role": "readWrite", "db": "fs"}])
PY
stop_mongo
start_mongo "$AUTH_PORT" "$TMP/mongo-auth" --auth
OPEN_PORT=$(free_port)
start_mongo "$OPEN_PORT" "$TMP/mongo-open"

READ_TOKEN=bench-read-token
WORKERD=edge/node_modules/@cloudflare/workerd-linux-64/bin/workerd
start_workerd() { # store [gateways]
  PORT=$(free_port)
  mkdir -p "$TMP/do-disk"
  cat > "$TMP/workerd.capnp" <<CAPNP
using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "internet", network = (allow = ["public", "private", "local"])),
    (name = "do-disk", disk = (path = "$TMP/do-disk", writable = true)),
  ],
  sockets = [(name = "http", address = "127.0.0.1:$PORT", http = (), service = "main")],
);
const worker :Workerd.Worker = (
  modules = [
    (name = "index.js", esModule = embed "build/index.js"),
    (name = "index_bg.wasm", wasm = embed "build/index_bg.wasm"),
  ],
  compatibilityDate = "2026-11-01",
  bindings = [
    (name = "FRESHET_STORE", text = "$1"),
    (name = "FRESHET_WRITE_KEYS", text = "dev=*"),
    # workerd alone has no R2 simulation: these figures are without the log.
    (name = "FRESHET_EVENT_LOG", text = "off"),
    (name = "FRESHET_READ_TOKEN", text = "$READ_TOKEN"),
    (name = "FRESHET_STORE_GATEWAYS", text = "${2:-4}"),
    (name = "FEATURES", durableObjectNamespace = "FeatureEntity"),
    (name = "STORE_GATEWAY", durableObjectNamespace = "StoreGateway"),
    # Erasure's gate, as deployed: one call per batch (README, "Erasure").
    (name = "ERASURES", durableObjectNamespace = "ErasureRegistry"),
  ],
  durableObjectNamespaces = [
    (className = "FeatureEntity", uniqueKey = "freshet-feature-entity", enableSql = true),
    (className = "StoreGateway", uniqueKey = "freshet-store-gateway", enableSql = true),
    (className = "ErasureRegistry", uniqueKey = "freshet-erasure-registry", enableSql = true),
  ],
  durableObjectStorage = (localDisk = "do-disk"),
  globalOutbound = "internet",
);
CAPNP
  setsid "$WORKERD" serve "$TMP/workerd.capnp" > "$TMP/workerd-$PORT.log" 2>&1 < /dev/null &
  WORKER_PID=$!
  PIDS+=("$WORKER_PID")
  wait_http "http://127.0.0.1:$PORT/health" || { cat "$TMP/workerd-$PORT.log" >&2; return 1; }
}
stop_worker() { kill -TERM -- "-$WORKER_PID" 2>/dev/null || true; wait "$WORKER_PID" 2>/dev/null || true; }

LOAD_AVG=$(cut -d' ' -f1 /proc/loadavg)
load() { node edge/bench/load.mjs "$@" | tee -a "$TMP/results.jsonl"; }
warm() { node edge/bench/load.mjs warmup "$1" 2 2 "${@:2}" >/dev/null; }
READ_PATH="/v1/features/user/cid-bench-1?names=pageviews,clicks_product_card,searches,last_interacted_product,viewed_categories"

# Each store through the StoreGateway objects' pooled connections (the
# default), and the authenticated one also with a connection per request
# (FRESHET_STORE_GATEWAYS=0): SCRAM on every request.
AUTH_URL="mongodb://freshet:bench-pw@127.0.0.1:$AUTH_PORT/fs?authSource=admin"
for entry in "redis=4=redis://127.0.0.1:$REDIS_PORT" \
  "mongodb-auth=4=$AUTH_URL" \
  "mongodb-auth-direct=0=$AUTH_URL" \
  "mongodb-open=4=mongodb://127.0.0.1:$OPEN_PORT/fs"; do
  label=${entry%%=*}
  rest=${entry#*=}
  start_workerd "${rest#*=}" "${rest%%=*}"
  U="http://127.0.0.1:$PORT"
  warm "$U/v1/ingest"
  load "$label ingest" "$U/v1/ingest" 1 "$SECONDS_PER_RUN"
  load "$label ingest" "$U/v1/ingest" 8 "$SECONDS_PER_RUN"
  load "$label read" "$U$READ_PATH" 1 "$SECONDS_PER_RUN" get "authorization:Bearer $READ_TOKEN"
  stop_worker
done

# The peer, same run, same server: pymongo (the official driver, one pooled
# connection authenticated once) sending what one ingest request makes the
# worker send: one update of one user upsert, one update of six product
# upserts, with the same operators and batch marker. What the server itself
# allows, without the worker, HTTP, or a handshake per request.
"$TOOLS/venv/bin/python" - "$AUTH_PORT" "$SECONDS_PER_RUN" <<'PY' | tee -a "$TMP/results.jsonl"
import json, sys, time
from pymongo import MongoClient, UpdateOne
port, seconds = int(sys.argv[1]), float(sys.argv[2])
db = MongoClient(host="127.0.0.1", port=port, directConnection=True, username="freshet",
                 password="bench-pw", authSource="admin").fs
def upsert(_id, batch, inc):
    return UpdateOne({"_id": _id, "_batches": {"$ne": batch}},
                     {"$inc": inc, "$max": {"_ts.c@1": int(time.time() * 1000)},
                      "$push": {"_batches": {"$each": [batch], "$slice": -100}}}, upsert=True)
lat, n, end = [], 0, time.time() + seconds
while time.time() < end:
    n += 1
    b, start = f"peer-{n}", time.time()
    db.user_features.bulk_write([upsert(f"cid-peer-{n % 1000}", b, {"pageviews@1": 3, "clicks_product_card@1": 6})], ordered=False)
    db.product_features.bulk_write([upsert(f"prod-{(n + i) % 50}", b, {"popularity_7d@1.1795305600": 1}) for i in range(6)], ordered=False)
    lat.append((time.time() - start) * 1000)
lat.sort()
print(json.dumps({"label": "pymongo-peer ingest", "connections": 1, "rps": round(len(lat) / seconds),
                  "p50": round(lat[len(lat) // 2]), "p99": round(lat[int(len(lat) * 0.99)]),
                  "errors": 0, "timeouts": 0, "non2xx": 0, "requests": len(lat)}))
PY

python3 - "$TMP/results.jsonl" "$SECONDS_PER_RUN" "$LOAD_AVG" <<'PY' | python3 scripts/bench_section.py mongo
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"`scripts/bench-mongo.sh {sys.argv[2]}`: workerd alone (no dev proxy), {sys.argv[2]} s per run, "
      f"load average {sys.argv[3]} at the start, 2 cores shared with the servers and the load generator. "
      "Ingest: a fresh 15-event batch per request (7 entities: one user, six products, so two `update` commands); "
      "read: one user, five features. MongoDB is SecantusDB, a wire-protocol server written in "
      "Python, so its figures bound the store adapter from below, not MongoDB itself. "
      "`redis`, `mongodb-auth` and `mongodb-open` go through the `StoreGateway` Durable Objects "
      "(4), whose connections stay open and authenticated across requests: one round trip of the "
      "commands. `mongodb-auth-direct` (`FRESHET_STORE_GATEWAYS=0`) connects and runs SCRAM-SHA-256 "
      "on every request (hello with speculative auth, then the proof with the commands pipelined "
      "behind it, 2 round trips). "
      "`pymongo-peer` is the same two `update` commands per batch from the official driver on one "
      "pooled connection authenticated once (no HTTP, no worker): the server's own bound.")
print()
print("| store | run | connections | requests/s | p50 ms | p99 ms | non-2xx | errors |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    store, run = r["label"].split(" ", 1)
    print(f"| {store} | {run} | {r['connections']} | {r['rps']} | {r['p50']} | {r['p99']} | {r['non2xx']} | {r['errors']} |")
ing = {r["label"].split(" ")[0]: r["rps"] for r in rows if r["label"].endswith("ingest") and r["connections"] == 1}
if ing.get("redis"):
    for s in ("mongodb-auth", "mongodb-auth-direct", "mongodb-open"):
        if s in ing:
            print(f"\n{s} ingest at 1 connection: {ing[s] / ing['redis']:.2f}x the Redis store's requests/s", end="")
            if ing.get("pymongo-peer"):
                print(f", {ing[s] / ing['pymongo-peer']:.2f}x pymongo's on the same server", end="")
            print(".", end="")
    print()
PY
echo "wrote the Mongo section of BENCHMARKS.md" >&2
