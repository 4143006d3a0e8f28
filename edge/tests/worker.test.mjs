// The worker under `wrangler dev` (workerd), driven over HTTP with the
// Durable Object store and with a real redis-server: the seed's and the
// tracker's payloads, duplicates, every bad input, Redis going away and
// coming back, state surviving a restart. Run by scripts/test-edge.sh after
// the build; needs EDGE_DIR (edge/) with build/ and node_modules/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { FIND_MARKER, entityHash, featureTag, markerMember, markersKey } from './redis_layout.mjs';
import { resendTwoDaysLater } from './resend.mjs';
import { EDGE, TMP, freePort, fixture, fresh, sleep, spawnChild, startWorker, stopWorker, testConfig } from './wrangler.mjs';

const READ_TOKEN = 'rt-' + randomBytes(8).toString('hex');
const SECRET = 'id-' + randomBytes(8).toString('hex');

// ---- redis-server, persisted to an rdb so a stop and start keeps the data ----
function redisCli(port, ...args) {
  return execFileSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
}

async function startRedis(port, dir) {
  const child = spawnChild('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no', '--dir', dir, '--dbfilename', 'dump.rdb'], { stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
    try { if (redisCli(port, 'PING') === 'PONG') return child; } catch { /* not yet */ }
    await sleep(25);
  }
  throw new Error('redis-server did not start');
}

async function stopRedis(port, child) {
  redisCli(port, 'SHUTDOWN', 'SAVE');
  for (let i = 0; i < 200 && child.exitCode === null; i++) await sleep(25);
}

// ---- payloads ----
function token(user, expiry, secret = SECRET) {
  const sig = createHmac('sha256', secret).update(`${user}.${expiry}`).digest('base64url');
  return `${user}.${expiry}.${sig}`;
}

async function ingest(w, body, headers = {}) {
  const res = await fetch(`${w.base}/v1/ingest`, {
    method: 'POST',
    headers: Object.fromEntries(Object.entries({ 'content-type': 'application/json', 'x-freshet-key': 'dev', ...headers })
      .filter(([, v]) => v !== undefined)),
    body: typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not json */ }
  return { status: res.status, json, headers: res.headers, text };
}

async function features(w, entity, id, names) {
  const q = names ? `?names=${names}` : '';
  const res = await fetch(`${w.base}/v1/features/${entity}/${encodeURIComponent(id)}${q}`,
    { headers: { authorization: `Bearer ${READ_TOKEN}` } });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()).features;
}

const value = async (w, entity, id, name) => (await features(w, entity, id, name))[name].value;

function event(i, type, extra = {}) {
  return { id: `ev-${i}`, type, timestamp: new Date(Date.now() - 1000).toISOString(),
    clientId: 'cid-bad', payload: { productId: 'prod-bad' }, ...extra };
}

