// One closed-loop load run for scripts/bench-feast.sh, the same client for
// every side: N keep-alive connections (node:http's Agent, or a raw RESP
// socket for the Redis floor), each sending its next request when the last
// answer is read, for a fixed time after a warm-up. Latency is timed per
// request with hrtime and kept whole, so p50/p99 are exact and in µs
// (autocannon's histogram rounds to whole milliseconds, too coarse for a
// sub-millisecond floor). No dependencies beyond Node.
//
// Prints one JSON line: {label, mode, connections, seconds, warmup, requests,
// rps, p50_us, p99_us, store_mean_us, errors, firstError, sockets, load1,
// redis}. store_mean_us is the mean store time the Freshet worker reports in
// its Server-Timing header; sockets, how many the HTTP client opened (keep-
// alive holds while it equals connections). With REDIS_PORT set, `redis` is
// what the server itself counted during the timed part (CONFIG RESETSTAT after
// the warm-up, then INFO): per command its calls and µs, and the connections
// it accepted, so each side's Redis work per request is measured, not guessed.
//
// Usage: node load.mjs <label> <connections> <seconds> <warmup seconds> <mode> <args...>
//   freshet-ingest <base url> <events per request>   POST /v1/ingest, raw events
//   feast-push <base url> <rows per request>         POST /push, the rows those events make
//   freshet-read <base url> <user> <token>           GET /v1/features/user/<user>?names=...
//   feast-read <base url> <user>                     POST /get-online-features
//   hmget <redis port> <key> <field...>              HMGET over RESP
//   get <url>                                        GET, e.g. a server's /health
//   check <freshet url> <feast url> <redis port> <token> <user>   seeds one user on both sides, compares
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';

export const FEATURES = ['pageviews', 'clicks_product_card', 'searches', 'last_interacted_product', 'last_event_at'];

// The event stream both write paths carry. Event j belongs to user j mod
// USERS, so the events of one request belong to different users (as in a
// collector's batch) and each Feast row stands for exactly one event.
const USERS = 1000;
const TYPES = ['page_view', 'product_click', 'search', 'product_click', 'viewed_category'];
const RUN = `${process.pid}-${Date.now().toString(36)}`;

function event(j, now, user = `cid-feast-${j % USERS}`) {
  return {
    id: `e-${RUN}-${j}`, type: TYPES[j % TYPES.length], timestamp: new Date(now).toISOString(),
    clientId: user, sessionId: `s-${user}`,
    payload: { productId: `prod-${j % 50}`, component: 'ProductCard', category: `cat-${j % 7}` },
  };
}

// What a stream processor in front of Feast would compute from the same
// events: per user, the running counts and last values of features.toml.
const state = new Map();
function fold(e) {
  const s = state.get(e.clientId) ?? { pageviews: 0, clicks_product_card: 0, searches: 0, last_interacted_product: '', last_event_at: 0 };
  if (e.type === 'page_view') s.pageviews += 1;
  if (e.type === 'product_click') { s.clicks_product_card += 1; s.last_interacted_product = e.payload.productId; }
  if (e.type === 'search') s.searches += 1;
  s.last_event_at = Math.max(s.last_event_at, Date.parse(e.timestamp));
  state.set(e.clientId, s);
  return s;
}

function feastRows(events) {
  const df = { user_id: [], event_timestamp: [] };
  for (const f of FEATURES) df[f] = [];
  for (const e of events) {
    const s = fold(e);
    df.user_id.push(e.clientId);
    for (const f of FEATURES) df[f].push(s[f]);
    df.event_timestamp.push(e.timestamp);
  }
  return JSON.stringify({ push_source_name: 'user_push', to: 'online', df });
}

let next = 0;
function takeEvents(n) {
  const now = Date.now();
  return Array.from({ length: n }, () => event(next++, now));
}
const ingestBody = (events) => JSON.stringify({ batchId: `b-${RUN}-${next}`, sentAt: new Date().toISOString(), events });

// --- clients -----------------------------------------------------------------

let storeMs = []; // Server-Timing store;dur of each answer that has one
// Sockets the HTTP client opened: as many as connections while keep-alive holds.
const seen = new WeakSet();
let socketsOpened = 0;

