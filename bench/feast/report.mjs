// Turns the JSON lines of scripts/bench-feast.sh into the `## Feast` section
// of BENCHMARKS.md (markdown on stdout). Every figure comes from this run.
// Usage: node report.mjs <results.jsonl> <check.json> <seconds per run>
//          <load before> <load after> <feast version> <redis version>
import fs from 'node:fs';
import os from 'node:os';

const [resultsPath, checkPath, seconds, loadBefore, loadAfter, feastVersion, redisVersion] = process.argv.slice(2);
const runs = fs.readFileSync(resultsPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const check = JSON.parse(fs.readFileSync(checkPath, 'utf8'));
const get = (label, c) => runs.find((r) => r.label === label && r.connections === c);
const conns = [...new Set(runs.filter((r) => r.label === 'freshet read').map((r) => r.connections))];

const lat = (us) => (us == null ? '–' : us < 1000 ? `${Math.round(us)} µs` : `${(us / 1000).toFixed(2)} ms`);
const num = (n) => (n == null ? '–' : Math.round(n).toLocaleString('en-US'));
const ratio = (a, b) => (a && b ? `${(a / b).toFixed(a / b >= 10 ? 0 : 1)}×` : '–');

// Redis's own counters for one run: commands, server µs and connections per request.
function redisWork(r) {
  if (!r?.redis || !r.requests) return null;
  const cmds = Object.entries(r.redis.commands).filter(([k]) => !['info', 'config|resetstat', 'config'].includes(k));
  const per = (x) => x / r.requests;
  const show = (list) => list.map(([k, v]) => `${(per(v.calls)).toFixed(per(v.calls) % 1 ? 1 : 0)} ${k.toUpperCase()}`).join(' + ');
  // Redis counts the commands a script runs as well as the script, whose
  // time already includes theirs: when a request runs scripts, the other
  // commands are shown as the scripts' and not added again.
  const scripts = cmds.filter(([k]) => k === 'evalsha' || k === 'eval');
  const top = scripts.length ? scripts : cmds;
  const inner = scripts.length ? cmds.filter(([k]) => k !== 'evalsha' && k !== 'eval') : [];
  return {
    commands: (show(top) || 'none') + (inner.length ? ` (running ${show(inner)})` : ''),
    usec: per(top.reduce((n, [, v]) => n + v.usec, 0)),
    connections: per(r.redis.connections),
  };
}

const warmup = runs.find((r) => r.warmup != null)?.warmup ?? 2;
const loads = runs.map((r) => r.load1).filter((x) => x != null);
// The machine and the command under each table, with the load of its own runs.
const USAGE = {
  'freshet-ingest': 'freshet-ingest FRESHET_URL EVENTS', 'feast-push': 'feast-push FEAST_URL ROWS',
  'freshet-read': 'freshet-read FRESHET_URL USER TOKEN', 'feast-read': 'feast-read FEAST_URL USER',
  hmget: 'hmget REDIS_PORT KEY FIELD…',
};
function caption(...modes) {
  const l = runs.filter((r) => modes.includes(r.mode) || (modes.includes('hmget') && r.label === 'redis-benchmark hmget'))
    .map((r) => r.load1).filter((x) => x != null);
  const range = l.length ? `${Math.min(...l).toFixed(2)}–${Math.max(...l).toFixed(2)}` : '–';
  p();
  p(`Machine: ${os.availableParallelism()} cores, ${cpu}, 1-minute load average ${range} during these runs.`);
  p(`Command: \`bash scripts/bench-feast.sh ${seconds}\`, whose runs here are ${modes.map((m) => `\`node bench/feast/load.mjs LABEL CONNS ${seconds} ${warmup} ${USAGE[m]}\``).join(' and ')}${modes.includes('hmget') ? ' and `redis-benchmark -c CONNS -n COUNT --csv HMGET KEY FIELD…`' : ''}.`);
}
const cpu = os.cpus()[0]?.model?.trim() ?? 'unknown CPU';
const out = [];
const p = (s = '') => out.push(s);

p(`Freshet's worker and Feast ${feastVersion}'s feature server on one redis-server ${redisVersion}, driven by one`);
p('client (bench/feast/load.mjs: Node, keep-alive connections, each sending its next request when the');
p(`last answer is read; latency timed per request, exact percentiles). Each run ${seconds} s after a ${warmup} s warm-up.`);
p(`Freshet is served by workerd alone (the bundle wrangler builds, no \`wrangler dev\` proxy); Feast by`);
p('`feast serve` (gunicorn with one uvicorn worker, its default; access log off; no worker restart every');
p('1000 requests, `--max-requests 0`), Redis online store. The client, both servers and Redis share the machine.');
p();
p(`Machine: ${os.availableParallelism()} cores (\`nproc\`), ${cpu}; load average ${loadBefore} before the runs,`);
p(`${loadAfter} after, 1-minute load between ${Math.min(...loads).toFixed(2)} and ${Math.max(...loads).toFixed(2)} at the end of the runs.`);
p(`Command: \`bash scripts/bench-feast.sh ${seconds}\` (part of \`make bench\`; \`SECONDS_PER_RUN\` or the first`);
p('argument sets the length of a run). The machine is shared: read the ratios, which were measured side by side.');
p();
p(`Same events, same answer: before the runs, 10 events of one user went to Freshet raw and, folded into`);
p(`one row, to Feast; both then served ${JSON.stringify(check.freshet)} (check: ${check.check}).`);


