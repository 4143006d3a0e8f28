#!/usr/bin/env bash
# What the per-client rate limit costs under `wrangler dev`: the same worker,
# Redis store, with and without the [[ratelimits]] bindings, alternated in one
# run (1 and 8 connections, two rounds), a fresh 15-event batch per request
# from 100 client ids (none near its limit). wrangler dev simulates the binding
# with one Durable Object that writes each count to SQLite, so this is the
# local cost, not Cloudflare's (there the counter lives in the location's
# memory). Writes the `## Rate-limit` section of BENCHMARKS.md.
# Usage: scripts/bench-rate-limit.sh [seconds per run, default 10]
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
SECONDS_PER_RUN=${1:-10}
bash scripts/tools.sh rust redis node wasm >&2
source scripts/lib-edge-bench.sh
edge_bench_prerequisites
edge_bench_load_generator

TMP=$(mktemp -d)
WORKER_PID=
cleanup() {
  [ -n "$WORKER_PID" ] && { kill -TERM -- "-$WORKER_PID" 2>/dev/null || true; }
  [ -n "${REDIS_PORT:-}" ] && redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT

cp -r edge/build "$TMP/build"
wrangler_config "$TMP/build/index.js" > "$TMP/with.toml"
awk '/^\[\[ratelimits\]\]/{skip=1; next} /^\[/{skip=0} !skip' "$TMP/with.toml" > "$TMP/without.toml"
grep -q '^\[\[ratelimits\]\]' "$TMP/with.toml" || { echo "edge/wrangler.toml has no [[ratelimits]] binding" >&2; exit 1; }

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --pidfile "$TMP/redis.pid" --logfile "$TMP/redis.log"
for _ in $(seq 1 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

LOAD_AVG=$(cut -d' ' -f1 /proc/loadavg)
run() { # with|without connections round
  local port inspect
  port=$(free_port); inspect=$(free_port)
  setsid edge/node_modules/.bin/wrangler dev --config "$TMP/$1.toml" --local --ip 127.0.0.1 \
    --port "$port" --inspector-port "$inspect" --show-interactive-dev-session=false \
    --persist-to "$TMP/state-$1" --var "FRESHET_STORE:redis://127.0.0.1:$REDIS_PORT" --var "FRESHET_WRITE_KEYS:dev=*" \
    > "$TMP/wrangler-$port.log" 2>&1 < /dev/null &
  WORKER_PID=$!
  wait_http "http://127.0.0.1:$port/health"
  node edge/bench/load.mjs warmup "http://127.0.0.1:$port/v1/ingest" 2 2 >/dev/null
  node edge/bench/load.mjs "$1" "http://127.0.0.1:$port/v1/ingest" "$2" "$SECONDS_PER_RUN" | tee -a "$TMP/results.jsonl"
  kill -TERM -- "-$WORKER_PID" 2>/dev/null || true
  wait "$WORKER_PID" 2>/dev/null || true
  WORKER_PID=
}
for round in 1 2; do
  for c in 1 8; do run without "$c" "$round"; run with "$c" "$round"; done
done

node - "$TMP/results.jsonl" "$LOAD_AVG" "$SECONDS_PER_RUN" <<'JS' | tee "$TMP/section.md"
const fs = require('fs');
const [file, load, secs] = process.argv.slice(2);
const rows = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const out = [
  `What the per-client rate limit costs under \`wrangler dev\`: the same worker and Redis with and without the \`[[ratelimits]]\` binding, alternated in one run, ${secs} s per run, a fresh 15-event batch per request from 100 client ids (none near its limit). wrangler dev simulates the binding with one Durable Object that writes each count to SQLite; on Cloudflare the counter is in the location's memory, so this is the local cost only. Machine: 2 cores shared with other builds (load average ${load} at the start). Command: \`bash scripts/bench-rate-limit.sh ${secs}\`.`,
  '',
  '| connections | round | without: req/s | p50 ms | p99 ms | with: req/s | p50 ms | p99 ms | with / without |',
  '|---|---|---|---|---|---|---|---|---|',
];
for (let i = 0; i + 1 < rows.length; i += 2) {
  const [a, b] = [rows[i], rows[i + 1]];
  out.push(`| ${a.connections} | ${Math.floor(i / 4) + 1} | ${a.rps} | ${a.p50} | ${a.p99} | ${b.rps} | ${b.p50} | ${b.p99} | ${(b.rps / a.rps).toFixed(2)} |`);
}
console.log(out.join('\n'));
JS
python3 scripts/bench_section.py rate-limit < "$TMP/section.md"
