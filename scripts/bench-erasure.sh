#!/usr/bin/env bash
# Erasure (README, "Erasure") under `wrangler dev`, on the default
# Durable Object store and on Redis:
# 1. how long an erasure takes for a person with 1,000 events over 7 days of
#    log (100 batches of 10, from two devices, signed in after the first 20),
#    among 3,000 events of 50 other visitors: POST /v1/erasures until its 202
#    (the store's part), and until GET /v1/erasures/{id}, asked every 100 ms,
#    answers the log's part done (settled, then each of their R2 objects
#    rewritten); with the receipt's counts; three rounds, a new person each;
# 2. what the gate (one ErasureRegistry call per batch) costs ingest: 1
#    connection, a fresh 15-event batch per request (edge/bench/load.mjs),
#    with the ERASURES binding and without it (the gate off), alternated.
# Local only: workerd runs the worker and every Durable Object in one
# process on this machine's cores; on Cloudflare the gate's call crosses the
# network to wherever the person's object lives.
# Writes the `## Erasure` section of BENCHMARKS.md.
# Usage: scripts/bench-erasure.sh [seconds per ingest run, default 10]
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
SECONDS_PER_RUN=${1:-10}
bash scripts/tools.sh redis node >&2
source scripts/lib-edge-bench.sh
edge_bench_prerequisites
edge_bench_load_generator

