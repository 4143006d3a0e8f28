#!/usr/bin/env bash
# The two pipelines side by side under `wrangler dev` on one Redis: ingest
# requests/s and p50/p99 (autocannon, a fresh 15-event batch per request, 1
# and 8 connections, two rounds, alternated), beside GET /health (an empty
# request) on the same worker; then, per 1,000 batches, the store's round
# trips (Redis `INFO commandstats`) and the log's R2 objects, and how long
# the queue's consumer took to drain after the load stopped. Local: workerd
# runs the consumer in the same process as ingest, on the same 2 cores.
# Writes the `## Pipeline` section of BENCHMARKS.md.
# Usage: scripts/bench-pipeline.sh [seconds per run, default 10]
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
wrangler_config "$TMP/build/index.js" > "$TMP/wrangler.toml"
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --pidfile "$TMP/redis.pid" --logfile "$TMP/redis.log"
for _ in $(seq 1 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

# The store's commands so far: EVALSHA/EVAL (applies) and every command.
store_calls() {
  redis-cli -p "$REDIS_PORT" info commandstats |
    awk -F'[:=,]' '/^cmdstat_/ { all += $3; if ($1 ~ /evalsha|eval$/) apply += $3 } END { print apply+0, all+0 }'
}
# Batches in the log (GET /v1/events counts them) and its objects on disk.
logged() {
  curl -fs -D - -o /dev/null -H "authorization: Bearer bench-read-token" \
    "$1/v1/events?from=$(( $(date +%s) * 1000 - 3600000 ))" | awk -F': ' 'tolower($1)=="freshet-batches" { print $2+0 }'
}
r2_objects() { find "$1" -path '*r2*' -name '*.sqlite' -prune -o -path '*r2*blobs*' -type f -print 2>/dev/null | wc -l; }

LOAD_AVG=$(cut -d' ' -f1 /proc/loadavg)
run() { # pipeline connections round
  local port inspect base state
  port=$(free_port); inspect=$(free_port); base="http://127.0.0.1:$port"; state="$TMP/state-$1-$2-$3"
  redis-cli -p "$REDIS_PORT" config resetstat >/dev/null
  setsid edge/node_modules/.bin/wrangler dev --config "$TMP/wrangler.toml" --local --ip 127.0.0.1 \
    --port "$port" --inspector-port "$inspect" --show-interactive-dev-session=false \
    --persist-to "$state" --var "FRESHET_STORE:redis://127.0.0.1:$REDIS_PORT/0?prefix=b$1$2$3" \
    --var "FRESHET_WRITE_KEYS:dev=*" --var "FRESHET_READ_TOKEN:bench-read-token" --var "FRESHET_PIPELINE:$1" \
    > "$TMP/wrangler-$port.log" 2>&1 < /dev/null &
  WORKER_PID=$!
  wait_http "$base/health"
  node edge/bench/load.mjs warmup "$base/v1/ingest" 2 2 > "$TMP/warmup.json"
  node edge/bench/load.mjs "health" "$base/health" "$2" "$SECONDS_PER_RUN" get | sed "s/^{/{\"pipeline\":\"$1\",\"round\":$3,\"connections\":$2,/" >> "$TMP/health.jsonl"
  local sent t0 drained n dead
  node edge/bench/load.mjs "$1" "$base/v1/ingest" "$2" "$SECONDS_PER_RUN" > "$TMP/run.json"
  # Batches taken (202), warm-up included: what the log must hold.
  sent=$(node -e 'const f=require("fs");const t=(p)=>{const r=JSON.parse(f.readFileSync(p));return r.requests-r.non2xx};console.log(t(process.argv[1])+t(process.argv[2]))' "$TMP/run.json" "$TMP/warmup.json")
  t0=$(date +%s.%N); drained=
  for _ in $(seq 1 180); do
    n=$(logged "$base" || echo 0)
    if [ "${n:-0}" -ge "$sent" ]; then drained=$(echo "$(date +%s.%N) - $t0" | bc); break; fi
    sleep 1
  done
  dead=$(curl -fs "$base/health" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).deadLetters ?? 0))')
  read -r applies calls < <(store_calls)
  node -e '
    const [file, p, c, round, sent, logged, drained, applies, calls, objects, dead] = process.argv.slice(1);
    const r = JSON.parse(require("fs").readFileSync(file));
    console.log(JSON.stringify({ ...r, pipeline: p, connections: +c, round: +round, sent: +sent, logged: +logged,
      drained_s: drained === "" ? null : +(+drained).toFixed(1), applies_per_1000: Math.round(1000 * applies / sent),
      calls_per_1000: Math.round(1000 * calls / sent), r2_per_1000: Math.round(1000 * objects / sent), dead: +dead }));' \
    "$TMP/run.json" "$1" "$2" "$3" "$sent" "${n:-0}" "$drained" "$applies" "$calls" "$(r2_objects "$state")" "$dead" | tee -a "$TMP/results.jsonl"
  kill -TERM -- "-$WORKER_PID" 2>/dev/null || true
  wait "$WORKER_PID" 2>/dev/null || true
  WORKER_PID=
}
for round in 1 2; do
  for c in 1 8; do run direct "$c" "$round"; run queue "$c" "$round"; done
