#!/usr/bin/env bash
# Freshet side by side with Feast (issue 7), in one run, on one redis-server:
# Feast's feature server (`feast serve`, Redis online store, push source) and
# the Freshet worker served by workerd alone (no wrangler dev proxy), both on
# the same Redis, driven by the same closed-loop keep-alive client
# (bench/feast/load.mjs). Measures the write path (Freshet POST /v1/ingest of
# raw events vs Feast POST /push of the rows those events make), the read path
# (GET /v1/features/user/{id} vs POST /get-online-features, the same five
# features of one user) and the floor (HMGET of the five fields from the same
# Node client, and from redis-benchmark). Writes the `## Feast` section of
# BENCHMARKS.md (bench/feast/report.mjs). Only 127.0.0.1; every run bounded
# in time: 20 runs of SECONDS_PER_RUN plus a 2 s warm-up each, two short
# redis-benchmark runs and about 30 s of start-up: 4 to 5 minutes at 8 s.
# Usage: scripts/bench-feast.sh [seconds per run, default $SECONDS_PER_RUN or 8]
# Knobs: CONNECTIONS="1 8" (the concurrencies of every area), BATCHES="1 15 500"
#        (events per ingest = rows per push), WARMUP_SECONDS=2,
#        REBUILD=1 (rebuild the worker first), NO_REPORT=1 (print, don't write).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
SECONDS_PER_RUN=${1:-${SECONDS_PER_RUN:-8}}
WARMUP_SECONDS=${WARMUP_SECONDS:-2}
CONNECTIONS=${CONNECTIONS:-"1 8"}
# Events per ingest batch = rows per push: one; a tracker batch; the most a
# Freshet batch may carry (a stream processor in front of Feast would batch too).
BATCHES=${BATCHES:-"1 15 500"}

bash scripts/tools.sh rust redis node wasm feast >&2
source scripts/lib-edge-bench.sh
edge_bench_prerequisites
FEAST="$TOOLS/feast-venv/bin/feast"
FEAST_VERSION=$("$TOOLS/feast-venv/bin/python" -c 'import importlib.metadata as m; print(m.version("feast"))')
export FEAST_USAGE=False # Feast's usage telemetry: off, and offline anyway

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done
  [ -n "${REDIS_PORT:-}" ] && redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
wait_http() { # url log
  # Up to 2 minutes: Feast's server loads pandas, pyarrow and the registry first.
  for _ in $(seq 1 480); do curl -fs -m 2 -o /dev/null "$1" && return 0; sleep 0.25; done
  echo "no answer from $1" >&2; tail -30 "$2" >&2; return 1
}