TMP=$(mktemp -d)
WORKER_PID=
WORKER_LOG=
cleanup() {
  local status=$?
  # A failed run shows what the worker said last.
  if [ "$status" -ne 0 ] && [ -n "$WORKER_LOG" ] && [ -f "$WORKER_LOG" ]; then
    echo "--- last lines of $WORKER_LOG" >&2
    tail -n 40 "$WORKER_LOG" >&2
  fi
  [ -n "$WORKER_PID" ] && { kill -TERM -- "-$WORKER_PID" 2>/dev/null || true; }
  [ -n "${REDIS_PORT:-}" ] && redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT

cp -r edge/build "$TMP/build"
wrangler_config "$TMP/build/index.js" > "$TMP/gate-on.toml"
BINDING='{ name = "ERASURES", class_name = "ErasureRegistry" },'
grep -qF "$BINDING" "$TMP/gate-on.toml" || { echo "edge/wrangler.toml has no ERASURES binding" >&2; exit 1; }
grep -vF "$BINDING" "$TMP/gate-on.toml" > "$TMP/gate-off.toml"

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --pidfile "$TMP/redis.pid" --logfile "$TMP/redis.log"
for _ in $(seq 1 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

# Secrets of 16 random bytes (the edge refuses ones shorter than 12 characters).
secret() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }
ADMIN="admin-$(secret)"
IDENTITY_SECRET="identity-$(secret)"
BASE=
start_worker() { # config store state
  wrangler_up "$1" "$3" "FRESHET_STORE:$2" "FRESHET_WRITE_KEYS:dev=*" \
    "FRESHET_ADMIN_TOKEN:$ADMIN" "FRESHET_IDENTITY_SECRET:$IDENTITY_SECRET"
}
# What the worker's log says: requests answered 5xx, and lines of errors
# (wrangler's "✘ [ERROR]", the worker's console_error).
log_faults() {
  sed 's/\x1b\[[0-9;]*m//g' "$WORKER_LOG" |
    awk '/ (GET|POST) \/[^ ]* 5[0-9][0-9] / { s++ } /ERROR|[Ee]rror:|erasure: .*tries again/ { e++ } END { printf "%d %d\n", s, e }'
}
gate_state() { sed 's/\x1b\[[0-9;]*m//g' "$WORKER_LOG" | grep -o 'erasure: o[nf]*' | head -1 | cut -d' ' -f2; }

# One round of part 1: the person's and the others' batches, then the
# erasure, timed. Prints one JSON line.
cat > "$TMP/erasure-round.mjs" <<'JS'
import { createHmac, randomBytes } from 'node:crypto';

const [base, admin, secret, store, round] = process.argv.slice(2);
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const SPAN = 6.9 * DAY; // the edge refuses events older than 7 days
const TYPES = ['page_view', 'product_click', 'viewed_category'];
const tag = randomBytes(3).toString('hex');
const user = `u-erase-${tag}`;
const devices = [`cid-phone-${tag}`, `cid-laptop-${tag}`];

/** An identity token as the site's server issues it (freshet/server). */
function identity(id) {
  const signed = `${id}.${Math.floor(Date.now() / 1000) + 600}`;
  return `${signed}.${createHmac('sha256', secret).update(signed).digest('base64url')}`;
}
/** 10 events from `t` on, 2 s apart, in the hour `t` starts in. */
function batch(id, client, t, userId, k) {
  t = Math.min(t, t - (t % HOUR) + HOUR - 60_000);
  const events = Array.from({ length: 10 }, (_, i) => {
    const e = { id: `${id}-${i}`, type: TYPES[(k + i) % 3], timestamp: new Date(t + i * 2000).toISOString(),
      clientId: client, sessionId: `s-${client}-${Math.floor(t / DAY)}` };
    if (e.type === 'product_click') e.payload = { productId: `prod-${(k * 7 + i) % 50}` };
    if (e.type === 'viewed_category') e.payload = { category: `cat-${(k + i) % 7}` };
    if (userId) e.userId = userId;
    return e;
  });
  const body = { batchId: id, sentAt: new Date().toISOString(), events };
  if (userId) body.identity = identity(userId);
  return body;
}

const start = Date.now() - SPAN;
const bodies = [];
// The person: 100 batches spread over the days, from two devices; signed in
// from the 21st on (the 20 before are the anonymous history the sign-in links).
for (let k = 0; k < 100; k += 1) {
  const t = start + (k + Math.random() * 0.9) * (SPAN / 100);
  bodies.push(batch(`bp-${tag}-${k}`, devices[k % 2], t, k >= 20 ? user : null, k));
}
// 50 others, 6 batches each, anonymous.
for (let v = 0; v < 50; v += 1) {
  for (let k = 0; k < 6; k += 1) {
    const t = start + (k + Math.random() * 0.9) * (SPAN / 6);
    bodies.push(batch(`bo-${tag}-${v}-${k}`, `cid-other-${tag}-${v}`, t, null, v + k));
  }
}
for (let i = bodies.length - 1; i > 0; i -= 1) {
  const j = Math.floor(Math.random() * (i + 1));
  [bodies[i], bodies[j]] = [bodies[j], bodies[i]];
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let limited = 0;
async function send(body) {
  for (;;) {
    const r = await fetch(`${base}/v1/ingest`, { method: 'POST', body: JSON.stringify(body),
      headers: { 'content-type': 'application/json', 'x-freshet-key': 'dev' } });
    const text = await r.text();
    // The per-client limit (100 per 10 s): wait and send the same batch, as the tracker does.
    if (r.status === 429) { limited += 1; await sleep(1000 * Number(r.headers.get('retry-after') || 1)); continue; }
    if (r.status !== 202 || JSON.parse(text).skipped) throw new Error(`ingest ${body.batchId}: ${r.status} ${text}`);
    return;
  }
}
const queue = [...bodies];
const sendStart = Date.now();
await Promise.all(Array.from({ length: 4 }, async () => { while (queue.length) await send(queue.shift()); }));
const sendMs = Date.now() - sendStart;

const auth = { authorization: `Bearer ${admin}`, 'content-type': 'application/json' };
const t0 = performance.now();
const posted = await fetch(`${base}/v1/erasures`, { method: 'POST', headers: auth, body: JSON.stringify({ userId: user }) });
const postText = await posted.text();
const t202 = performance.now();
if (posted.status !== 202) throw new Error(`POST /v1/erasures: ${posted.status} ${postText}`);
let receipt = JSON.parse(postText);
const first = receipt;
let polls = 0;
let tDone = null;
let doneAt = null;
while (performance.now() - t0 < 120_000) {
  await sleep(100);
  const r = await fetch(`${base}/v1/erasures/${receipt.id}`, { headers: auth });
  const text = await r.text();
  polls += 1;
  if (r.status !== 200) throw new Error(`GET /v1/erasures/${receipt.id}: ${r.status} ${text}`);
  receipt = JSON.parse(text);
  if (receipt.log.state === 'done') { tDone = performance.now(); doneAt = Date.now(); break; }
}
// The receipt two seconds later: a second finish (the wait_until's beside a
// GET's) must not change what the first one reported.
await sleep(2000);
const later = await (await fetch(`${base}/v1/erasures/${receipt.id}`, { headers: auth })).json();
const ms = (iso) => Date.parse(iso);
console.log(JSON.stringify({
  store, round: Number(round), person_events: 1000, other_events: 3000, batches: bodies.length, send_ms: sendMs,
  limited, post_ms: Math.round(t202 - t0), done_s: tDone === null ? null : +((tDone - t0) / 1000).toFixed(2),
  settle_s: (ms(receipt.erasesUntil) - ms(receipt.requestedAt)) / 1000,
  // The receipt's log time is when the finish began; this is when it was seen done.
  done_after_settle_s: doneAt === null ? null : (doneAt - ms(receipt.erasesUntil)) / 1000,
  log_at_after_settle_s: receipt.log.at ? (ms(receipt.log.at) - ms(receipt.erasesUntil)) / 1000 : null,
  polls, status_at_202: first.status, store_at_202: first.store.state, log_at_202: first.log.state,
  entities: receipt.store.entities, composites: receipt.composites.entities,
  events: receipt.log.events ?? null, objects: receipt.log.objects ?? null,
  changed_after_2s: JSON.stringify(later) !== JSON.stringify(receipt), receipt, later,
}));
JS

LOAD_AVG=$(cut -d' ' -f1 /proc/loadavg)
TAKEN=$(date -u '+%Y-%m-%d %H:%M UTC')
STORES=(durable-object redis)
store_url() { # store run
  if [ "$1" = redis ]; then echo "redis://127.0.0.1:$REDIS_PORT/0?prefix=$2"; else echo "$1"; fi
}

# Part 1: three erasures on each store, one worker per store.
for store in "${STORES[@]}"; do
  step "erasure on $store"
  start_worker gate-on "$(store_url "$store" "erase$RANDOM")" "state-erase-$store"
  for round in 1 2 3; do
    node "$TMP/erasure-round.mjs" "$BASE" "$ADMIN" "$IDENTITY_SECRET" "$store" "$round" > "$TMP/round.json"
    read -r fivexx errors < <(log_faults)
    node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1]));delete r.receipt;delete r.later;
      console.log(JSON.stringify({...r, log_5xx:+process.argv[2], log_errors:+process.argv[3]}))' \
      "$TMP/round.json" "$fivexx" "$errors" | tee -a "$TMP/erasures.jsonl"
  done
  cp "$WORKER_LOG" "$TMP/erase-$store.log"
  wrangler_down
