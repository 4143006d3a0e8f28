// freshet/nuxt in a built Nuxt app (nuxt-app/): the server-rendered HTML
// loads no wasm; in the browser the tracker starts after hydration, tracks a
// page view per route, and its batches reach the edge (here a local
// collector) through the first-party /api/ingest route on the Nuxt server.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch } from './browser.mjs';
import { startCollector, until } from './collector.mjs';

const app = join(dirname(fileURLToPath(import.meta.url)), 'nuxt-app');
const run = (cmd, args) => execFileSync(cmd, args, { cwd: app, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, NUXT_TELEMETRY_DISABLED: '1' } });

const freePort = () => new Promise((ok) => {
  const s = createServer();
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => ok(port)); });
});

let collector;
let server;
let origin;
let browser;
let serverLog = '';

before(async () => {
  // A copy, not a symlink, of the freshly built package (TOOLCHAIN.md).
  if (!existsSync(join(app, 'node_modules/nuxt'))) run('npm', ['install', '--install-links', '--no-audit', '--no-fund', '--loglevel=error']);
  rmSync(join(app, 'node_modules/freshet'), { recursive: true, force: true });
  run('npm', ['install', '--install-links', '--no-save', '--no-audit', '--no-fund', '--loglevel=error', '../../../npm']);
  run('npx', ['nuxt', 'build']);
  collector = await startCollector();
  const port = await freePort();
  origin = `http://127.0.0.1:${port}`;
  server = spawn(process.execPath, ['.output/server/index.mjs'], {
    cwd: app,
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', NUXT_FRESHET_EDGE_ENDPOINT: collector.endpoint },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout.on('data', (d) => { serverLog += d; });
  server.stderr.on('data', (d) => { serverLog += d; });
  await until(async () => (await fetch(origin).catch(() => null))?.ok, 30_000, 'the Nuxt server');
  browser = await launch();
}, { timeout: 600_000 });

after(async () => {
  await browser?.close();
  server?.kill();
  await collector?.close();
});

test('the server-rendered HTML loads no wasm and no tracker code', async () => {
  const html = await (await fetch(`${origin}/`)).text();
  assert.match(html, /<h1>Shop<\/h1>/, 'server-rendered');
  assert.doesNotMatch(html, /\.wasm/);
  assert.doesNotMatch(html, /freshet_sdk/);
});

test('page views per route and trackEvent reach the edge through /api/ingest', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const wasmRequests = [];
  page.on('request', (r) => { if (r.url().endsWith('.wasm')) wasmRequests.push(r.url()); });
  await page.goto(`${origin}/`);
  await until(() => collector.applied().some((b) => b.events.some((e) => e.type === 'page_view')), 10_000, 'the first page view');
  assert.equal(wasmRequests.length, 1, 'the wasm is fetched once, by the browser');
  await page.click('#buy');
  await page.click('#to-about');
  await page.waitForSelector('text=About');
  await until(() => {
    const types = collector.applied().flatMap((b) => b.events.map((e) => `${e.type}:${e.payload?.path ?? e.payload?.productId}`));
    return types.includes('product_click:prod-1') && types.includes('page_view:/about') && types;
  }, 10_000, 'the click and the second page view');
  const r = collector.received[0];
  assert.equal(r.body.writeKey, 'wk_nuxt');
  assert.equal(r.headers.origin, origin, 'the browser origin is forwarded to the edge');
  assert.ok(r.headers['x-forwarded-for'], 'the client address is forwarded');
  const ids = collector.applied().flatMap((b) => b.events.map((e) => e.clientId));
  assert.equal(new Set(ids).size, 1);
  await context.close();
});

test('/api/ingest passes the edge answer through: status and Retry-After', async () => {
  // Only this request's batch is answered 429: a late batch of the page the
  // previous test closed (its pagehide beacon) may reach the collector first.
  collector.state.fallback = (b) => (b?.batchId === 'b-passthrough' ? { status: 429, headers: { 'retry-after': '7' } } : { status: 202 });
  const res = await fetch(`${origin}/api/ingest`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain', origin },
    body: JSON.stringify({ batchId: 'b-passthrough', writeKey: 'wk', events: [] }),
  });
  collector.state.fallback = { status: 202 };
  assert.equal(res.status, 429);
  assert.equal(res.headers.get('retry-after'), '7');
  const empty = await fetch(`${origin}/api/ingest`, { method: 'POST', body: '' });
  assert.equal(empty.status, 400);
  assert.ok(!serverLog.includes('Error'), serverLog);
});
