// The tracker benchmark (scripts/bench-sdk.sh): in one headless Chromium page,
// the main-thread cost of 1,000 track() calls and of delivering them, for
// Freshet, posthog-js and @segment/analytics-next; and the size of "init +
// one track" bundled by esbuild (minified, gzip -9) for them and more peers.
// Main-thread cost is Chromium's own TaskDuration metric (CDP Performance),
// so work a library defers to timers or promises is counted too.
// Prints a Markdown section to stdout.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { bundle, gzipBytes } from './size.mjs';
import { launch } from './browser.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const npmDir = resolve(here, '../../npm');
const peers = join(here, 'bench-peers/node_modules');
const N = 1000;
const kb = (n) => (n / 1024).toFixed(1);

// --- sizes ----------------------------------------------------------------
const SIZE_ENTRIES = {
  'Freshet': `import { createTracker } from 'freshet';
const t = await createTracker({ endpoint: '/api/ingest', writeKey: 'wk' });
t.track('product_click', { productId: 'p1' });`,
  'Snowplow (@snowplow/browser-tracker)': `import { newTracker, trackSelfDescribingEvent } from '@snowplow/browser-tracker';
newTracker('sp', 'collector.example');
trackSelfDescribingEvent({ event: { schema: 'iglu:com.example/product_click/jsonschema/1-0-0', data: { productId: 'p1' } } });`,
  'RudderStack (@rudderstack/analytics-js)': `import { RudderAnalytics } from '@rudderstack/analytics-js';
const r = new RudderAnalytics(); r.load('wk', 'https://dp.example'); r.track('product_click', { productId: 'p1' });`,
  'Segment (@segment/analytics-next)': `import { AnalyticsBrowser } from '@segment/analytics-next';
const a = AnalyticsBrowser.load({ writeKey: 'wk' }); a.track('product_click', { productId: 'p1' });`,
  'PostHog (posthog-js)': `import posthog from 'posthog-js';
posthog.init('phc_x', { api_host: 'https://ph.example' }); posthog.capture('product_click', { productId: 'p1' });`,
};

async function sizes() {
  const rows = [];
  for (const [name, entry] of Object.entries(SIZE_ENTRIES)) {
    const files = await bundle(entry, [peers]);
    const jsFiles = files.filter((f) => f.endsWith('.js'));
    let js = 0;
    for (const f of jsFiles) js += gzipBytes(f);
    const wasm = name === 'Freshet' ? gzipBytes(join(npmDir, 'pkg/freshet_sdk_bg.wasm')) : 0;
    rows.push({ name, js, wasm, total: js + wasm, chunks: jsFiles.length });
  }
  return rows;
}

// --- main-thread cost -----------------------------------------------------
async function peerBundles() {
  const out = {};
  for (const [key, entry] of Object.entries({
    posthog: `import posthog from 'posthog-js'; window.posthog = posthog;`,
    segment: `import { AnalyticsBrowser } from '@segment/analytics-next'; window.AnalyticsBrowser = AnalyticsBrowser;`,
  })) {
    const files = await bundle(entry, [peers]);
    out[key] = Object.fromEntries(files.map((f) => [f.split('/').pop(), f]));
  }
  return out;
}

const PAGE = `<!doctype html><html><head><title>bench</title></head><body><script type="module">
import { createTracker } from '/npm/src/index.js';
window.createTracker = createTracker;
await import('/peer/posthog/entry.js');
await import('/peer/segment/entry.js');
window.ready = true;
</script></body></html>`;

