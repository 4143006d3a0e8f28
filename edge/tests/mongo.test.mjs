// The worker under `wrangler dev` (workerd) with the MongoDB store, against
// SecantusDB (a MongoDB wire-protocol server) started here on a free port
// with authentication on and a user created first. The documents are read
// back with pymongo's plain find_one, as a model server would. Then TLS,
// with a certificate from a CA the test makes (openssl). Run by
// scripts/test-mongo.sh after the build; needs EDGE_DIR (edge/) with build/
// and node_modules/, and PYTHON (a python with pymongo) and SECANTUSD.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { resendTwoDaysLater } from './resend.mjs';
import { EDGE, TMP, freePort, fixture, fresh, sleep, spawnChild, startWorker, stop, stopWorker, waitExit } from './wrangler.mjs';

const ROOT = path.resolve(EDGE, '..');
const PYTHON = process.env.PYTHON ?? path.join(ROOT, '.tools', 'venv', 'bin', 'python');
const SECANTUSD = process.env.SECANTUSD ?? path.join(ROOT, '.tools', 'venv', 'bin', 'secantusd-py');
const READ_TOKEN = 'rt-' + randomBytes(8).toString('hex');
const PASSWORD = 'pw-' + randomBytes(8).toString('hex');
const DB = 'fs_' + randomBytes(4).toString('hex');

