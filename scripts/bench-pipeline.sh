#!/usr/bin/env bash
# The two pipelines side by side under `wrangler dev` on one Redis: ingest
# requests/s and p50/p99 (autocannon, a fresh 15-event batch per request, 1
# and 8 connections, two rounds, alternated), beside GET /health (an empty
# request) on the same worker; then, per 1,000 batches, the store's work
# (Redis `INFO commandstats`), the log's R2 objects and bytes and the
# consumer's deliveries, and how long the queue's consumer took to drain
# after the load stopped; and from those, the cost of a billion events a
# month in each pipeline at published prices. Local: workerd runs the
# consumer in the same process as ingest, on the same 2 cores.
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
r2_blobs() { find "$1" -path '*r2*' -name '*.sqlite' -prune -o -path '*r2*blobs*' -type f -print0 2>/dev/null; }
r2_objects() { r2_blobs "$1" | tr -cd '\0' | wc -c; }
r2_bytes() { r2_blobs "$1" | xargs -0 -r stat -c %s | awk '{ s += $1 } END { print s+0 }'; }
# The consumer's invocations on the ingest queue: wrangler logs one line per
# delivery ("QUEUE freshet-ingest 37/37 (12ms)").
deliveries() { sed 's/\x1b\[[0-9;]*m//g' "$1" | grep -c '^.*QUEUE freshet-ingest [0-9]' || true; }

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
    const [file, p, c, round, sent, logged, drained, applies, calls, objects, dead, bytes, deliveries] = process.argv.slice(1);
    const r = JSON.parse(require("fs").readFileSync(file));
    console.log(JSON.stringify({ ...r, pipeline: p, connections: +c, round: +round, sent: +sent, logged: +logged,
      drained_s: drained === "" ? null : +(+drained).toFixed(1), applies_per_1000: Math.round(1000 * applies / sent),
      calls_per_1000: Math.round(1000 * calls / sent), r2_per_1000: Math.round(1000 * objects / sent), dead: +dead,
      r2_bytes_per_batch: Math.round(bytes / sent), deliveries_per_1000: Math.round(1000 * deliveries / sent) }));' \
    "$TMP/run.json" "$1" "$2" "$3" "$sent" "${n:-0}" "$drained" "$applies" "$calls" "$(r2_objects "$state")" "$dead" \
    "$(r2_bytes "$state")" "$(deliveries "$TMP/wrangler-$port.log")" | tee -a "$TMP/results.jsonl"
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
  `The direct and the queue pipeline under \`wrangler dev\` on one Redis, alternated in one run, ${secs} s a run, a fresh 15-event batch per request from 100 client ids (\`edge/bench/load.mjs\`, autocannon), each beside \`GET /health\` (an empty request) on the same worker; in the queue pipeline \`/health\` also lists the bucket for its dead-letter count, so its "empty" rate is lower and the ratio flatters it. "drained": after the load stopped, until the log held every batch taken (the queue's consumer catching up; the direct pipeline holds them before its 202, so its figure is the time of one look at the log). Per 1,000 batches: the consumer's deliveries (its invocations, from wrangler's log; each is one store round trip, \`Edge::consume_delivery\`, where the direct pipeline makes one per batch), the applies (\`EVALSHA\`, one per entity of a batch) and every Redis command, the scripts' own calls included, from \`INFO commandstats\`; R2 objects and their bytes counted in \`wrangler dev\`'s local bucket. Local only: workerd runs the queue's consumer in the same process as ingest, on the same 2 cores, so the queue pipeline's ingest rate here is not what Cloudflare, where consumers run apart, would give. Machine: 2 cores (load average ${load} at the start). Command: \`bash scripts/bench-pipeline.sh ${secs}\`.`,
  '',
  '| pipeline | connections | round | ingest req/s | p50 ms | p99 ms | empty req/s | ingest / empty | drained | dead letters | deliveries / 1,000 | applies / 1,000 | Redis commands / 1,000 | R2 objects / 1,000 | R2 bytes / batch |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
];
for (const r of rows) {
  const e = empty(r);
  out.push(`| ${r.pipeline} | ${r.connections} | ${r.round} | ${r.rps} | ${r.p50} | ${r.p99} | ${e?.rps ?? ''} | ${e ? (r.rps / e.rps).toFixed(2) : ''} | ${r.drained_s === null ? 'no' : `${r.drained_s} s`} | ${r.dead} | ${r.pipeline === 'queue' ? r.deliveries_per_1000 : '–'} | ${r.applies_per_1000} | ${r.calls_per_1000} | ${r.r2_per_1000} | ${r.r2_bytes_per_batch} |`);
}