done

# Part 2: ingest with the gate on and off, alternated (on, off, off, on).
gate_run() { # store gate round
  start_worker "gate-$2" "$(store_url "$1" "gate$2$3$RANDOM")" "state-gate-$1-$2-$3"
  node edge/bench/load.mjs warmup "$BASE/v1/ingest" 1 2 > /dev/null
  node edge/bench/load.mjs "$2" "$BASE/v1/ingest" 1 "$SECONDS_PER_RUN" > "$TMP/run.json"
  read -r fivexx errors < <(log_faults)
  node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1]));
    const [store, gate, round, said, s, e] = process.argv.slice(2);
    console.log(JSON.stringify({...r, store, gate, round:+round, worker_said: said, log_5xx:+s, log_errors:+e}))' \
    "$TMP/run.json" "$1" "$2" "$3" "$(gate_state)" "$fivexx" "$errors" | tee -a "$TMP/gate.jsonl"
  wrangler_down
}
for store in "${STORES[@]}"; do
  step "the gate's cost on $store"
  gate_run "$store" on 1; gate_run "$store" off 1
  gate_run "$store" off 2; gate_run "$store" on 2
done

node - "$TMP/erasures.jsonl" "$TMP/gate.jsonl" "$LOAD_AVG" "$SECONDS_PER_RUN" "$(nproc)" \
  "$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" "$TAKEN" <<'JS' | tee "$TMP/section.md"