async function connectable(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

// ---- SecantusDB, persisted to a folder so a stop and start keeps the data ----
async function startMongo(port, dir, auth, extra = []) {
  const args = ['--host', '127.0.0.1', '--port', String(port), '--storage-path', dir, '--standalone',
    '--log-level', 'WARNING', ...extra];
  if (auth) args.push('--auth');
  const log = fs.openSync(path.join(TMP, `secantusd-${port}.log`), 'a');
  const child = spawnChild(SECANTUSD, args, { stdio: ['ignore', log, log] });
  for (let i = 0; i < 600; i++) {
    if (await connectable(port)) return child;
    if (child.exitCode !== null) break;
    await sleep(50);
  }
  throw new Error(`SecantusDB did not start:\n${fs.readFileSync(path.join(TMP, `secantusd-${port}.log`), 'utf8')}`);
}

async function stopMongo(child) {
  // SIGTERM: the server checkpoints its storage before it exits.
  stop(child);
  await waitExit(child);
}

/** Runs Python with pymongo: `db` is the test database, `admin` the admin one. */
function pymongo(port, code, { auth = true, tlsCA = null } = {}) {
  const script = `
import json, sys
from pymongo import MongoClient
from bson import json_util
kw = dict(username="freshet", password=${JSON.stringify(PASSWORD)}, authSource="admin") if ${auth ? 'True' : 'False'} else {}
if ${tlsCA ? 'True' : 'False'}: kw.update(tls=True, tlsCAFile=${JSON.stringify(tlsCA ?? '')})
client = MongoClient(host="localhost", port=${port}, directConnection=True, serverSelectionTimeoutMS=5000, **kw)
db = client[${JSON.stringify(DB)}]
admin = client["admin"]
def out(value):
    print(json_util.dumps(value, json_options=json_util.RELAXED_JSON_OPTIONS))
${code}
`;
  const text = execFileSync(PYTHON, ['-c', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return text.trim() ? JSON.parse(text) : null;
}

/** What a model server reads: a plain find_one by _id. */
const findOne = (port, coll, id) => pymongo(port, `out(db[${JSON.stringify(coll)}].find_one({"_id": ${JSON.stringify(id)}}))`);

/** Every document of the test database, with its batch markers, in order. */
const snapshot = (port) => JSON.stringify(pymongo(port,
  'out({c: list(db[c].find({}).sort("_id", 1)) for c in sorted(db.list_collection_names())})'));

/** The first log line matching `re`, waited for (the log is written as it goes). */
async function logLine(w, re) {
  for (let i = 0; i < 100; i++) {
    const line = w.log().split('\n').find((l) => re.test(l));
    if (line) return stripVTControlCharacters(line).trim();
    await sleep(50);
  }
  assert.fail(`no log line matches ${re}:\n${w.log()}`);
}

// ---- payloads ----
async function ingest(w, body, headers = {}) {
  const res = await fetch(`${w.base}/v1/ingest`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-freshet-key': 'dev', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not json */ }
  return { status: res.status, json, headers: res.headers, text };
}

async function features(w, entity, id) {
  const res = await fetch(`${w.base}/v1/features/${entity}/${encodeURIComponent(id)}`,
    { headers: { authorization: `Bearer ${READ_TOKEN}` } });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()).features;
}

const sum = (buckets) => Object.values(buckets ?? {}).reduce((a, b) => a + b, 0);

const vars = (password) => ({
  FRESHET_WRITE_KEYS: 'dev=*',
  FRESHET_READ_TOKEN: READ_TOKEN,
  FRESHET_STORE: `mongodb://freshet:${password}@127.0.0.1:${mongoPort}/${DB}?authSource=admin`,
  FRESHET_STORE_TIMEOUT_MS: '3000',
});

let mongoPort;

test('mongodb store: documents a model server reads, retries, a wrong password, the server going away', async (t) => {
  mongoPort = await freePort();
  const dir = path.join(TMP, 'mongo');
  fs.mkdirSync(dir);

  // A user first (the server has no localhost exception), then --auth.
  let mongo = await startMongo(mongoPort, dir, false);
  pymongo(mongoPort, `admin.command("createUser", "freshet", pwd=${JSON.stringify(PASSWORD)}, roles=[{"role": "readWrite", "db": ${JSON.stringify(DB)}}])`, { auth: false });
  await stopMongo(mongo);
  mongo = await startMongo(mongoPort, dir, true);

  const seed = fresh(fixture('seed.json'));
  const tracker = fresh(fixture('tracker.json'));

  // A wrong password: 503, a log line that says why, nothing written.
  let w = await startWorker(vars('not-the-password'));
  const health = await (await fetch(`${w.base}/health`)).json();
  assert.deepEqual(health, { status: 'ok', store: 'mongodb', spec: health.spec, ingest: 'ok', log: 'r2', erasure: 'durable-object', pipeline: 'direct',
    secrets: { read: 1, admin: 0, identity: 0 } });
  for (const body of [seed, tracker]) {
    const r = await ingest(w, body);
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json.error, 'store_unavailable');
    assert.ok(!r.text.includes('freshet'), r.text);
  }
  t.diagnostic(`logged: ${await logLine(w, /MongoDB authentication failed for user "freshet" \(authSource admin\)/)}`);
  assert.deepEqual(pymongo(mongoPort, 'out(db.list_collection_names())'), []);
  await stopWorker(w);

  // The right password: the same batches land, once.
  w = await startWorker(vars(PASSWORD));
  for (const body of [seed, tracker]) {
    const r = await ingest(w, body);
    assert.equal(r.status, 202, r.text);
  }
  const seedDoc = findOne(mongoPort, 'user_features', 'cid-seed-1');
  assert.equal(seedDoc['pageviews@1'], 1);
  assert.equal(seedDoc['clicks_product_card@1'], 1);
  assert.equal(sum(seedDoc['clicks_product_card_7d@1']), 1);
  assert.equal(seedDoc['last_interacted_product@1'].v, 'prod-1');
  assert.deepEqual(Object.keys(seedDoc['viewed_categories@1']), ['cameras']);
  assert.deepEqual(seedDoc['recent_products@1'].map((p) => p.v), ['prod-1']);
  assert.equal(seedDoc['last_event_at@1'], Date.parse(seed.events[2].timestamp));
  // One applied-batch marker, in the slot of its receive day (day % 11).
  const slot = String(Math.floor(Date.now() / 86400000) % 11);
  assert.deepEqual(Object.keys(seedDoc._b), [slot]);
  assert.equal(seedDoc._b[slot].length, 1);
  assert.equal(sum(findOne(mongoPort, 'product_features', 'prod-1')['popularity_7d@1']), 1);

  const trackerDoc = findOne(mongoPort, 'user_features', 'cid-tracker-1');
  assert.equal(trackerDoc['pageviews@1'], 1);
  assert.equal(trackerDoc['clicks_product_card@1'], 2);
  assert.equal(trackerDoc['searches@1'], 1);
  assert.equal(trackerDoc['last_interacted_product@1'].v, 'prod-9');
  assert.deepEqual(trackerDoc['recent_products@1'].map((p) => p.v), ['prod-9', 'prod-7']);
  // The marker is the first 16 hex digits of the batch id's SHA-256.
  const marker = createHash('sha256').update(tracker.batchId).digest('hex').slice(0, 16);
  assert.deepEqual(trackerDoc._b, { [slot]: [marker] });
  for (const p of ['prod-7', 'prod-9']) assert.equal(sum(findOne(mongoPort, 'product_features', p)['popularity_7d@1']), 1);

  // The serving API reads the same values.
  const served = await features(w, 'user', 'cid-tracker-1');
  assert.equal(served.pageviews.value, trackerDoc['pageviews@1']);
  assert.equal(served.clicks_product_card.value, trackerDoc['clicks_product_card@1']);
  assert.equal(served.clicks_product_card_7d.value, sum(trackerDoc['clicks_product_card_7d@1']));
  assert.equal(served.searches.value, trackerDoc['searches@1']);
  assert.equal(served.last_interacted_product.value, 'prod-9');
  assert.deepEqual(served.recent_products.value, ['prod-9', 'prod-7']);
  assert.equal(served.last_event_at.value, trackerDoc['last_event_at@1']);
  assert.equal(served.clicks_product_card.stale, false);
  assert.deepEqual((await features(w, 'user', 'cid-seed-1')).viewed_categories.value, ['cameras']);
  const res = await fetch(`${w.base}/v1/features/batch`, { method: 'POST',
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

  // Retries of the same batches change nothing, markers included.
  const before = snapshot(mongoPort);
  for (let i = 0; i < 2; i++) {
    for (const body of [seed, tracker]) {
      const r = await ingest(w, body);
      assert.equal(r.status, 202, r.text);
    }
  }
  assert.equal(snapshot(mongoPort), before);

  // The server goes away: 503, nothing claimed.
  await stopMongo(mongo);
  const down = fresh({ batchId: 'b-while-down', events: [
    { id: 'd1', type: 'product_click', timestamp: '', clientId: 'cid-down', payload: { productId: 'prod-down' } },
    { id: 'd2', type: 'product_click', timestamp: '', clientId: 'cid-down', payload: { productId: 'prod-down' } }] });
  for (const body of [down, tracker]) {
    const r = await ingest(w, body);
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json.error, 'store_unavailable');
    assert.ok(r.headers.get('retry-after'));
    assert.ok(!r.text.includes('127.0.0.1'), r.text);
  }
  const gone = await fetch(`${w.base}/v1/features/user/cid-down`, { headers: { authorization: `Bearer ${READ_TOKEN}` } });
  assert.equal(gone.status, 503);

  // Back up: the same batches retried, twice, count exactly once.
  mongo = await startMongo(mongoPort, dir, true);
  for (let i = 0; i < 2; i++) {
    for (const body of [down, tracker]) {
      const r = await ingest(w, body);
      assert.equal(r.status, 202, r.text);
    }
  }
  assert.equal(findOne(mongoPort, 'user_features', 'cid-down')['clicks_product_card@1'], 2);
  assert.equal(sum(findOne(mongoPort, 'product_features', 'prod-down')['popularity_7d@1']), 2);
  assert.equal(findOne(mongoPort, 'user_features', 'cid-tracker-1')['clicks_product_card@1'], 2);
  assert.equal((await features(w, 'user', 'cid-down')).clicks_product_card.value, 2);
  await stopWorker(w);

  // A visit's last beacon, resent on a return two days later, counts once.
  await resendTwoDaysLater(vars(PASSWORD), { persist: path.join(TMP, 'state-mongo-resend') }, READ_TOKEN);
  await stopMongo(mongo);
});

test('mongodb store over TLS: the certificate is verified, then documents land', async (t) => {
  // A CA and a server certificate for localhost, made here; workerd trusts
  // the CA through SSL_CERT_FILE (its TLS reads the file named there).
  const dir = path.join(TMP, 'tls');
  fs.mkdirSync(dir);
  const ssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2',
    '-subj', '/CN=freshet test CA', '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n'
    + 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n');
  ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'server.pem', '-days', '2', '-extfile', 'ext.cnf');
  const ca = path.join(dir, 'ca.pem');

  const port = await freePort();
  const mongo = await startMongo(port, ':memory:', false,
    ['--tls-cert-file', path.join(dir, 'server.pem'), '--tls-key-file', path.join(dir, 'server.key')]);
  const tlsVars = { FRESHET_WRITE_KEYS: 'dev=*', FRESHET_READ_TOKEN: READ_TOKEN,
    FRESHET_STORE: `mongodb://localhost:${port}/${DB}?tls=true`, FRESHET_STORE_TIMEOUT_MS: '3000' };
  const seed = fresh(fixture('seed.json'));

  // A certificate from an unknown CA is refused: 503, and the log says why.
  let w = await startWorker(tlsVars);
  let r = await ingest(w, seed);
  assert.equal(r.status, 503, r.text);
  t.diagnostic(`logged: ${await logLine(w, /TLS handshake failed|peer certificate/)}`);
  await stopWorker(w);

  // With the CA trusted, the same batch lands, and reads back.
  w = await startWorker(tlsVars, { env: { SSL_CERT_FILE: ca } });
  r = await ingest(w, seed);
  assert.equal(r.status, 202, r.text);
  const doc = pymongo(port, 'out(db["user_features"].find_one({"_id": "cid-seed-1"}))', { auth: false, tlsCA: ca });
  assert.equal(doc['pageviews@1'], 1);
  assert.equal((await features(w, 'user', 'cid-seed-1')).pageviews.value, 1);
  await stopWorker(w);
  await stopMongo(mongo);
});