function httpClient(base, connections) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const url = new URL(base);
  return (method, path, headers, body) => new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, method, path, agent, headers: body === undefined ? headers : { ...headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        // Freshet's worker says how long it waited on its store.
        const timing = /store;dur=([\d.]+)/.exec(res.headers['server-timing'] ?? '');
        if (timing) storeMs.push(Number(timing[1]));
        if (res.statusCode >= 200 && res.statusCode < 300) resolve(text);
        else reject(new Error(`${method} ${path}: ${res.statusCode} ${text.slice(0, 300)}`));
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.on('socket', (sock) => { if (!seen.has(sock)) { seen.add(sock); socketsOpened += 1; } });
    req.end(body);
  });
}

// A RESP client that knows just enough to find where one reply ends.
function respEnd(buf, at) {
  if (at >= buf.length) return -1;
  const line = buf.indexOf('\r\n', at);
  if (line < 0) return -1;
  const kind = String.fromCharCode(buf[at]);
  const n = Number(buf.toString('latin1', at + 1, line));
  if (kind === '$') return n < 0 ? line + 2 : (line + 2 + n + 2 <= buf.length ? line + 2 + n + 2 : -1);
  if (kind === '*') {
    let pos = line + 2;
    for (let i = 0; i < n; i++) { pos = respEnd(buf, pos); if (pos < 0) return -1; }
    return pos;
  }
  return line + 2; // + - :
}
async function redisConnection(port) {
  const sock = net.connect({ host: '127.0.0.1', port, noDelay: true });
  await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
  let buf = Buffer.alloc(0);
  let waiting = null;
  sock.on('data', (d) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    const end = respEnd(buf, 0);
    if (end >= 0 && waiting) { const reply = buf.subarray(0, end); buf = buf.subarray(end); const w = waiting; waiting = null; w(reply); }
  });
  return {
    send: (cmd) => new Promise((resolve) => { waiting = resolve; sock.write(cmd); }),
    close: () => sock.destroy(),
  };
}
const resp = (args) => Buffer.from(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);

// --- the loop ----------------------------------------------------------------

async function loop(connections, seconds, makeOne) {
  const workers = await Promise.all(Array.from({ length: connections }, () => makeOne()));
  const lat = [];
  let errors = 0;
  let firstError = null;
  storeMs = [];
  const end = performance.now() + seconds * 1000;
  await Promise.all(workers.map(async (one) => {
    while (performance.now() < end) {
      const t = process.hrtime.bigint();
      try {
        await one();
        lat.push(Number(process.hrtime.bigint() - t) / 1000);
      } catch (e) {
        errors += 1;
        firstError ??= e.message;
      }
    }
  }));
  lat.sort((a, b) => a - b);
  const q = (p) => (lat.length ? Math.round(lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] * 10) / 10 : null);
  // The worker's clock moves in whole milliseconds: a mean says more than a median.
  const store_mean_us = storeMs.length ? Math.round((storeMs.reduce((a, b) => a + b, 0) / storeMs.length) * 1000) : undefined;
  return { requests: lat.length, rps: Math.round(lat.length / seconds), p50_us: q(0.5), p99_us: q(0.99), store_mean_us, errors, firstError, sockets: socketsOpened };
}

