#!/usr/bin/env bash
# Benchmarks POST /v1/ingest (a fresh 15-event batch per request) and the
# serving read of the edge worker under `wrangler dev` (workerd behind the dev
# proxy), with the Durable Object store and with Redis, and in the same run
# the seed-style peer (Fastify + ioredis, edge/bench/peer.mjs) on the same
# Redis. Prints one JSON line per run and writes the `## Edge` section of
# BENCHMARKS.md (edge/bench/report.mjs). Only 127.0.0.1; bounded in time.
# Usage: scripts/bench-edge.sh [seconds per run, default 10]
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
SECONDS_PER_RUN=${1:-10}
bash scripts/tools.sh rust redis node wasm >&2
source scripts/lib-edge-bench.sh
edge_bench_prerequisites
edge_bench_load_generator

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done
  [ -n "${REDIS_PORT:-}" ] && redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  [ -s "$TMP/redis-tls.pid" ] && kill "$(cat "$TMP/redis-tls.pid")" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

# A copy of the bundle, so a concurrent rebuild cannot change it mid-run, and
# a config without [build], so each start does not rebuild.
cp -r edge/build "$TMP/build"
wrangler_config "$TMP/build/index.js" > "$TMP/wrangler.toml"

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --pidfile "$TMP/redis.pid" --logfile "$TMP/redis.log"
wait_redis() { for _ in $(seq 1 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }
wait_redis

READ_TOKEN=bench-read-token
start_worker() { # store
  PORT=$(free_port); INSPECT=$(free_port)
  # setsid: the wrangler and workerd processes form one group, stopped together.
  setsid edge/node_modules/.bin/wrangler dev --config "$TMP/wrangler.toml" --local --ip 127.0.0.1 \
    --port "$PORT" --inspector-port "$INSPECT" --show-interactive-dev-session=false \
    --persist-to "$TMP/state" --var "FRESHET_STORE:$1" --var "FRESHET_READ_TOKEN:$READ_TOKEN" --var "FRESHET_WRITE_KEYS:dev=*" \
    > "$TMP/wrangler-$PORT.log" 2>&1 < /dev/null &
  WORKER_PID=$!
  PIDS+=("$WORKER_PID")
  wait_http "http://127.0.0.1:$PORT/health"
}
stop_worker() { kill -TERM -- "-$WORKER_PID" 2>/dev/null || true; wait "$WORKER_PID" 2>/dev/null || true; }
LOAD_AVG=$(cut -d' ' -f1 /proc/loadavg)
load() { node edge/bench/load.mjs "$@" | tee -a "$TMP/results.jsonl"; }
warm() { node edge/bench/load.mjs warmup "$1" 2 2 "${@:2}" >/dev/null; }

for store in durable-object "redis://127.0.0.1:$REDIS_PORT"; do
  label=${store%%:*}
  start_worker "$store"
  U="http://127.0.0.1:$PORT"
  warm "$U/v1/ingest"
  load "wrangler-dev-$label ingest" "$U/v1/ingest" 1 "$SECONDS_PER_RUN"
  load "wrangler-dev-$label ingest" "$U/v1/ingest" 8 "$SECONDS_PER_RUN"
  load "wrangler-dev-$label read" "$U/v1/features/user/cid-bench-1?names=pageviews,clicks_product_card,searches,last_interacted_product,viewed_categories" \
    1 "$SECONDS_PER_RUN" get "authorization:Bearer $READ_TOKEN"
  stop_worker
done

# workerd alone, without the dev proxy: the bundle wrangler serves, run by the
# workerd binary wrangler ships, from a config of our own. (capnp resolves an
# absolute embed path against its import path, so the bundle is embedded
# relative to the config file in $TMP.)
WORKERD=edge/node_modules/@cloudflare/workerd-linux-64/bin/workerd
start_workerd() { # store [gateways]
  PORT=$(free_port)
  mkdir -p "$TMP/do-disk"
  cat > "$TMP/workerd.capnp" <<CAPNP
using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "internet", network = (allow = ["public", "private", "local"],
      tlsOptions = (trustBrowserCas = true, trustedCertificates = [embed "tls/ca.pem"]))),
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

# Redis over TLS (rediss://), as managed Redis services require: a CA and a
# certificate for localhost made here, which workerd trusts (tlsOptions).
mkdir -p "$TMP/tls"
(
  cd "$TMP/tls"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj '/CN=freshet bench CA' \
    -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign'
  openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj '/CN=localhost'
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext.cnf
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext.cnf
) > /dev/null 2>&1
TLS_PORT=$(free_port)
redis-server --port 0 --tls-port "$TLS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --tls-cert-file "$TMP/tls/server.pem" --tls-key-file "$TMP/tls/server.key" \
  --tls-ca-cert-file "$TMP/tls/ca.pem" --tls-auth-clients no \
  --pidfile "$TMP/redis-tls.pid" --logfile "$TMP/redis-tls.log"
for _ in $(seq 1 100); do [ -s "$TMP/redis-tls.pid" ] && break; sleep 0.1; done

# redis: through 4 StoreGateway objects' pooled connections; redis-direct:
# FRESHET_STORE_GATEWAYS=0, a connection per request (the default for
# redis://); the same two over TLS (rediss://, whose default is the gateways).
# The breakdown follows the default path of redis://.
BREAKDOWN_RUN=${BREAKDOWN_RUN:-redis-direct}
for run in durable-object redis redis-direct redis-tls redis-tls-direct; do
  label=$run
  case $run in
    durable-object) start_workerd durable-object ;;
    redis) start_workerd "redis://127.0.0.1:$REDIS_PORT" ;;
    redis-direct) start_workerd "redis://127.0.0.1:$REDIS_PORT" 0 ;;
    redis-tls) start_workerd "rediss://localhost:$TLS_PORT" ;;
    redis-tls-direct) start_workerd "rediss://localhost:$TLS_PORT" 0 ;;
  esac
  U="http://127.0.0.1:$PORT"
  warm "$U/v1/ingest"
  load "workerd-$label ingest" "$U/v1/ingest" 1 "$SECONDS_PER_RUN"
  load "workerd-$label ingest" "$U/v1/ingest" 8 "$SECONDS_PER_RUN"
  load "workerd-$label read" "$U/v1/features/user/cid-bench-1?names=pageviews,clicks_product_card,searches,last_interacted_product,viewed_categories" \
    1 "$SECONDS_PER_RUN" get "authorization:Bearer $READ_TOKEN"
  if [ "$label" = "$BREAKDOWN_RUN" ]; then
    # Where the time goes: the same path cut short at each stage, 8 connections.
    load "breakdown: /health" "$U/health" 8 "$SECONDS_PER_RUN" get
    load "breakdown: refused key (body read, not parsed)" "$U/v1/ingest" 8 "$SECONDS_PER_RUN" dup x-freshet-key:nope
    load "breakdown: all events too old (validated, no store)" "$U/v1/ingest" 8 "$SECONDS_PER_RUN" old
    load "breakdown: duplicate batch (all but the writes)" "$U/v1/ingest" 8 "$SECONDS_PER_RUN" dup
  fi
  stop_worker
done

PEER_PORT=$(free_port)
setsid node edge/bench/peer.mjs "$PEER_PORT" "$REDIS_PORT" > "$TMP/peer.log" 2>&1 < /dev/null &
PIDS+=("$!")
wait_http "http://127.0.0.1:$PEER_PORT/health"
P="http://127.0.0.1:$PEER_PORT"
warm "$P/v1/ingest"
load "peer-fastify-ioredis ingest" "$P/v1/ingest" 1 "$SECONDS_PER_RUN"
load "peer-fastify-ioredis ingest" "$P/v1/ingest" 8 "$SECONDS_PER_RUN"
load "peer-fastify-ioredis read" "$P/v1/features/user/cid-bench-1" 1 "$SECONDS_PER_RUN" get

BREAKDOWN_RUN=$BREAKDOWN_RUN node edge/bench/report.mjs "$TMP/results.jsonl" BENCHMARKS.md "$SECONDS_PER_RUN" "$LOAD_AVG"
echo "wrote the Edge section of BENCHMARKS.md" >&2