// ---- the cases, run once per store ----
async function exercise(w, store) {
  const health = await (await fetch(`${w.base}/health`)).json();
  assert.deepEqual(health, { status: 'ok', store, spec: health.spec, ingest: 'ok', log: 'r2', erasure: 'durable-object', pipeline: 'direct',
    secrets: { read: 1, admin: 0, identity: 1 } });
  assert.match(health.spec, /^[0-9a-f]{16}$/, 'the hash of the compiled-in features.toml');

  const seed = fresh(fixture('seed.json'));
  let r = await ingest(w, seed);
  assert.equal(r.status, 202, r.text);
  assert.deepEqual(r.json, { accepted: 3, rejected: [] });
  assert.equal(await value(w, 'user', 'cid-seed-1', 'pageviews'), 1);
  assert.equal(await value(w, 'user', 'cid-seed-1', 'clicks_product_card'), 1);
  assert.equal(await value(w, 'user', 'cid-seed-1', 'last_interacted_product'), 'prod-1');
  assert.deepEqual(await value(w, 'user', 'cid-seed-1', 'viewed_categories'), ['cameras']);
  assert.equal(await value(w, 'product', 'prod-1', 'popularity_7d'), 1);

  // The tracker's shape: ids, batchId, sentAt, the key in the body, text/plain like sendBeacon.
  const tracker = fresh(fixture('tracker.json'));
  r = await ingest(w, JSON.stringify(tracker), { 'content-type': 'text/plain;charset=UTF-8', 'x-freshet-key': undefined });
  assert.equal(r.status, 202, r.text);
  assert.equal(r.json.accepted, 4);
  const tracked = await features(w, 'user', 'cid-tracker-1');
  assert.equal(tracked.clicks_product_card.value, 2);
  assert.equal(tracked.searches.value, 1);
  assert.equal(tracked.last_interacted_product.value, 'prod-9');
  assert.equal(tracked.clicks_product_card.stale, false);

  // Duplicates change nothing.
  const before = JSON.stringify([await features(w, 'user', 'cid-seed-1'), await features(w, 'user', 'cid-tracker-1'),
    await features(w, 'product', 'prod-1')]);
  const redisBefore = store === 'redis' ? redisSnapshot() : null;
  for (const body of [seed, tracker]) {
    r = await ingest(w, body);
    assert.equal(r.status, 202, r.text);
  }
  const afterDup = JSON.stringify([await features(w, 'user', 'cid-seed-1'), await features(w, 'user', 'cid-tracker-1'),
    await features(w, 'product', 'prod-1')]);
  assert.equal(afterDup, before);
  if (redisBefore) assert.equal(redisSnapshot(), redisBefore);

  // Every bad input: its status, and the store untouched.
  const now = Math.floor(Date.now() / 1000);
  const bomb = zlib.gzipSync(Buffer.from(JSON.stringify({ events: [event(0, 'page_view', { payload: { pad: 'a'.repeat(600 * 1024) } })] })));
  const bigCompressed = Buffer.concat([Buffer.from([0x1f, 0x8b]), randomBytes(513 * 1024)]);
  const withIdentity = (t) => ({ batchId: 'b-ident', identity: t, events: [event(1, 'page_view', { userId: 'user-9' })] });
  const cases = [
    ['malformed json', fs.readFileSync(path.join(EDGE, 'tests', 'fixtures', 'malformed.json'), 'utf8'), {}, 400, 'malformed_json'],
    ['not json', fs.readFileSync(path.join(EDGE, 'tests', 'fixtures', 'not-json.txt'), 'utf8'), {}, 400, 'malformed_json'],
    ['too big compressed', bigCompressed, {}, 413, 'body_too_large'],
    ['gzip bomb', bomb, {}, 413, 'body_too_large'],
    ['too many events', { batchId: 'b-many', events: Array.from({ length: 501 }, (_, i) => event(i, 'page_view')) }, {}, 400, 'too_many_events'],
    ['unknown write key', { events: [event(2, 'page_view')] }, { 'x-freshet-key': 'nope' }, 401, 'unknown_write_key'],
    ['disallowed origin', { events: [event(3, 'page_view')] }, { 'x-freshet-key': 'site', origin: 'https://evil.example' }, 403, 'origin_not_allowed'],
    ['forged identity', withIdentity(token('user-9', now + 600, 'not-the-secret')), {}, 401, 'identity_bad_signature'],
    // Past the edge's five minutes of grace after expiry.
    ['expired identity', withIdentity(token('user-9', now - 301)), {}, 401, 'identity_expired'],
  ];
  const redisBad = store === 'redis' ? redisSnapshot() : null;
  for (const [name, body, headers, status, code] of cases) {
    r = await ingest(w, body, headers);
    assert.equal(r.status, status, `${name}: ${r.text}`);
    assert.equal(r.json?.error, code, `${name}: ${r.text}`);
    assert.equal(typeof r.json.message, 'string');
  }
  for (const [name, type, ts, reason] of [['bad type', 'Bad-Type', undefined, 'bad_type'],
    ['bad timestamp', 'page_view', 'yesterday', 'bad_timestamp']]) {
    r = await ingest(w, { batchId: `b-${reason}`, events: [event(9, type, ts ? { timestamp: ts } : {})] });
    assert.equal(r.status, 202, name);
    assert.deepEqual(r.json, { accepted: 0, rejected: [{ index: 0, reason }] }, name);
  }
  assert.equal(await value(w, 'user', 'cid-bad', 'pageviews'), 0);
  assert.equal(await value(w, 'user', 'user-9', 'pageviews'), 0);
  assert.equal(await value(w, 'product', 'prod-bad', 'popularity_7d'), 0);
  if (redisBad) assert.equal(redisSnapshot(), redisBad);

  // Serving needs the read token.
  for (const auth of [undefined, 'Bearer wrong', READ_TOKEN]) {
    const res = await fetch(`${w.base}/v1/features/user/cid-seed-1`, { headers: auth ? { authorization: auth } : {} });
    assert.equal(res.status, 401, String(auth));
    assert.equal((await res.json()).error, 'unauthorized');
  }

  // A valid identity keys features by the userId it vouches for.
  r = await ingest(w, { batchId: 'b-ident-ok', identity: token('user-7', now + 600),
    events: [event(10, 'page_view', { userId: 'user-7', clientId: 'cid-7' })] });
  assert.equal(r.status, 202, r.text);
  assert.equal(await value(w, 'user', 'user-7', 'pageviews'), 1);
  assert.equal(await value(w, 'user', 'cid-7', 'pageviews'), 0);

  // CORS: the preflight follows the write keys' origins.
  let res = await fetch(`${w.base}/v1/ingest`, { method: 'OPTIONS',
    headers: { origin: 'https://shop.example', 'access-control-request-method': 'POST' } });
  assert.equal(res.status, 204);
  assert.equal(res.headers.get('access-control-allow-origin'), 'https://shop.example');

  // A 405 names the methods of the route it was sent to.
  for (const [method, route, allow] of [['GET', '/v1/ingest', 'POST, OPTIONS'],
    ['DELETE', '/v1/features/user/cid-seed-1', 'GET'], ['GET', '/v1/features/batch', 'POST']]) {
    res = await fetch(`${w.base}${route}`, { method });
    assert.equal(res.status, 405, `${method} ${route}`);
    assert.equal(res.headers.get('allow'), allow, `${method} ${route}`);
  }

  // One user and many items in one read.
  res = await fetch(`${w.base}/v1/features/batch`, { method: 'POST',
    headers: { authorization: `Bearer ${READ_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ userId: 'cid-tracker-1', itemIds: ['prod-7', 'prod-9', 'prod-none'],
      userFeatures: ['clicks_product_card'], itemFeatures: ['popularity_7d'],
      pairFeatures: ['user_product_clicks'] }) });
  assert.equal(res.status, 200);
  const both = await res.json();
  assert.equal(both.user.features.clicks_product_card.value, 2);
  assert.deepEqual(both.items.map((i) => i.features.popularity_7d.value), [1, 1, 0]);
  // Each item's (user, item) pair, by its composite id, in the same read.
  assert.deepEqual(both.items.map((i) => [i.pair.id, i.pair.features.user_product_clicks.value]),
    [['cid-tracker-1|prod-7', 1], ['cid-tracker-1|prod-9', 1], ['cid-tracker-1|prod-none', 0]]);
}

let redisPort;
function redisSnapshot() {
  const keys = redisCli(redisPort, '--scan').split('\n').filter(Boolean).sort();
  return JSON.stringify(keys.map((k) => {
    const type = redisCli(redisPort, 'TYPE', k);
    if (type === 'hash') return [k, redisCli(redisPort, 'HGETALL', k).split('\n')];
    if (type === 'zset') return [k, redisCli(redisPort, 'ZRANGE', k, '0', '-1', 'WITHSCORES').split('\n')];
    return [k, type];
  }));
}

// No drift sampling: the Redis snapshots below compare every key, and a
// sampled read (1 % by default) writes a summary between two of them (it
// failed one run in `make test`). Drift has its own tests.
const baseVars = { FRESHET_WRITE_KEYS: 'dev=*,site=https://shop.example', FRESHET_READ_TOKEN: READ_TOKEN,
  FRESHET_IDENTITY_SECRET: SECRET, FRESHET_DRIFT_SAMPLE_RATE: '0' };

test('durable object store: every case, and the state survives a restart', async () => {
  const persist = path.join(TMP, 'state-do');
  let w = await startWorker({ ...baseVars, FRESHET_STORE: 'durable-object' }, { persist });
  await exercise(w, 'durable-object');
  const before = await features(w, 'user', 'cid-tracker-1');
  await stopWorker(w);
  w = await startWorker({ ...baseVars, FRESHET_STORE: 'durable-object' }, { persist });
  assert.deepEqual(await features(w, 'user', 'cid-tracker-1'), before);
  await stopWorker(w);
});

test('a visit\'s last beacon, resent on a return two days later, counts once: Durable Object and Redis', async () => {
  await resendTwoDaysLater({ ...baseVars, FRESHET_STORE: 'durable-object' },
    { persist: path.join(TMP, 'state-resend-do') }, READ_TOKEN);
  const port = await freePort();
  const dir = path.join(TMP, 'redis-resend');
  fs.mkdirSync(dir);
  const redis = await startRedis(port, dir);
  try {
    await resendTwoDaysLater({ ...baseVars, FRESHET_STORE: `redis://127.0.0.1:${port}` },
      { persist: path.join(TMP, 'state-resend-redis') }, READ_TOKEN);
  } finally {
    await stopRedis(port, redis);
  }
});

