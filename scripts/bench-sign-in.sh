#!/usr/bin/env bash
# Sign-in (README, "Identity") under `wrangler dev`, on the default Durable
# Object store and on Redis: what a sign-in costs the batch that makes it.
# 40 visitors, one after the other on one connection, each browses
# anonymously (5 batches of 10 events, 3 product clicks each), then sends,
# timed one by one: the sign-in (its first batch with an identity token: the
# link, and the move of the visit before its 202), a second signed-in batch,
# and an anonymous batch from the same browser (a tab that has not heard of
# the sign-in: applied to the client, then moved); beside an anonymous
# batch of a visitor who never signs in. Then each user's clicks are read
# back: every click once. Local only: workerd runs the worker and every
# Durable Object in one process on this machine's cores.
# Writes the `## Sign-in` section of BENCHMARKS.md.
# Usage: scripts/bench-sign-in.sh [visitors, default 40]
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
VISITORS=${1:-40}
bash scripts/tools.sh redis node >&2
source scripts/lib-edge-bench.sh
edge_bench_prerequisites

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

secret() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }
IDENTITY_SECRET="identity-$(secret)"
READ_TOKEN="read-$(secret)"
BASE=
start_worker() { # store state
  wrangler_up wrangler "$2" "FRESHET_STORE:$1" "FRESHET_WRITE_KEYS:dev=*" \
    "FRESHET_READ_TOKEN:$READ_TOKEN" "FRESHET_IDENTITY_SECRET:$IDENTITY_SECRET"
}

cat > "$TMP/sign-in.mjs" <<'JS'
import { createHmac, randomBytes } from 'node:crypto';

const [base, secret, readToken, store, visitors] = process.argv.slice(2);
const tag = randomBytes(3).toString('hex');
const identity = (id) => {
  const signed = `${id}.${Math.floor(Date.now() / 1000) + 600}`;
  return `${signed}.${createHmac('sha256', secret).update(signed).digest('base64url')}`;
};
/** 10 events: 3 product clicks (products k, k+1, k+2), page and category views. */
function batch(id, client, k, user) {
  const t = Date.now() - 60_000;
  const events = Array.from({ length: 10 }, (_, i) => {
    const e = { id: `${id}-${i}`, timestamp: new Date(t + i * 1000).toISOString(), clientId: client, sessionId: `s-${client}` };
    if (i < 3) Object.assign(e, { type: 'product_click', payload: { productId: `prod-${(k + i) % 30}` } });
    else if (i < 5) Object.assign(e, { type: 'viewed_category', payload: { category: `cat-${(k + i) % 7}` } });
    else e.type = 'page_view';
    if (user) e.userId = user;
    return e;
  });
  const body = { batchId: id, sentAt: new Date().toISOString(), events };
  if (user) body.identity = identity(user);
  return body;
}
async function send(body) {
  const t0 = performance.now();
  const r = await fetch(`${base}/v1/ingest`, { method: 'POST', body: JSON.stringify(body),
    headers: { 'content-type': 'application/json', 'x-freshet-key': 'dev' } });
  const text = await r.text();
  const ms = performance.now() - t0;
  if (r.status !== 202) throw new Error(`ingest ${body.batchId}: ${r.status} ${text}`);
  return ms;
}
const times = { anonymous: [], 'sign-in': [], 'signed in': [], 'linked, anonymous': [] };
const users = [];
for (let v = 0; v < Number(visitors); v += 1) {
  const client = `cid-${tag}-${v}`;
  const user = `u-${tag}-${v}`;
  const other = `cid-other-${tag}-${v}`;
  for (let k = 0; k < 5; k += 1) await send(batch(`a-${tag}-${v}-${k}`, client, v + k, null));
  times.anonymous.push(await send(batch(`o-${tag}-${v}`, other, v, null)));
  times['sign-in'].push(await send(batch(`s-${tag}-${v}`, client, v + 5, user)));
  times['signed in'].push(await send(batch(`t-${tag}-${v}`, client, v + 6, user)));
  times['linked, anonymous'].push(await send(batch(`l-${tag}-${v}`, client, v + 7, null)));
  users.push(user);
}
// Every click once: 5 anonymous batches, 2 signed in, 1 anonymous after, 3 clicks each.
let exact = 0;
for (const user of users) {
  const r = await fetch(`${base}/v1/features/user/${user}?names=clicks_product_card`, { headers: { authorization: `Bearer ${readToken}` } });
  const f = await r.json();
  exact += f.features.clicks_product_card.value === 24;
}
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]; };
for (const [kind, xs] of Object.entries(times)) {
  console.log(JSON.stringify({ store, kind, n: xs.length, p50: +pct(xs, 50).toFixed(1), p90: +pct(xs, 90).toFixed(1), max: +Math.max(...xs).toFixed(1), exact, users: users.length }));
}
JS