step "redis-server"
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --pidfile "$TMP/redis.pid" --logfile "$TMP/redis.log"
for _ in $(seq 1 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
export REDIS_PORT # load.mjs reads Redis's own counters around each run

step "Freshet worker under workerd alone, Redis store"
# The bundle wrangler serves, run by the workerd binary wrangler ships, from a
# config of our own (as scripts/bench-edge.sh). A copy of the bundle, so a
# concurrent rebuild cannot change it mid-run; capnp resolves an absolute
# embed path against its import path, so it is embedded relative to $TMP.
cp -r edge/build "$TMP/build"
WORKERD=edge/node_modules/@cloudflare/workerd-linux-64/bin/workerd
FRESHET_PORT=$(free_port)
READ_TOKEN=bench-read-token
mkdir -p "$TMP/do-disk"
cat > "$TMP/workerd.capnp" <<CAPNP
using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "internet", network = (allow = ["public", "private", "local"])),
    (name = "do-disk", disk = (path = "$TMP/do-disk", writable = true)),
  ],
  sockets = [(name = "http", address = "127.0.0.1:$FRESHET_PORT", http = (), service = "main")],
);
const worker :Workerd.Worker = (
  modules = [
    (name = "index.js", esModule = embed "build/index.js"),
    (name = "index_bg.wasm", wasm = embed "build/index_bg.wasm"),
  ],
  compatibilityDate = "2026-11-01",
  bindings = [
    (name = "FRESHET_STORE", text = "redis://127.0.0.1:$REDIS_PORT"),
    (name = "FRESHET_WRITE_KEYS", text = "dev=*"),
    # workerd alone has no R2 simulation: these figures are without the log.
    (name = "FRESHET_EVENT_LOG", text = "off"),
    (name = "FRESHET_READ_TOKEN", text = "$READ_TOKEN"),
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
# setsid: each server is its own process group, stopped together.
setsid "$WORKERD" serve "$TMP/workerd.capnp" > "$TMP/workerd.log" 2>&1 < /dev/null &
PIDS+=("$!")
FRESHET="http://127.0.0.1:$FRESHET_PORT"

step "Feast $FEAST_VERSION: feast apply, feast serve"
# The feature repo is copied to $TMP, so its registry and parquet file never
# land in the work tree.
cp -r bench/feast/feature_repo "$TMP/feast-repo"
"$TOOLS/feast-venv/bin/python" bench/feast/prepare.py "$TMP/feast-repo" "$REDIS_PORT"
(cd "$TMP/feast-repo" && "$FEAST" apply > "$TMP/feast-apply.log" 2>&1) || { cat "$TMP/feast-apply.log" >&2; exit 1; }
FEAST_PORT=$(free_port)
# One worker process (the default), as workerd runs one; no access log, as
# workerd logs no request either; and no worker restart every 1000 requests
# (gunicorn's max_requests, Feast's default), which would put Feast's start-up
# into the figures.
(cd "$TMP/feast-repo" && exec setsid "$FEAST" serve -h 127.0.0.1 -p "$FEAST_PORT" --no-access-log --max-requests 0 \
  > "$TMP/feast-serve.log" 2>&1 < /dev/null) &
PIDS+=("$!")
FEAST_URL="http://127.0.0.1:$FEAST_PORT"
wait_http "$FRESHET/health" "$TMP/workerd.log"
wait_http "$FEAST_URL/health" "$TMP/feast-serve.log"

step "the same events on both sides give the same five features"
READ_USER=cid-feast-read
node bench/feast/load.mjs check "$FRESHET" "$FEAST_URL" "$REDIS_PORT" "$READ_TOKEN" "$READ_USER" | tee "$TMP/check.json"

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
RESULTS="$TMP/results.jsonl"
run() { # label connections mode args...
  node bench/feast/load.mjs "$1" "$2" "$SECONDS_PER_RUN" "$WARMUP_SECONDS" "${@:3}" | tee -a "$RESULTS"
}
FIELDS=(pageviews@1 clicks_product_card@1 searches@1 last_interacted_product@1 last_event_at@1)
for c in $CONNECTIONS; do
  step "write path, $c connection(s)"
  for n in $BATCHES; do
    run "freshet ingest $n" "$c" freshet-ingest "$FRESHET" "$n"
    run "feast push $n" "$c" feast-push "$FEAST_URL" "$n"
  done
  step "read path and floor, $c connection(s)"
  run "freshet read" "$c" freshet-read "$FRESHET" "$READ_USER" "$READ_TOKEN"
  run "feast read" "$c" feast-read "$FEAST_URL" "$READ_USER"
  run "node hmget" "$c" hmget "$REDIS_PORT" "fs:{user:$READ_USER}" "${FIELDS[@]}"
done
step "HTTP floor of each server (GET /health, no Redis), 1 connection"
run "freshet health" 1 get "$FRESHET/health"
run "feast health" 1 get "$FEAST_URL/health"
step "redis-benchmark HMGET, $CONNECTIONS connection(s)"
for c in $CONNECTIONS; do
  # A bounded count: about SECONDS_PER_RUN at the floor's usual rate.
  redis-benchmark -p "$REDIS_PORT" -c "$c" -n $((SECONDS_PER_RUN * 8000)) --csv \
    HMGET "fs:{user:$READ_USER}" "${FIELDS[@]}" > "$TMP/rb-$c.csv"
  node -e 'const [h,v]=require("fs").readFileSync(process.argv[1],"utf8").trim().split("\n").map(l=>JSON.parse("["+l+"]"));
    const r=Object.fromEntries(h.map((k,i)=>[k,v[i]]));
    console.log(JSON.stringify({label:"redis-benchmark hmget",connections:+process.argv[2],requests:+process.argv[3],rps:Math.round(+r.rps),p50_us:+r.p50_latency_ms*1000,p99_us:+r.p99_latency_ms*1000,errors:0,load1:require("os").loadavg()[0]}))' \
    "$TMP/rb-$c.csv" "$c" $((SECONDS_PER_RUN * 8000)) | tee -a "$RESULTS"
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

REPORT=(node bench/feast/report.mjs "$RESULTS" "$TMP/check.json" "$SECONDS_PER_RUN" "$LOAD_BEFORE" "$LOAD_AFTER"
  "$FEAST_VERSION" "$(redis-server --version | grep -Eo 'v=[0-9.]+' | cut -c3-)")
if [ -n "${NO_REPORT:-}" ]; then
  "${REPORT[@]}"
else
  "${REPORT[@]}" | python3 scripts/bench_section.py feast
  echo "wrote the Feast section of BENCHMARKS.md" >&2
fi