test('redis store: every case, the data in Redis, 503 while it is down, exact counts after', async () => {
  redisPort = await freePort();
  const dir = path.join(TMP, 'redis');
  fs.mkdirSync(dir);
  let redis = await startRedis(redisPort, dir);
  const w = await startWorker({ ...baseVars, FRESHET_STORE: `redis://127.0.0.1:${redisPort}`,
    FRESHET_STORE_TIMEOUT_MS: '1500' }, { persist: path.join(TMP, 'state-redis') });
  await exercise(w, 'redis');
  // The layout of docs/ARCHITECTURE.md#redis, written by the script.
  assert.equal(redisCli(redisPort, 'HGET', entityHash('user', 'cid-seed-1'), featureTag('pageviews@1')), '1');
  assert.equal(redisCli(redisPort, 'HGET', entityHash('user', 'cid-tracker-1'), featureTag('clicks_product_card@1')), '2');
  // The applied-batch markers: the first 8 bytes of each batch id's SHA-256,
  // in the group of the day the batch was received, the key expiring ten
  // days after that day began.
  const marker = markerMember(fixture('tracker.json').batchId);
  const day = Number(redisCli(redisPort, 'EVAL', FIND_MARKER, '1', markersKey('user', 'cid-tracker-1'), marker));
  assert.equal(day, Math.floor(Date.now() / 86400000));
  assert.ok(Number(redisCli(redisPort, 'TTL', markersKey('user', 'cid-tracker-1'))) > 9 * 86400);
  // Layout 1's keys are not written.
  assert.equal(redisCli(redisPort, 'EXISTS', 'fs:{user:cid-tracker-1}', 'fs:{user:cid-tracker-1}:b'), '0');

  // Redis goes away: 503, nothing claimed.
  await stopRedis(redisPort, redis);
  const down = fresh({ batchId: 'b-while-down', events: [
    { id: 'd1', type: 'product_click', timestamp: '', clientId: 'cid-down', payload: { productId: 'prod-down' } },
    { id: 'd2', type: 'product_click', timestamp: '', clientId: 'cid-down', payload: { productId: 'prod-down' } }] });
  const tracker = fresh(fixture('tracker.json'));
  for (const body of [down, tracker]) {
    const r = await ingest(w, body);
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json.error, 'store_unavailable');
    assert.ok(r.headers.get('retry-after'));
    assert.ok(!r.text.includes('127.0.0.1'), r.text);
  }
  let res = await fetch(`${w.base}/v1/features/user/cid-down`, { headers: { authorization: `Bearer ${READ_TOKEN}` } });
  assert.equal(res.status, 503);

  // Back up: the same batches retried, twice, count exactly once.
  redis = await startRedis(redisPort, dir);
  for (let i = 0; i < 2; i++) {
    for (const body of [down, tracker]) {
      const r = await ingest(w, body);
      assert.equal(r.status, 202, r.text);
    }
  }
  assert.equal(await value(w, 'user', 'cid-down', 'clicks_product_card'), 2);
  assert.equal(await value(w, 'product', 'prod-down', 'popularity_7d'), 2);
  assert.equal(await value(w, 'user', 'cid-tracker-1', 'clicks_product_card'), 2);
  await stopWorker(w);
  await stopRedis(redisPort, redis);
});