function maker(mode, args, connections) {
  switch (mode) {
    case 'freshet-ingest': {
      const [base, n] = args; const call = httpClient(base, connections);
      const headers = { 'content-type': 'application/json', 'x-freshet-key': 'dev' };
      return async () => () => call('POST', '/v1/ingest', headers, ingestBody(takeEvents(Number(n))));
    }
    case 'feast-push': {
      const [base, n] = args; const call = httpClient(base, connections);
      const headers = { 'content-type': 'application/json' };
      return async () => () => call('POST', '/push', headers, feastRows(takeEvents(Number(n))));
    }
    case 'freshet-read': {
      const [base, user, token] = args; const call = httpClient(base, connections);
      const path = `/v1/features/user/${encodeURIComponent(user)}?names=${FEATURES.join(',')}`;
      const headers = { authorization: `Bearer ${token}` };
      return async () => () => call('GET', path, headers);
    }
    case 'feast-read': {
      const [base, user] = args; const call = httpClient(base, connections);
      const body = JSON.stringify({ features: FEATURES.map((f) => `user_features:${f}`), entities: { user_id: [user] } });
      const headers = { 'content-type': 'application/json' };
      return async () => () => call('POST', '/get-online-features', headers, body);
    }
    case 'get': {
      const [url] = args; const call = httpClient(url, connections); const path = new URL(url).pathname;
      return async () => () => call('GET', path, {});
    }
    case 'hmget': {
      const [port, key, ...fields] = args; const cmd = resp(['HMGET', key, ...fields]);
      return async () => {
        const c = await redisConnection(Number(port));
        return async () => { const r = await c.send(cmd); if (r[0] === 0x2d) throw new Error(r.toString()); };
      };
    }
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

// Seeds one user on both sides from the same 10 events (raw to Freshet, the
// folded row to Feast), reads the five features back from each and fails
// unless they agree: the figures compare equal work.
async function check(freshet, feast, redisPort, token, user) {
  const now = Date.now();
  const events = Array.from({ length: 10 }, (_, i) => event(i, now - (10 - i) * 1000, user));
  const f = httpClient(freshet, 1); const p = httpClient(feast, 1);
  await f('POST', '/v1/ingest', { 'content-type': 'application/json', 'x-freshet-key': 'dev' },
    JSON.stringify({ batchId: `b-${RUN}-check`, sentAt: new Date(now).toISOString(), events }));
  const last = events.map(fold).at(-1);
  await p('POST', '/push', { 'content-type': 'application/json' }, JSON.stringify({
    push_source_name: 'user_push', to: 'online',
    df: { user_id: [user], ...Object.fromEntries(FEATURES.map((k) => [k, [last[k]]])), event_timestamp: [events.at(-1).timestamp] },
  }));
  const fr = JSON.parse(await f('GET', `/v1/features/user/${user}?names=${FEATURES.join(',')}`, { authorization: `Bearer ${token}` }));
  const pr = JSON.parse(await p('POST', '/get-online-features', { 'content-type': 'application/json' },
    JSON.stringify({ features: FEATURES.map((k) => `user_features:${k}`), entities: { user_id: [user] } })));
  const names = pr.metadata.feature_names;
  const fromFeast = Object.fromEntries(FEATURES.map((k) => [k, pr.results[names.indexOf(k)].values[0]]));
  const fromFreshet = Object.fromEntries(FEATURES.map((k) => [k, fr.features[k]?.value]));
  const c = await redisConnection(Number(redisPort));
  const fields = (await c.send(resp(['HKEYS', `fs:{user:${user}}`]))).toString().split('\r\n').filter((l) => l && !/^[*$]/.test(l));
  c.close();
  const line = { expected: last, freshet: fromFreshet, feast: fromFeast, freshetHashFields: fields };
  // Freshet moves event times by receivedAt - sentAt (client clock skew), so
  // its last_event_at is later by the request's transit time.
  const agree = (k, v) => (k === 'last_event_at' ? Math.abs(Number(v) - last[k]) < 5000 : String(v) === String(last[k]));
  const same = FEATURES.every((k) => agree(k, fromFeast[k]) && agree(k, fromFreshet[k]));
  console.log(JSON.stringify({ check: same ? 'same' : 'different', ...line }));
  if (!same) process.exit(1);
}

async function redisStats(port) {
  const c = await redisConnection(port);
  const text = (await c.send(resp(['INFO', 'all']))).toString();
  c.close();
  const commands = {};
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) commands[m[1]] = { calls: Number(m[2]), usec: Number(m[3]) };
  const connections = Number(/^total_connections_received:(\d+)/m.exec(text)[1]) - 1; // less our own
  return { commands, connections };
}
async function resetStats(port) {
  const c = await redisConnection(port);
  await c.send(resp(['CONFIG', 'RESETSTAT']));
  c.close();
}

const [label, connections, seconds, warmup, mode, ...args] = process.argv.slice(2);
if (label === 'check') {
  await check(...process.argv.slice(3));
  process.exit(0);
}
const conns = Number(connections);
const make = maker(mode, args, conns);
const statsPort = Number(process.env.REDIS_PORT) || 0;
if (Number(warmup) > 0) await loop(conns, Number(warmup), make);
if (statsPort) await resetStats(statsPort);
const r = await loop(conns, Number(seconds), make);
const redis = statsPort ? await redisStats(statsPort) : undefined;
console.log(JSON.stringify({ label, mode, connections: conns, seconds: Number(seconds), warmup: Number(warmup), ...r, load1: Math.round(os.loadavg()[0] * 100) / 100, redis }));
if (r.firstError) console.error(`${label}: ${r.errors} errors, first: ${r.firstError}`);
process.exit(0);