done

node - "$TMP/results.jsonl" "$TMP/health.jsonl" "$LOAD_AVG" "$SECONDS_PER_RUN" <<'JS' | tee "$TMP/section.md"
const fs = require('fs');
const [file, healthFile, load, secs] = process.argv.slice(2);
const read = (f) => fs.readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const rows = read(file);
const health = read(healthFile);
const empty = (r) => health.find((h) => h.pipeline === r.pipeline && h.connections === r.connections && h.round === r.round);
const out = [
  `The direct and the queue pipeline under \`wrangler dev\` on one Redis, alternated in one run, ${secs} s a run, a fresh 15-event batch per request from 100 client ids (\`edge/bench/load.mjs\`, autocannon), each beside \`GET /health\` (an empty request) on the same worker; in the queue pipeline \`/health\` also lists the bucket for its dead-letter count, so its "empty" rate is lower and the ratio flatters it. "drained": after the load stopped, until the log held every batch taken (the queue's consumer catching up; the direct pipeline holds them before its 202, so its figure is the time of one look at the log). Store work and R2 objects are per 1,000 batches: the applies (\`EVALSHA\`, one per entity of a batch, all of a batch's in one pipeline) and every Redis command, the scripts' own calls included, from \`INFO commandstats\`; R2 objects counted in \`wrangler dev\`'s local bucket. Local only: workerd runs the queue's consumer in the same process as ingest, on the same 2 cores, so the queue pipeline's ingest rate here is not what Cloudflare, where consumers run apart, would give. Machine: 2 cores (load average ${load} at the start). Command: \`bash scripts/bench-pipeline.sh ${secs}\`.`,
  '',
  '| pipeline | connections | round | ingest req/s | p50 ms | p99 ms | empty req/s | ingest / empty | drained | dead letters | applies / 1,000 | Redis commands / 1,000 | R2 objects / 1,000 |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
];
for (const r of rows) {
  const e = empty(r);
  out.push(`| ${r.pipeline} | ${r.connections} | ${r.round} | ${r.rps} | ${r.p50} | ${r.p99} | ${e?.rps ?? ''} | ${e ? (r.rps / e.rps).toFixed(2) : ''} | ${r.drained_s === null ? 'no' : `${r.drained_s} s`} | ${r.dead} | ${r.applies_per_1000} | ${r.calls_per_1000} | ${r.r2_per_1000} |`);
}
console.log(out.join('\n'));
JS
python3 scripts/bench_section.py pipeline < "$TMP/section.md"