test('rate limits: 429 with Retry-After per client and per site, then the retried batches count once', async () => {
  const w = await startWorker({ ...baseVars, FRESHET_STORE: 'durable-object' }, {
    persist: path.join(TMP, 'state-rl'), limits: { FRESHET_CLIENT_RATE_LIMIT: 3, FRESHET_SITE_RATE_LIMIT: 6 } });
  const click = (client, n) => fresh({ batchId: `b-rl-${client}-${n}`, events: [
    { id: `rl-${client}-${n}`, type: 'product_click', timestamp: '', clientId: client,
      payload: { productId: 'prod-rl', component: 'ProductCard' } }] });
  // The limiter's windows are aligned to the clock: start early in one.
  if (Date.now() % 10_000 > 4_000) await sleep(10_000 - (Date.now() % 10_000) + 50);
  for (let n = 0; n < 3; n++) assert.equal((await ingest(w, click('cid-rl-a', n))).status, 202);
  const refused = click('cid-rl-a', 3);
  let r = await ingest(w, refused, { origin: 'https://shop.example' });
  assert.equal(r.status, 429, r.text);
  assert.equal(r.json.error, 'rate_limited');
  assert.equal(r.headers.get('retry-after'), '10');
  // A cross-origin tracker can read the answer and its Retry-After.
  assert.equal(r.headers.get('access-control-allow-origin'), 'https://shop.example');
  assert.match(r.headers.get('access-control-expose-headers') ?? '', /retry-after/i);
  // Other clients of the site go on until the site's limit (6) is reached.
  for (const c of ['cid-rl-b', 'cid-rl-c', 'cid-rl-d']) assert.equal((await ingest(w, click(c, 0))).status, 202);
  const overSite = click('cid-rl-e', 0);
  r = await ingest(w, overSite);
  assert.equal(r.status, 429, r.text);
  assert.match(r.json.message, /site/);
  // Refused batches stored nothing.
  assert.equal(await value(w, 'user', 'cid-rl-a', 'clicks_product_card'), 3);
  assert.equal(await value(w, 'user', 'cid-rl-e', 'clicks_product_card'), 0);
  // After Retry-After the same batches, sent twice, count exactly once.
  await sleep(Number(r.headers.get('retry-after')) * 1000);
  for (const body of [refused, refused, overSite, overSite]) {
    r = await ingest(w, body);
    assert.equal(r.status, 202, r.text);
  }
  assert.equal(await value(w, 'user', 'cid-rl-a', 'clicks_product_card'), 4);
  assert.equal(await value(w, 'user', 'cid-rl-e', 'clicks_product_card'), 1);
  assert.equal(await value(w, 'product', 'prod-rl', 'popularity_7d'), 8);
  await stopWorker(w);
});

