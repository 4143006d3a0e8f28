// The whole stack on 127.0.0.1, for the end-to-end tests and the freshness
// benchmark: a redis-server on a free port, the edge worker under
// `wrangler dev` (from a copy of edge/build, so a rebuild elsewhere cannot
// change it mid-run, and a config without [build] so restarts take seconds),
// the built example shop (examples/nuxt/.output) and headless Chromium.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const EDGE = path.join(ROOT, 'edge');
export const SHOP = path.join(ROOT, 'examples', 'nuxt');
export const READ_TOKEN = 'rt-' + randomBytes(8).toString('hex');
export const SECRET = 'id-' + randomBytes(8).toString('hex');
export const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'freshet-e2e-'));
const children = new Set();

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns something truthy, or throws after `ms`. */
export async function until(check, ms = 10_000, what = 'condition', every = 25) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try { last = await check(); } catch (e) { last = e; }
    if (last && !(last instanceof Error)) return last;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    await sleep(every);
  }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

function track(child) {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

/** Stops a process group we started, and waits for it. */
export async function stop(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ }
  for (let i = 0; i < 200 && child.exitCode === null && child.signalCode === null; i++) await sleep(25);
  if (child.exitCode === null && child.signalCode === null) try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
}

export async function stopAll() {
  await Promise.all([...children].map(stop));
  fs.rmSync(TMP, { recursive: true, force: true });
}