const fs = require('fs');
const [erasureFile, gateFile, load, secs, cores, model, taken] = process.argv.slice(2);
const read = (f) => fs.readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const erasures = read(erasureFile);
const gates = read(gateFile);
const settle = erasures[0].settle_s;
const rounds = (rs) => rs.map((r) => `${r.store} round ${r.round}`).join(', ');
const range = (xs) => `${Math.min(...xs)}–${Math.max(...xs)}`;
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const out = [
  `Erasure under \`wrangler dev\` (taken ${taken}; machine: ${cores} cores, ${model}, shared with other work; load average ${load} at the start), on the default Durable Object store and on a local redis-server. Command: \`bash scripts/bench-erasure.sh ${secs}\`.`,
  '',
  `**How long an erasure takes.** Each round a new person sends 1,000 events (100 batches of 10: page views, product clicks, category views, each batch within 20 s and one hour, the batches spread over the last 6.9 days) from two devices, anonymous for the first 20 batches and signed in (identity token) after, mixed with 3,000 events of 50 other visitors (300 batches), 4 requests at a time; then \`POST /v1/erasures {"userId": …}\` with the admin token, and \`GET /v1/erasures/{id}\` every 100 ms until the log's part is done. "POST → 202": the tombstones durable and the person's entities swept from the store (the 202's receipt had the store's part done and the log's pending in ${erasures.every((r) => r.store_at_202 === 'done' && r.log_at_202 === 'pending') ? 'every round' : `every round but ${rounds(erasures.filter((r) => !(r.store_at_202 === 'done' && r.log_at_202 === 'pending')))}`}). "POST → log done": until the GET that answers the log's part done; it includes the settling (erasesUntil − requestedAt: ${settle} s, with the default \`FRESHET_STORE_TIMEOUT_MS\` of 2,000 ms: max(2 × timeout + 1 s, 6 s)). "done − erasesUntil": what follows the settling, the last sweep and the rewrite of the person's R2 objects, seen through the 100 ms poll: the first GET after the settling finishes the erasure itself (the receipt's log time, when that began, was ${range(erasures.map((r) => r.log_at_after_settle_s))} s after erasesUntil; the POST's \`wait_until\` would begin it 0.2 s plus the POST's own time after erasesUntil). Counts from the receipt: the person's own entities (the user and the two devices' clients), the composite (user × product) entities, the log's events taken out and its objects rewritten; the same erasure's receipt two seconds later, after the \`wait_until\` too, ${erasures.some((r) => r.changed_after_2s) ? `had CHANGED in ${rounds(erasures.filter((r) => r.changed_after_2s))} (a second finish)` : 'was unchanged in every round'}. Three rounds on one worker per store, so each later round finds the earlier rounds' log and tombstones beside its own; "sent": the 400 batches' sending time.`,
  '',
  '| store | round | POST → 202 ms | POST → log done s | done − erasesUntil s | entities | composites | log events | log objects | sent s | 429s | 5xx / error lines in the worker\'s log |',
  '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
];
for (const r of erasures) {
  out.push(`| ${r.store} | ${r.round} | ${r.post_ms} | ${r.done_s ?? 'not in 120 s'} | ${r.done_after_settle_s ?? '–'} | ${r.entities} | ${r.composites} | ${r.events ?? '–'} | ${r.objects ?? '–'} | ${(r.send_ms / 1000).toFixed(1)} | ${r.limited} | ${r.log_5xx} / ${r.log_errors} |`);
}
out.push('', `**What the gate costs ingest.** Every batch passes the gate: one call to the person's \`ErasureRegistry\` Durable Object that records what the batch wrote and answers their tombstone. Measured as ingest at 1 connection, ${secs} s a run after a 2 s warm-up, a fresh 15-event batch per request from 100 client ids (\`edge/bench/load.mjs\`, autocannon), on a fresh worker and store each run, with the \`ERASURES\` binding in the generated wrangler config and with its line removed (the worker then logs "erasure: off" and calls nothing), alternated on, off, off, on in one run. "on / off" is the ratio of requests/s.`,
  '', '| store | round | gate on: req/s | p50 ms | p99 ms | gate off: req/s | p50 ms | p99 ms | on / off req/s | on / off p50 |',
  '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const store of [...new Set(gates.map((g) => g.store))]) {
  for (const round of [1, 2]) {
    const on = gates.find((g) => g.store === store && g.gate === 'on' && g.round === round);
    const off = gates.find((g) => g.store === store && g.gate === 'off' && g.round === round);
    out.push(`| ${store} | ${round} | ${on.rps} | ${on.p50} | ${on.p99} | ${off.rps} | ${off.p50} | ${off.p99} | ${(on.rps / off.rps).toFixed(2)} | ${(on.p50 / off.p50).toFixed(2)} |`);
  }
}
out.push('', `Mean on / off, requests/s: ${[...new Set(gates.map((g) => g.store))].map((store) => {
  const rps = (gate) => mean(gates.filter((g) => g.store === store && g.gate === gate).map((g) => g.rps));
  const p50 = (gate) => mean(gates.filter((g) => g.store === store && g.gate === gate).map((g) => g.p50));
  return `${store} ${(rps('on') / rps('off')).toFixed(2)} (p50 ${p50('on').toFixed(1)} ms against ${p50('off').toFixed(1)} ms)`;
}).join('; ')}.`);
const faults = gates.filter((g) => g.non2xx || g.errors || g.log_5xx || g.log_errors);
const said = gates.map((g) => `${g.gate}: ${g.worker_said}`);
out.push('', `Non-2xx answers, client errors, or 5xx and error lines in the worker's log during these runs: ${faults.length ? faults.map((g) => `${g.store} ${g.gate} ${g.round}: non2xx ${g.non2xx}, errors ${g.errors}, 5xx ${g.log_5xx}, error lines ${g.log_errors}`).join('; ') : 'none'}. The worker said "erasure: on/off" as configured: ${said.every((s) => s.split(': ')[0] === s.split(': ')[1]) ? 'yes' : said.join(', ')}.`);
out.push('', `What this does not measure: workerd runs the worker, the feature store's and the registry's Durable Objects in one process on these ${cores} cores, so the gate's call here is a local hop; on Cloudflare it crosses the network to wherever the person's object lives, a round trip this does not measure, and the erasure's rewrite reads and writes real R2 rather than wrangler's local bucket. The ingest rates are \`wrangler dev\`'s, for the ratio, not production figures.`);
console.log(out.join('\n'));
JS
python3 scripts/bench_section.py erasure < "$TMP/section.md"