// Issue 7's expectations, judged on this run's figures.
const reads = conns.map((c) => [c, get('freshet read', c), get('feast read', c)]);
const slower = reads.filter(([, f, k]) => !(f && k && f.p50_us < k.p50_us && f.p99_us < k.p99_us));
const best = (re) => Math.max(...runs.filter((r) => re.test(r.label)).map((r) => r.rps * Number(r.label.split(' ').at(-1))));
const bestFreshet = best(/^freshet ingest/); const bestFeast = best(/^feast push/);
const f1 = get('freshet ingest 1', 1); const k1 = get('feast push 1', 1);
p();
p('Against issue 7\'s expectations, in this run: the serving read ' + (slower.length === 0
  ? `beat Feast's at p50 and p99 at every concurrency (${conns.join(' and ')} connections).`
  : `did not beat Feast's at p50 and p99 at ${slower.map(([c, f, k]) => `${c} connection(s) (p50 ${lat(f?.p50_us)} against ${lat(k?.p50_us)}, p99 ${lat(f?.p99_us)} against ${lat(k?.p99_us)})`).join(' nor at ')}.`));
p(`The write path took ${num(bestFreshet)} events/s at best against Feast's ${num(bestFeast)} rows/s at best, ${ratio(bestFreshet, bestFeast)};`);
p(`one event against one row on one connection, ${ratio(f1?.rps, k1?.rps)} the requests/s. The issue asks for two orders of magnitude (100×).`);

p();
p('### Write path');
p();
p('The same event stream on both sides, each event of a request from a different user. Freshet takes the');
p('raw events (`POST /v1/ingest`, a v1 batch with a fresh `batchId`) and aggregates them itself: counts,');
p('last values and windows of features.toml, for users and products. Feast\'s push source takes rows already');
p('computed: the load client folds each event into its user\'s running counts and pushes that user\'s row');
p('(`POST /push`, `to: "online"`). So "1" is one event against one row, "15" fifteen events (a tracker');
p('batch) against fifteen rows, and "500" the most events a Freshet batch may carry against as many rows.');
p('Feast\'s figures leave out the stream processor that would compute its rows.');
p();
p('| request | conns | Freshet req/s | Feast req/s | Freshet ÷ Feast | Freshet events/s | Feast rows/s | Freshet p50 | Feast p50 | Freshet p99 | Feast p99 | Feast ÷ Freshet p50 / p99 |');
p('|---|---|---|---|---|---|---|---|---|---|---|---|');
const sizes = [...new Set(runs.filter((r) => r.mode === 'freshet-ingest').map((r) => Number(r.label.split(' ').at(-1))))];
for (const c of conns) {
  for (const n of sizes) {
    const f = get(`freshet ingest ${n}`, c); const k = get(`feast push ${n}`, c);
    if (!f || !k) continue;
    p(`| ${n === 1 ? '1 event / 1 row' : `${n} events / ${n} rows`} | ${c} | ${num(f.rps)} | ${num(k.rps)} | ${ratio(f.rps, k.rps)} | ${num(f.rps * n)} | ${num(k.rps * n)} | ${lat(f.p50_us)} | ${lat(k.p50_us)} | ${lat(f.p99_us)} | ${lat(k.p99_us)} | ${ratio(k.p50_us, f.p50_us)} / ${ratio(k.p99_us, f.p99_us)} |`);
  }
}
caption('freshet-ingest', 'feast-push');