async function mainThread() {
  const bundles = await peerBundles();
  let posts = 0;
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    if (req.method === 'GET' && url.pathname === '/') return res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
    if (req.method === 'GET' && url.pathname.startsWith('/npm/')) {
      const file = join(npmDir, url.pathname.slice(5));
      const type = file.endsWith('.wasm') ? 'application/wasm' : 'text/javascript';
      return res.writeHead(200, { 'content-type': type }).end(await readFile(file));
    }
    if (req.method === 'GET' && url.pathname.startsWith('/peer/')) {
      const [, , lib, name] = url.pathname.split('/');
      const file = bundles[lib]?.[name];
      if (file) return res.writeHead(200, { 'content-type': 'text/javascript' }).end(await readFile(file));
    }
    for await (const _ of req); // drain
    if (req.method === 'POST') posts++;
    // Everything else (ingest, PostHog's /flags, Segment's /v1/t): a plain yes.
    res.writeHead(200, { 'content-type': 'application/json', 'access-control-allow-origin': '*' }).end('{}');
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const origin = `http://127.0.0.1:${server.address().port}`;
  const browser = await launch();
  const page = await (await browser.newContext()).newPage();
  await page.goto(origin);
  await page.waitForFunction(() => window.ready === true, null, { timeout: 30_000 });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  const taskMs = async () => (await cdp.send('Performance.getMetrics')).metrics.find((m) => m.name === 'TaskDuration').value * 1000;
  // Until the library has sent something and then nothing for 600 ms
  // (a library with its own batch timer gets up to 10 s to start).
  const quiet = async (expectPosts) => {
    for (let i = 0; expectPosts && posts === 0 && i < 100; i++) await new Promise((r) => setTimeout(r, 100));
    let last = -1;
    for (let i = 0; i < 50 && last !== posts; i++) { last = posts; await new Promise((r) => setTimeout(r, 600)); }
  };

  const libs = {
    Freshet: {
      init: `window.lib = await window.createTracker({ endpoint: '${origin}/ingest', writeKey: 'wk', batchSize: 500, flushIntervalMs: 3600000 });`,
      track: `window.lib.track('product_click', { productId: 'p' + i, component: 'ProductCard', position: i })`,
      flush: `await window.lib.flush();`,
    },
    'posthog-js': {
      init: `window.posthog.init('phc_bench', { api_host: '${origin}', autocapture: false, capture_pageview: false, capture_pageleave: false, disable_session_recording: true, advanced_disable_decide: true, advanced_disable_flags: true, persistence: 'localStorage', opt_out_useragent_filter: true }); window.lib = window.posthog;`,
      track: `window.lib.capture('product_click', { productId: 'p' + i, component: 'ProductCard', position: i })`,
      // posthog-js batches and sends on its own timer; the flush is that send.
      flush: ``,
    },
    '@segment/analytics-next': {
      init: `const [a] = await window.AnalyticsBrowser.load({ writeKey: 'wk', cdnSettings: { integrations: { 'Segment.io': { apiKey: 'wk', apiHost: '${origin.replace('http://', '')}/v1', protocol: 'http' } } } }); window.lib = a;`,
      track: `window.lib.track('product_click', { productId: 'p' + i, component: 'ProductCard', position: i })`,
      // Segment sends each event on its own; the flush is those sends.
      flush: ``,
    },
  };
  const rows = [];
  for (const [name, lib] of Object.entries(libs)) {
    await page.evaluate(`(async () => { ${lib.init} })()`);
    // Warm up (JIT, wasm tier-up, first requests) with 200 untimed events.
    await page.evaluate(`(async () => { for (let i = 0; i < 200; i++) ${lib.track}; ${lib.flush} })()`);
    await quiet(true);
    posts = 0;
    const t0 = await taskMs();
    const wall = await page.evaluate(`(() => { const s = performance.now(); for (let i = 0; i < ${N}; i++) ${lib.track}; return performance.now() - s; })()`);
    const t1 = await taskMs();
    await page.evaluate(`(async () => { ${lib.flush} })()`);
    await quiet(true);
    const t2 = await taskMs();
    rows.push({ name, trackWall: wall, trackTask: t1 - t0, flushTask: t2 - t1, posts });
  }
  await browser.close();
  server.close();
  return rows;
}