/** Client connections Redis has open, not counting the redis-cli asking. */
const redisClients = (port) => redisCli(port, 'CLIENT', 'LIST').split('\n').filter((l) => !l.includes('cmd=client')).length;

test('redis through the store gateways: connections are pooled, and a restart is survived', async () => {
  const port = await freePort();
  const dir = path.join(TMP, 'redis-pool');
  fs.mkdirSync(dir);
  let redis = await startRedis(port, dir);
  const w = await startWorker({ ...baseVars, FRESHET_STORE: `redis://127.0.0.1:${port}`,
    FRESHET_STORE_TIMEOUT_MS: '1500', FRESHET_STORE_GATEWAYS: '2' }, { persist: path.join(TMP, 'state-redis-pool') });
  const click = (batch, user) => fresh({ batchId: batch, events: [
    { id: `${batch}-1`, type: 'product_click', timestamp: '', clientId: user, payload: { productId: 'prod-pool' } }] });

  // Twenty batches one after another: two gateways, one connection each, kept.
  for (let i = 0; i < 20; i++) assert.equal((await ingest(w, click(`b-warm-${i}`, 'cid-pool'))).status, 202);
  assert.equal(redisClients(port), 2);
  assert.equal(await value(w, 'user', 'cid-pool', 'clicks_product_card'), 20);
  assert.equal(redisClients(port), 2);

  // Restarted between two requests: the dead pooled connections are
  // replaced at once, no request fails, nothing counts twice.
  await stopRedis(port, redis);
  redis = await startRedis(port, dir);
  for (let i = 0; i < 4; i++) {
    const r = await ingest(w, click(`b-after-restart-${i}`, 'cid-pool'));
    assert.equal(r.status, 202, r.text);
  }
  assert.equal(await value(w, 'user', 'cid-pool', 'clicks_product_card'), 24);

  // Down while connections are pooled: 503 from every gateway, then the
  // same batches retried once it is back count exactly once.
  await stopRedis(port, redis);
  const retried = [0, 1, 2, 3].map((i) => click(`b-down-${i}`, 'cid-pool-down'));
  for (const body of retried) {
    const r = await ingest(w, body);
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json.error, 'store_unavailable');
  }
  redis = await startRedis(port, dir);
  for (let round = 0; round < 2; round++) {
    for (const body of retried) {
      const r = await ingest(w, body);
      assert.equal(r.status, 202, r.text);
    }
  }
  assert.equal(await value(w, 'user', 'cid-pool-down', 'clicks_product_card'), 4);
  assert.equal(await value(w, 'user', 'cid-pool', 'clicks_product_card'), 24);
  assert.ok(redisClients(port) <= 2, redisCli(port, 'CLIENT', 'LIST'));
  await stopWorker(w);
  await stopRedis(port, redis);
});