p();
p('### Read path');
p();
p('One user\'s five features (pageviews, clicks_product_card, searches, last_interacted_product,');
p('last_event_at): Freshet `GET /v1/features/user/{id}?names=…` (bearer token) against Feast');
p('`POST /get-online-features` (`user_features:…`, one entity).');
p();
p('| conns | Freshet p50 | Feast p50 | Feast ÷ Freshet | Freshet p99 | Feast p99 | Feast ÷ Freshet | Freshet req/s | Feast req/s |');
p('|---|---|---|---|---|---|---|---|---|');
for (const c of conns) {
  const f = get('freshet read', c); const k = get('feast read', c);
  p(`| ${c} | ${lat(f?.p50_us)} | ${lat(k?.p50_us)} | ${ratio(k?.p50_us, f?.p50_us)} | ${lat(f?.p99_us)} | ${lat(k?.p99_us)} | ${ratio(k?.p99_us, f?.p99_us)} | ${num(f?.rps)} | ${num(k?.rps)} |`);
}
caption('freshet-read', 'feast-read');

p();
p('### Floor: a raw HMGET');
p();
p('`HMGET fs:{user:<id>}` of the five fields Freshet keeps for those features, on the same Redis: from');
p('the same Node client (a RESP socket per connection, same loop), and from `redis-benchmark` (C, its');
p('custom-command mode, a bounded count of requests).');
p();
p('| client | conns | HMGET p50 | HMGET p99 | req/s | Freshet read ÷ floor p50 / p99 | Feast read ÷ floor p50 / p99 |');
p('|---|---|---|---|---|---|---|');
for (const client of ['node hmget', 'redis-benchmark hmget']) {
  for (const c of conns) {
    const h = get(client, c); const f = get('freshet read', c); const k = get('feast read', c);
    if (!h) continue;
    p(`| ${client === 'node hmget' ? 'Node, same loop' : 'redis-benchmark'} | ${c} | ${lat(h.p50_us)} | ${lat(h.p99_us)} | ${num(h.rps)} | ${ratio(f?.p50_us, h.p50_us)} / ${ratio(f?.p99_us, h.p99_us)} | ${ratio(k?.p50_us, h.p50_us)} / ${ratio(k?.p99_us, h.p99_us)} |`);
  }
}
caption('hmget');

