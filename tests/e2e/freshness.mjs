// Freshness: from a click in the browser to the value visible in the serving
// API. Headless Chromium clicks a product card in the built example shop
// (its tracker configured as shipped: flushIntervalMs 250, the leading edge
// on), and again with the leading edge off (NUXT_PUBLIC_FRESHET_LEADING_EDGE
// =false: a batch goes 250 ms after its first event); this process polls
// GET /v1/features/user/<clientId> every POLL_MS until clicks_product_card
// shows the click. One click at a time, CLICKS per store and mode, each
// store on its own edge under `wrangler dev`. Then, on the first store, the
// requests 100 clicks make at a human pace and in bursts, in both modes.
// Prints one JSON line per store and mode on stdout. Usage:
//   node freshness.mjs [clicks] [stores: durable-object,redis,mongo]
// FRESHNESS_PIPELINES (direct, or direct,queue: each store in each
// pipeline, FRESHET_PIPELINE) and FRESHNESS_LEADING_EDGE (on,off) choose
// the runs.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';
import * as stack from './stack.mjs';

const CLICKS = Number(process.argv[2] || 200);
const STORES = (process.argv[3] || 'durable-object,redis').split(',');
const PIPELINES = (process.env.FRESHNESS_PIPELINES || 'direct').split(',');
const LEADING = (process.env.FRESHNESS_LEADING_EDGE || 'on,off').split(',').map((m) => m === 'on');
const POLL_MS = 5;
const { sleep, until } = stack;

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
const summary = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: pct(s, 50), p99: pct(s, 99), max: s.at(-1), min: s[0] };
};

async function startMongo() {
  const port = await stack.freePort();
  const dir = fs.mkdtempSync(path.join(stack.TMP, 'mongo-'));
  const bin = process.env.SECANTUSD || path.join(stack.ROOT, '.tools', 'venv', 'bin', 'secantusd-py');
  const log = fs.openSync(path.join(stack.TMP, 'secantusd.log'), 'a');
  const child = spawn(bin, ['--host', '127.0.0.1', '--port', String(port), '--storage-path', dir, '--standalone',
    '--log-level', 'WARNING'], { detached: true, stdio: ['ignore', log, log] });
  await until(() => new Promise((ok) => {
    const s = net.connect(port, '127.0.0.1', () => { s.destroy(); ok(true); });
    s.on('error', () => ok(false));
  }), 60_000, 'SecantusDB', 100);
  return { child, url: `mongodb://127.0.0.1:${port}/freshet` };
}

const leadingEdgeEnv = (on) => ({ NUXT_PUBLIC_FRESHET_LEADING_EDGE: String(on) });