test('redis without gateways: a connection per request still works', async () => {
  const port = await freePort();
  const dir = path.join(TMP, 'redis-direct');
  fs.mkdirSync(dir);
  const redis = await startRedis(port, dir);
  const w = await startWorker({ ...baseVars, FRESHET_STORE: `redis://127.0.0.1:${port}`,
    FRESHET_STORE_GATEWAYS: '0' }, { persist: path.join(TMP, 'state-redis-direct') });
  const health = await (await fetch(`${w.base}/health`)).json();
  assert.deepEqual(health, { status: 'ok', store: 'redis', spec: health.spec, ingest: 'ok', log: 'r2', erasure: 'durable-object', pipeline: 'direct',
    secrets: { read: 1, admin: 0, identity: 1 } });
  const seed = fresh(fixture('seed.json'));
  for (let i = 0; i < 2; i++) assert.equal((await ingest(w, seed)).status, 202);
  assert.equal(await value(w, 'user', 'cid-seed-1', 'pageviews'), 1);
  assert.equal(redisClients(port), 0);
  await stopWorker(w);
  await stopRedis(port, redis);
});

test('no write keys: ingest is a 500 misconfigured that names the variable, and deploy ships none', async () => {
  const { FRESHET_WRITE_KEYS: _, ...vars } = baseVars;
  const w = await startWorker({ ...vars, FRESHET_STORE: 'durable-object' }, { persist: path.join(TMP, 'state-no-keys') });
  const health = await (await fetch(`${w.base}/health`)).json();
  assert.equal(health.ingest, 'misconfigured');
  for (const key of ['dev', 'anything']) {
    const r = await ingest(w, fresh(fixture('seed.json')), { 'x-freshet-key': key });
    assert.equal(r.status, 500, r.text);
    assert.equal(r.json.error, 'misconfigured');
    assert.match(r.json.message, /^FRESHET_WRITE_KEYS: no write key is configured/);
  }
  // Nothing of the refused batches was stored.
  assert.equal((await features(w, 'user', 'cid-seed-1', 'pageviews')).pageviews.updatedAt, null);
  await stopWorker(w);

  // What `wrangler deploy` would publish: the real config's bindings.
  const out = execFileSync(path.join(EDGE, 'node_modules', '.bin', 'wrangler'),
    ['deploy', '--dry-run', '--config', testConfig(), '--outdir', path.join(TMP, 'dry-run')],
    { cwd: TMP, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  assert.match(out, /FRESHET_STORE/, out);
  assert.doesNotMatch(out, /FRESHET_WRITE_KEYS|dev=\*/, out);
});

test('rotating a secret as the README says: clients that switch in between never fail, a removed value is refused, bad lists fail at start', async () => {
  const secretOf = (label) => `${label}-${randomBytes(8).toString('hex')}`;
  const old = { read: secretOf('rt-old'), admin: secretOf('admin-old'), identity: secretOf('id-old') };
  const next = { read: secretOf('rt-new'), admin: secretOf('admin-new'), identity: secretOf('id-new') };
  const vars = (values) => ({ FRESHET_WRITE_KEYS: 'dev=*', FRESHET_DRIFT_SAMPLE_RATE: '0',
    FRESHET_READ_TOKEN: values('read'), FRESHET_ADMIN_TOKEN: values('admin'), FRESHET_IDENTITY_SECRET: values('identity') });
  const phases = [
    ['before', vars((k) => old[k])],
    ['during', vars((k) => `new:${next[k]},old:${old[k]}`)],
    ['after', vars((k) => `new:${next[k]}`)],
  ];
  const read = (w, token, id = 'cid-rot') => fetch(`${w.base}/v1/features/user/${id}?names=pageviews`,
    { headers: { authorization: `Bearer ${token}` } });
  // Past the admin check, an unknown feature is a 400; refused, a 401.
  const backfill = (w, token) => fetch(`${w.base}/v1/backfill?feature=nope@1`,
    { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: '' });
  let n = 0;
  const signedIn = (w, secret) => ingest(w, { batchId: `b-rot-${++n}`, identity: token('user-rot', Math.floor(Date.now() / 1000) + 600, secret),
    events: [event(100 + n, 'page_view', { userId: 'user-rot', clientId: 'cid-rot' })] });
  const logs = [];
  for (const [phase, v] of phases) {
    const w = await startWorker(v, { persist: path.join(TMP, 'state-rotation') });
    const health = await (await fetch(`${w.base}/health`)).json();
    const count = phase === 'during' ? 2 : 1;
    assert.deepEqual(health.secrets, { read: count, admin: count, identity: count }, phase);
    // A client still on the old value until the new one is deployed beside
    // it, and one moved to the new value once it was: no request fails.
    const clients = phase === 'before' ? [old] : phase === 'during' ? [old, next] : [next];
    for (const c of clients) {
      assert.equal((await read(w, c.read)).status, 200, `${phase}: read`);
      assert.equal((await backfill(w, c.admin)).status, 400, `${phase}: admin`);
      const r = await signedIn(w, c.identity);
      assert.equal(r.status, 202, `${phase}: identity ${r.text}`);
    }
    if (phase === 'after') {
      // The old values, removed, are refused.
      const res = await read(w, old.read);
      assert.equal(res.status, 401);
      const text = await res.text();
      assert.equal((await backfill(w, old.admin)).status, 401);
      const r = await signedIn(w, old.identity);
      assert.equal(r.status, 401, r.text);
      assert.equal(r.json.error, 'identity_bad_signature');
      for (const body of [text, r.text]) assert.ok(!body.includes(old.read) && !body.includes(old.identity), body);
    }
    if (phase === 'during') assert.match(w.log(), /FRESHET_READ_TOKEN: 2 value\(s\): new, old/);
    // Every signed-in batch keyed by the user: none fell back to the clientId.
    const res = await read(w, clients.at(-1).read, 'user-rot');
    assert.equal((await res.json()).features.pageviews.value, n - (phase === 'after' ? 1 : 0), phase);
    await stopWorker(w);
    logs.push(w.log());
  }

  // Bad lists: the edge starts, refuses every request with the variable named and no value shown.
  const short = secretOf('x').slice(0, 11);
  for (const [bad, message] of [[`a:${old.read},`, /^FRESHET_READ_TOKEN: entry 2 is empty/],
    [`a:${old.read},b:${old.read}`, /^FRESHET_READ_TOKEN: entry 2 \(b\) repeats a value/],
    [`a:${short}`, /^FRESHET_READ_TOKEN: entry 1 \(a\) is shorter than 12 characters/]]) {
    const w = await startWorker({ ...vars((k) => old[k]), FRESHET_READ_TOKEN: bad },
      { persist: path.join(TMP, 'state-rotation-bad'), ready: (res) => res.status === 500 });
    const res = await fetch(`${w.base}/health`);
    const body = await res.json();
    assert.equal(body.error, 'misconfigured');
    assert.match(body.message, message);
    assert.ok(!JSON.stringify(body).includes(old.read) && !JSON.stringify(body).includes(short), body.message);
    await stopWorker(w);
    logs.push(w.log());
  }
  // No value reaches a log line; the names do.
  const all = logs.join('\n');
  for (const v of [...Object.values(old), ...Object.values(next)]) assert.ok(!all.includes(v), 'a secret in the log');
  assert.match(all, /FRESHET_IDENTITY_SECRET: 1 value\(s\): new/);
});

test('event log in R2: each accepted batch once, the store down and back loses none, export in receive order', async () => {
  const port = await freePort();
  const dir = path.join(TMP, 'redis-log');
  fs.mkdirSync(dir);
  let redis = await startRedis(port, dir);
  const persist = path.join(TMP, 'state-log');
  let w = await startWorker({ ...baseVars, FRESHET_STORE: `redis://127.0.0.1:${port}`, FRESHET_STORE_TIMEOUT_MS: '1500' },
    { persist });
  assert.equal((await (await fetch(`${w.base}/health`)).json()).log, 'r2');
  const from = new Date(Date.now() - 60_000).toISOString();
  const seed = fresh(fixture('seed.json'));
  const tracker = fresh(fixture('tracker.json'));
  for (const body of [seed, tracker, seed, tracker]) assert.equal((await ingest(w, body)).status, 202);

  // The store goes away: 503, and the retry after it is back is logged once.
  await stopRedis(port, redis);
  const down = fresh({ batchId: 'b-log-down', events: [
    { id: 'ld1', type: 'product_click', timestamp: '', clientId: 'cid-log', payload: { productId: 'prod-log' } }] });
  assert.equal((await ingest(w, down)).status, 503);
  redis = await startRedis(port, dir);
  for (let i = 0; i < 2; i++) assert.equal((await ingest(w, down)).status, 202);

  const exportAll = async (base) => {
    const res = await fetch(`${base}/v1/events?from=${encodeURIComponent(from)}`,
      { headers: { authorization: `Bearer ${READ_TOKEN}` } });
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(res.headers.get('content-type'), 'application/x-ndjson');
    return (await res.text()).trim().split('\n').map((l) => JSON.parse(l));
  };
  const lines = await exportAll(w.base);
  const perBatch = {};
  for (const l of lines) perBatch[l.batchId] = (perBatch[l.batchId] ?? 0) + 1;
  assert.deepEqual(Object.values(perBatch), [3, tracker.events.length, 1], JSON.stringify(perBatch));
  assert.deepEqual(Object.keys(perBatch).slice(2), ['b-log-down']);
  const received = lines.map((l) => Date.parse(l.receivedAt));
  assert.deepEqual(received, [...received].sort((a, b) => a - b), 'receive order');
  assert.equal(lines[0].writeKey, 'dev');
  assert.match(lines[0].timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(await value(w, 'user', 'cid-log', 'clicks_product_card'), 1);

  // The log is kept across a restart (--persist-to), as the store is.
  await stopWorker(w);
  w = await startWorker({ ...baseVars, FRESHET_STORE: `redis://127.0.0.1:${port}` }, { persist });
  assert.equal((await exportAll(w.base)).length, lines.length);
  const bad = await fetch(`${w.base}/v1/events?from=soon`, { headers: { authorization: `Bearer ${READ_TOKEN}` } });
  assert.equal(bad.status, 400);
  assert.equal((await fetch(`${w.base}/v1/events?from=${encodeURIComponent(from)}`)).status, 401);
  await stopWorker(w);
  await stopRedis(port, redis);
});