p();
p('### Where the time goes');
p();
p('Measured at 1 connection: each server\'s HTTP floor (`GET /health`, no Redis); the time the Freshet');
p('worker waited on its store (connect and round trips; the mean of its `Server-Timing: store`');
p('header, whole milliseconds as workerd\'s clock moves); Redis\'s own count of the commands, server time and connections of each request');
p('(`INFO commandstats`, reset after the warm-up); and what is left of the p50 for the server\'s own');
p('code: p50 less the HTTP floor and the store wait (Freshet) or Redis\'s server time (Feast, whose');
p('client round trip to Redis stays in that rest).');
p();
const fh = get('freshet health', 1); const kh = get('feast health', 1);
const rows = [
  ['read', get('freshet read', 1), get('feast read', 1)],
  ...sizes.map((n) => [`write, ${n} event${n > 1 ? 's' : ''} / ${n} row${n > 1 ? 's' : ''}`, get(`freshet ingest ${n}`, 1), get(`feast push ${n}`, 1)]),
];
p('| request | side | p50 | HTTP floor p50 | store wait (worker) | Redis commands per request | Redis server time per request | new Redis connections per request | the rest |');
p('|---|---|---|---|---|---|---|---|---|');
for (const [what, f, k] of rows) {
  for (const [side, r, h] of [['Freshet', f, fh], ['Feast', k, kh]]) {
    const w = redisWork(r);
    if (!r || !w) continue;
    const store = r.store_mean_us ?? w.usec;
    p(`| ${what} | ${side} | ${lat(r.p50_us)} | ${lat(h?.p50_us)} | ${lat(r.store_mean_us)} | ${w.commands} | ${lat(w.usec)} | ${w.connections.toFixed(2)} | ${lat(r.p50_us - (h?.p50_us ?? 0) - store)} |`);
  }
}
p();
const share = (part, whole) => (part != null && whole ? `${((100 * part) / whole).toFixed((100 * part) / whole < 10 ? 1 : 0)}%` : "–");
const kr = get('feast read', 1); const fr = get('freshet read', 1);
const kp = sizes.map((n) => get(`feast push ${n}`, 1)); const fp = sizes.map((n) => get(`freshet ingest ${n}`, 1));
const bigN = sizes.at(-1);
p('Feast: every request crosses gunicorn\'s uvicorn worker and FastAPI in one Python process, whose');
p('HTTP floor is in the table. A read validates the JSON body (pydantic), serializes the entity key');
p('(protobuf), murmur-hashes the feature names, sends one HMGET on redis-py\'s asyncio client, decodes');
p('every value from a protobuf `ValueProto`, and a thread of the pool turns the response protobuf into');
p(`the dict FastAPI encodes: Redis's own time was ${share(redisWork(kr)?.usec, kr?.p50_us)} of the read's p50 here. A push builds a pandas DataFrame from`);
p('the JSON columns, then a pyarrow Table, converts every cell to a `ValueProto`, reads each entity\'s stored');
p('event time (a pipelined HMGET: rows older than what is stored are dropped) and writes the newer rows');
p(`with HSET in a second round trip. Much of a push is fixed Python work: here pushes of ${sizes.join(', ')} rows`);
p(`took ${kp.map((r) => lat(r?.p50_us)).join(', ')} at p50. Feast computes nothing: the counts`);
p('and last values must come from a stream processor in front of it, which these figures leave out.');
p();
p('Freshet: each request is Rust compiled to wasm, run by workerd. It opens a new TCP socket to Redis');
p('for every request (a workerd socket cannot outlive its request; the "new connections" column),');
p('so the store wait holds a connect as well as the round trip. A read sends one pipelined HGETALL of');
p('the user\'s hash plus a ZRANGE per set-valued feature of the entity, whatever names were asked, and');
p('decodes, applies windows and staleness, and filters in wasm. An ingest validates the raw batch,');
p('aggregates it into one delta per entity (the users, and the products clicked) and applies each delta');
p('with one EVALSHA of the apply script (Lua: atomic, with the batch marker that makes a retry a no-op),');
p(`all in one pipelined round trip. Ingests of ${sizes.join(', ')} events took ${fp.map((r) => lat(r?.p50_us)).join(', ')} at p50, of which`);
p(`Redis ran scripts for ${fp.map((r) => lat(redisWork(r)?.usec)).join(', ')}: the scripts are the part that grows with the batch`);
p(`(${share(redisWork(fp.at(-1))?.usec, fp.at(-1)?.p50_us)} of the p50 at ${bigN} events). For a read, Redis's own time was ${share(redisWork(fr)?.usec, fr?.p50_us)} of the p50.`);
const reopened = runs.filter((r) => r.sockets > r.connections);
if (reopened.length) {
  p();
  p(`Keep-alive did not hold in: ${reopened.map((r) => `${r.label} at ${r.connections} connection(s), ${r.sockets} sockets`).join('; ')}.`);
}
const failed = runs.filter((r) => r.errors);
if (failed.length) {
  p();
  p(`Failed requests, left out of the figures above: ${failed.map((r) => `${r.label} at ${r.connections} connection(s): ${r.errors} (${r.firstError})`).join('; ')}.`);
}
process.stdout.write(out.join('\n') + '\n');