const sizeRows = await sizes();
// Three page runs; each figure is the median of the three (the machine is shared).
const runs = [await mainThread(), await mainThread(), await mainThread()];
const median = (xs) => [...xs].sort((a, b) => a - b)[1];
const mainRows = runs[0].map((row, i) => Object.fromEntries(Object.entries(row).map(([k, v]) =>
  [k, typeof v === 'number' ? median(runs.map((r) => r[i][k])) : v])));
const ours = sizeRows[0].total;
const version = (p) => JSON.parse(readFileSync(join(peers, p, 'package.json'), 'utf8')).version;
const chromium = execFileSync('/usr/bin/chromium', ['--version']).toString().trim();

console.log(`## Browser tracker

Command: \`bash scripts/bench-sdk.sh\` (writes this section). Measured ${new Date().toISOString().slice(0, 10)} on this
project's 2-core machine, headless ${chromium}, all libraries in one page run against a local
HTTP server on 127.0.0.1. Peers: posthog-js ${version('posthog-js')}, @segment/analytics-next ${version('@segment/analytics-next')},
@snowplow/browser-tracker ${version('@snowplow/browser-tracker')}, @rudderstack/analytics-js ${version('@rudderstack/analytics-js')}.

### Size: init + one track, esbuild --bundle --minify, each file gzip -9

| tracker | JS KB | wasm KB | total KB | vs Freshet |
|---|---:|---:|---:|---:|
${sizeRows.map((r) => `| ${r.name} | ${kb(r.js)} | ${kb(r.wasm)} | ${kb(r.total)} | ${(r.total / ours).toFixed(2)}x |`).join('\n')}

KB = 1024 bytes. JS counts every chunk esbuild emits (lazy chunks included); what a peer
fetches later from its CDN at run time (Segment's settings and plugins, RudderStack's
plugins) is not counted, which favours them. The budget check (tests/sdk/size.mjs) fails
Freshet above 20 KB.

### What the wasm's size came from (gzip -9 of the shipped .wasm)

- Browser I/O (fetch, sendBeacon, storage, timers, listeners, CompressionStream) lives in
  the npm package's JS driver; Rust keeps every decision. With web-sys, closures and
  wasm-bindgen-futures in Rust the wasm was 39 KB.
- opt-level "z" for the tracker crate: 12.0 KB; the workspace's opt-level 3: 18.6 KB.
- Built as a cdylib alone (\`cargo rustc --crate-type cdylib\`): 3 KB less than with the
  rlib type as well.
- lol_alloc instead of std's dlmalloc: about 3 KB less. Config, payloads and Retry-After
  cross the boundary as text, and no \`core::fmt\` in the tracker's own code.
- Not taken: a \`no_std\` build (it needs \`freshet-core\`'s \`wire\` feature to build
  \`no_std\`) measured 11.1 KB, 1.1 KB less.

### Main-thread cost of ${N} track() calls and of delivering them

| tracker | ${N} calls, wall ms | ${N} calls, main-thread ms | delivery, main-thread ms | requests |
|---|---:|---:|---:|---:|
${mainRows.map((r) => `| ${r.name} | ${r.trackWall.toFixed(1)} | ${r.trackTask.toFixed(1)} | ${r.flushTask.toFixed(1)} | ${r.posts} |`).join('\n')}

Median of three page runs. Each library first tracks and delivers 200 untimed events (JIT, wasm tier-up). posthog-js
runs with \`opt_out_useragent_filter\` (it drops a headless browser's events as a bot's).
Main-thread ms is Chromium's TaskDuration (CDP Performance metrics) over the span, so work
deferred to promises and timers counts. Delivery: Freshet's \`flush()\` (batchSize 500; maxBatchBytes
60000 cuts the 1,000 events into gzipped batches); posthog-js's own batch timer; Segment sends each event as its own
request. Ratios between rows are the figure to read; absolute numbers move with the machine.
`);