// Per billion events a month, from the 8-connection runs' means and the
// published prices below (free allowances left out: at this volume they are
// a rounding error).
const PRICE = {
  workers: 0.30 / 1e6, // Workers Paid, per request
  queueOp: 0.40 / 1e6, // Queues, per operation (64 KB written, read or deleted)
  r2A: 4.50 / 1e6, // R2 Class A (PutObject), per operation
  r2B: 0.36 / 1e6, // R2 Class B (GetObject), per operation
  r2GbMonth: 0.015, // R2 storage, per GB-month
  command: 0.20 / 1e5, // Upstash Redis pay-as-you-go, per command
};
const EVENTS = 1e9;
const PER_BATCH = 15;
const batches = EVENTS / PER_BATCH;
const mean = (pipeline, key) => {
  const rs = rows.filter((r) => r.pipeline === pipeline && r.connections === 8);
  return rs.reduce((s, r) => s + r[key], 0) / rs.length;
};
const money = (x) => `$${x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(2)}`;
const cost = (pipeline) => {
  const objects = (batches * mean(pipeline, 'r2_per_1000')) / 1000;
  const queued = pipeline === 'queue';
  const invocations = queued ? (batches * mean(pipeline, 'deliveries_per_1000')) / 1000 : 0;
  const lines = {
    'Workers requests (ingest, and the consumer\'s invocations)': (batches + invocations) * PRICE.workers,
    'Queues operations (3 per message under 64 KB: write, read, delete)': queued ? 3 * batches * PRICE.queueOp : 0,
    'R2 Class A (one PutObject per log object)': objects * PRICE.r2A,
    'R2 Class B (the log read once, e.g. for a training set)': objects * PRICE.r2B,
    'R2 storage (a month\'s log kept a month)': ((batches * mean(pipeline, 'r2_bytes_per_batch')) / 1e9) * PRICE.r2GbMonth,
    'Store commands (EVALSHA, at Upstash\'s per-command price)': ((batches * mean(pipeline, 'applies_per_1000')) / 1000) * PRICE.command,
  };
  return lines;
};
const direct = cost('direct');
const queue = cost('queue');
const total = (c) => Object.values(c).reduce((s, x) => s + x, 0);
out.push('', `Cost per billion events a month (${(batches / 1e6).toFixed(1)}M batches of ${PER_BATCH} events), from the 8-connection runs above (their means) and the published prices: Workers Paid $0.30 per million requests (developers.cloudflare.com/workers/platform/pricing); Queues $0.40 per million operations, an operation being 64 KB written, read or deleted, so a message delivered once is three (developers.cloudflare.com/queues/platform/pricing); R2 Class A $4.50 and Class B $0.36 per million operations, storage $0.015 per GB-month (developers.cloudflare.com/r2/pricing); Redis commands at Upstash's pay-as-you-go $0.20 per 100,000 (upstash.com/pricing/redis), the one Redis service that prices per command (Redis Cloud Pro bills capacity units of memory and ops/s whose prices vary by cloud and region). Prices as those pages state them, read on 2026-12-07; free allowances left out; Workers CPU time (a few ms a request) and a Redis server's own cost left out. A script call is counted as one command: Upstash's pricing page does not say whether the commands a script runs count too (14-16 per call here, the two Redis columns above). The traffic folds well (100 visitors, 50 products, about 8 batches a delivery at 8 connections); a site's visitors rarely share a delivery, so most of its saving would come from popular items.`,
  '', '| per billion events a month | direct | queue |', '|---|---:|---:|');
for (const k of Object.keys(direct)) out.push(`| ${k} | ${money(direct[k])} | ${money(queue[k])} |`);
out.push(`| **total** | **${money(total(direct))}** | **${money(total(queue))}** |`);
console.log(out.join('\n'));
JS
python3 scripts/bench_section.py pipeline < "$TMP/section.md"