async function measure(browser, storeName, pipeline, leadingEdge, countRequests) {
  let server;
  if (storeName === 'redis') server = await stack.startRedis(await stack.freePort());
  if (storeName === 'mongo') server = await startMongo();
  const mode = leadingEdge ? 'on' : 'off';
  const edge = await stack.startEdge({ store: server?.url, persist: path.join(stack.TMP, `state-${storeName}-${pipeline}-${mode}`),
    vars: { FRESHET_PIPELINE: pipeline } });
  const shop = await stack.startShop(edge, undefined, leadingEdgeEnv(leadingEdge));
  const context = await browser.newContext();
  // The click's own time, from the browser's event (same clock as Date.now() here).
  await context.addInitScript(() => document.addEventListener('click', (e) => { window.__clickAt = performance.timeOrigin + e.timeStamp; }, true));
  const page = await context.newPage();
  let sentAt = 0;
  // The batch with the click (a late page view of the way back is not it).
  page.on('request', (r) => {
    if (r.url().endsWith('/api/ingest') && !sentAt && (r.postData() ?? '').includes('product_click')) sentAt = Date.now();
  });
  await page.goto(`${shop.origin}/category/cameras`);
  const cid = await until(async () => (await context.cookies()).find((c) => c.name === 'freshet_cid')?.value, 15_000, 'the tracker');
  await until(async () => (await stack.features(edge, 'user', cid)).pageviews === 1, 10_000, 'the first page view');
  const read = async () => (await stack.features(edge, 'user', cid)).clicks_product_card;
  const total = [];
  const toWire = [];
  const fromWire = [];
  const loadBefore = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  for (let n = 1; n <= CLICKS; n++) {
    await page.waitForSelector('[data-product="prod-1"]');
    // A look at the page before the next click: the page view of the way back
    // is on the wire and out of the way, and the tracker has sent nothing for
    // more than its flush interval (250 ms), as after a person's pause.
    await sleep(600);
    sentAt = 0;
    await page.click('[data-product="prod-1"]');
    const clickAt = await page.evaluate(() => window.__clickAt);
    let seenAt;
    for (;;) {
      if ((await read()) >= n) { seenAt = Date.now(); break; }
      if (Date.now() - clickAt > 30_000) throw new Error(`click ${n} not visible after 30 s`);
      await sleep(POLL_MS);
    }
    total.push(seenAt - clickAt);
    if (sentAt) { toWire.push(sentAt - clickAt); fromWire.push(seenAt - sentAt); }
    await page.goBack();
  }
  const loadAfter = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const final = await read();
  await context.close();
  const requests = countRequests ? await requestsPer100Clicks(browser, shop) : undefined;
  await stack.stop(shop.child);
  await stack.stop(edge.child);
  if (server) await stack.stop(server.child);
  return {
    store: storeName, pipeline, leadingEdge, clicks: CLICKS, counted: final, pollMs: POLL_MS,
    total: summary(total), toWire: summary(toWire), fromWire: summary(fromWire), loadBefore, loadAfter, requests,
  };
}

/**
 * The batches (POSTs to /api/ingest) 100 clicks on a product card make, on
 * one page (navigation prevented, so no page view comes between): at a human
 * pace (one click every 600 ms, slower than the flush interval) and in
 * bursts (ten bursts of ten clicks within 100 ms, 1.5 s apart).
 */
async function requestsPer100Clicks(browser, shop) {
  // `offsets`: when each click goes, in ms from the first.
  const count = async (offsets) => {
    const context = await browser.newContext();
    await context.addInitScript(() => document.addEventListener('click', (e) => e.preventDefault(), true));
    const page = await context.newPage();
    let posts = 0;
    page.on('request', (r) => { if (r.url().endsWith('/api/ingest') && r.method() === 'POST') posts++; });
    await page.goto(`${shop.origin}/category/cameras`);
    await page.waitForSelector('[data-product="prod-1"]');
    await sleep(1500); // the page view's batch is out of the way
    const before = posts;
    const t0 = Date.now();
    for (const offset of offsets) {
      const wait = t0 + offset - Date.now();
      if (wait > 0) await sleep(wait);
      await page.click('[data-product="prod-1"]', { noWaitAfter: true });
    }
    await sleep(1500); // the last batch is out
    const sent = posts - before;
    await context.close();
    return sent;
  };
  const human = await count(Array.from({ length: 100 }, (_, i) => i * 600));
  const bursts = await count(Array.from({ length: 100 }, (_, i) => Math.floor(i / 10) * 1500 + (i % 10) * 10));
  return { human, bursts };
}

const browser = await stack.launch();
try {
  let first = true;
  for (const store of STORES) {
    // Every pipeline and mode side by side for each store; the requests count once.
    for (const pipeline of PIPELINES) {
      for (const leadingEdge of LEADING) {
        try {
          console.log(JSON.stringify(await measure(browser, store, pipeline, leadingEdge, first)));
        } catch (e) {
          console.log(JSON.stringify({ store, pipeline, leadingEdge, error: String(e.message).split('\n')[0] }));
        }
        first = false;
      }
    }
  }
} finally {
  await browser.close();
  await stack.stopAll();
}