// ---- redis-server: data kept in an rdb so a stop and start loses nothing ----
export function redisCli(port, ...args) {
  return execFileSync('redis-cli', ['-p', String(port), '--no-raw', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
}

/** HGETALL as an object. */
export function redisHash(port, key) {
  const out = execFileSync('redis-cli', ['-p', String(port), '--raw', 'HGETALL', key], { encoding: 'utf8' }).split('\n');
  if (out.at(-1) === '') out.pop();
  const o = {};
  for (let i = 0; i + 1 < out.length; i += 2) o[out[i]] = out[i + 1];
  return o;
}

export async function startRedis(port, dir = TMP) {
  const child = track(spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no', '--dir', dir, '--dbfilename', `dump-${port}.rdb`], { detached: true, stdio: 'ignore' }));
  await until(() => { try { return redisCli(port, 'PING') === 'PONG'; } catch { return false; } }, 10_000, 'redis-server');
  return { port, child, url: `redis://127.0.0.1:${port}` };
}

/** SHUTDOWN SAVE: the data comes back with the next start. */
export async function stopRedis(redis) {
  try { redisCli(redis.port, 'SHUTDOWN', 'SAVE'); } catch { /* the connection drops as it exits */ }
  await until(() => redis.child.exitCode !== null || redis.child.signalCode !== null, 10_000, 'redis-server to stop');
}

// ---- the edge under wrangler dev ----
let edgeConfig;
function config() {
  if (edgeConfig) return edgeConfig;
  const build = path.join(TMP, 'edge-build');
  fs.cpSync(path.join(EDGE, 'build'), build, { recursive: true });
  const text = fs.readFileSync(path.join(EDGE, 'wrangler.toml'), 'utf8')
    .replace(/\[build\][^[]*/, '')
    .replace(/^main = .*$/m, `main = "${path.join(build, 'index.js')}"`);
  edgeConfig = path.join(TMP, 'wrangler.toml');
  fs.writeFileSync(edgeConfig, text);
  return edgeConfig;
}

/**
 * Starts `wrangler dev`. `store` is a FRESHET_STORE value (undefined: the
 * Durable Object default); `persist` the folder its local state lives in.
 * `port` may be given to restart on the same address.
 */
/** `vars` adds to the worker's variables (e.g. FRESHET_DRIFT_SAMPLE_RATE). */
export async function startEdge({ store, persist = path.join(TMP, 'edge-state'), port, vars: extra = {} } = {}) {
  port ??= await freePort();
  const inspector = await freePort();
  const vars = { FRESHET_WRITE_KEYS: 'dev=*', FRESHET_READ_TOKEN: READ_TOKEN, FRESHET_IDENTITY_SECRET: SECRET, ...(store ? { FRESHET_STORE: store } : {}), ...extra };
  const args = ['dev', '--config', config(), '--local', '--ip', '127.0.0.1', '--port', String(port),
    '--inspector-port', String(inspector), '--show-interactive-dev-session=false', '--persist-to', persist];
  for (const [k, v] of Object.entries(vars)) args.push('--var', `${k}:${v}`);
  const logFile = path.join(TMP, `wrangler-${port}-${Date.now()}.log`);
  const log = fs.openSync(logFile, 'w');
  const child = track(spawn(path.join(EDGE, 'node_modules', '.bin', 'wrangler'), args,
    { cwd: TMP, detached: true, stdio: ['ignore', log, log] }));
  const base = `http://127.0.0.1:${port}`;
  try {
    await until(async () => child.exitCode === null ? (await fetch(`${base}/health`)).ok : new Error('exited'), 120_000, 'wrangler dev', 250);
  } catch (e) {
    throw new Error(`${e.message}\n${fs.readFileSync(logFile, 'utf8')}`, { cause: e });
  }
  return { base, port, child, store: store ?? 'durable-object', persist, logFile };
}

// ---- the example shop, built ----
/** `env` adds to the shop's environment (e.g. NUXT_SHOP_MODEL_URL). */
export async function startShop(edge, port, env = {}) {
  port ??= await freePort();
  let log = '';
  const child = track(spawn(process.execPath, [path.join(SHOP, '.output', 'server', 'index.mjs')], {
    cwd: SHOP,
    detached: true,
    env: {
      ...process.env, PORT: String(port), HOST: '127.0.0.1', NITRO_HOST: '127.0.0.1', NUXT_TELEMETRY_DISABLED: '1',
      NUXT_FRESHET_EDGE_ENDPOINT: `${edge.base}/v1/ingest`, NUXT_SHOP_EDGE_URL: edge.base,
      NUXT_SHOP_READ_TOKEN: READ_TOKEN, NUXT_SHOP_IDENTITY_SECRET: SECRET, ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  }));
  child.stdout.on('data', (d) => { log += d; });
  child.stderr.on('data', (d) => { log += d; });
  const origin = `http://127.0.0.1:${port}`;
  await until(async () => (await fetch(origin)).ok, 30_000, 'the shop');
  return { origin, child, port, get log() { return log; } };
}

// ---- Chromium (Debian's, through playwright-core) ----
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_BIN || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
}

// ---- the serving API ----
export async function features(edge, entity, id) {
  const res = await fetch(`${edge.base}/v1/features/${entity}/${encodeURIComponent(id)}`,
    { headers: { authorization: `Bearer ${READ_TOKEN}` } });
  if (res.status !== 200) throw new Error(`GET features ${res.status}: ${await res.text()}`);
  const out = {};
  for (const [name, f] of Object.entries((await res.json()).features)) out[name] = f.value;
  return out;
}

/** Waits until the served features include `want`, then checks they stay so
 * (nothing doubled late); returns every served feature. */
export async function settle(edge, entity, id, want, ms = 20_000) {
  const pick = (f) => Object.fromEntries(Object.keys(want).map((k) => [k, f[k]]));
  let got;
  try {
    await until(async () => { got = pick(await features(edge, entity, id)); return JSON.stringify(got) === JSON.stringify(want); }, ms, `${entity}:${id}`, 100);
  } catch (e) {
    assert.deepEqual(got, want, e.message);
  }
  await sleep(1500);
  assert.deepEqual(pick(await features(edge, entity, id)), want, 'still exact a moment later');
  return features(edge, entity, id);
}

export function identityToken(user, expiry, secret = SECRET) {
  const sig = createHmac('sha256', secret).update(`${user}.${expiry}`).digest('base64url');
  return `${user}.${expiry}.${sig}`;
}