LOAD_AVG=$(cut -d' ' -f1 /proc/loadavg)
TAKEN=$(date -u '+%Y-%m-%d %H:%M UTC')
for store in durable-object redis; do
  step "sign-in on $store"
  url=$store; [ "$store" = redis ] && url="redis://127.0.0.1:$REDIS_PORT/0?prefix=signin$RANDOM"
  start_worker "$url" "state-$store"
  node "$TMP/sign-in.mjs" "$BASE" "$IDENTITY_SECRET" "$READ_TOKEN" "$store" "$VISITORS" | tee -a "$TMP/runs.jsonl"
  wrangler_down
done

node - "$TMP/runs.jsonl" "$LOAD_AVG" "$VISITORS" "$(nproc)" \
  "$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" "$TAKEN" <<'JS' | tee "$TMP/section.md"
const fs = require('fs');
const [file, load, visitors, cores, model, taken] = process.argv.slice(2);
const runs = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const out = [
  `What a sign-in costs the batch that makes it, under \`wrangler dev\` (taken ${taken}; machine: ${cores} cores, ${model}; load average ${load} at the start), on the default Durable Object store and on a local redis-server. Command: \`bash scripts/bench-sign-in.sh ${visitors}\`. ${visitors} visitors one after the other on one connection; each browses anonymously (5 batches of 10 events, 3 product clicks each, so its client holds a user document and up to 7 pairs), then sends, each timed from request to \`202\`: its **sign-in** (the first batch with an identity token: the link in the client's registry object, then, before the \`202\`, the client's documents read, the move recorded, applied to the user's and logged), a second **signed in** batch, and a **linked, anonymous** batch from the same browser (a tab that has not heard of the sign-in: applied to the client, then moved); beside it an **anonymous** batch of a visitor who never signs in. Every batch 10 events. Afterwards each user's \`clicks_product_card\` is read: 24 (5 + 2 + 1 batches of 3) for every user means every click counted once.`,
  '',
  '| store | batch | n | p50 ms | p90 ms | max ms | p50 / signed in |',
  '|---|---|---:|---:|---:|---:|---:|',
];
for (const store of [...new Set(runs.map((r) => r.store))]) {
  const base = runs.find((r) => r.store === store && r.kind === 'signed in').p50;
  for (const r of runs.filter((r) => r.store === store)) {
    out.push(`| ${store} | ${r.kind} | ${r.n} | ${r.p50} | ${r.p90} | ${r.max} | ${(r.p50 / base).toFixed(2)} |`);
  }
}
out.push('', `Users with every click once: ${[...new Set(runs.map((r) => r.store))].map((s) => { const r = runs.find((x) => x.store === s); return `${s} ${r.exact} of ${r.users}`; }).join(', ')}.`);
out.push('', `What this does not measure: on Cloudflare the registry's Durable Objects are reached across the network, and the move's extra calls (the link, the client's documents, the move's record twice, the user's gate, the apply and the log object) each cost a round trip there; here they are local hops. A sign-in is once per browser and user, so this is a cost per sign-in, not per batch.`);
console.log(out.join('\n'));
JS
python3 scripts/bench_section.py sign-in < "$TMP/section.md"
