// The example Rust web app (examples/leptos, built into dist/ by its
// build.sh) in headless Chromium, tracking with freshet-sdk's `web` feature
// (the tracker in Rust, no JS package) against the edge worker under
// `wrangler dev` (the Durable Object store). The page is served by a static
// server started here; its write key admits that origin only. Every count
// is read back through the serving API and must be exact: nothing lost,
// nothing doubled, across batches, a reload with events still queued, and
// the edge down across a reload. Run by scripts/test-leptos.sh, which
// builds everything first. Everything listens on 127.0.0.1.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import zlib from 'node:zlib';
import * as stack from './stack.mjs';
import { startRelay } from './relay.mjs';
import { serveStatic } from './static.mjs';

const { until, sleep } = stack;
const DIST = path.join(stack.ROOT, 'examples', 'leptos', 'dist');
const WRITE_KEY = 'leptos-e2e';
const persist = path.join(stack.TMP, 'state-leptos');
let browser;
let site;
let edge;

before(async () => {
  browser = await stack.launch();
  site = await serveStatic(DIST);
  edge = await startEdge();
});
after(async () => {
  await browser?.close();
  await site?.close();
  await stack.stopAll();
});

/** The edge, admitting this write key from the static server's origin only. */
function startEdge(port) {
  return stack.startEdge({ persist, port, vars: { FRESHET_WRITE_KEYS: `${WRITE_KEY}=${site.origin}` } });
}

/** The app's address with the tracker's options in its query string. */
function appUrl(options = {}, origin = site.origin) {
  const q = new URLSearchParams({ endpoint: `${edge.base}/v1/ingest`, writeKey: WRITE_KEY, ...options });
  return `${origin}/?${q}`;
}

/**
 * A fresh visitor (its own cookies and localStorage) that records the batches
 * its pages send: `{ kind, batchId, events }` per POST to the edge, `kind`
 * being the request's resource type (`ping` for sendBeacon, `fetch`).
 */
async function visitor() {
  const context = await browser.newContext();
  const sent = [];
  const errors = [];
  context.on('request', (r) => {
    if (r.method() !== 'POST' || !r.url().startsWith(`${edge.base}/v1/ingest`)) return;
    let body = r.postDataBuffer();
    if (!body) return;
    if (body[0] === 0x1f && body[1] === 0x8b) body = zlib.gunzipSync(body);
    const batch = JSON.parse(body.toString());
    sent.push({ kind: r.resourceType(), batchId: batch.batchId, events: batch.events.map((e) => e.type) });
  });
  return { context, sent, errors };
}

/** Opens the app and waits for its tracker (or its error) to show. */
async function open(v, url) {
  const page = await v.context.newPage();
  page.on('pageerror', (e) => v.errors.push(e.message));
  await page.goto(url);
  return page;
}

async function clientId(page) {
  return until(async () => (await page.textContent('#client-id').catch(() => '')) || false, 15_000, 'the client id on the page');
}

const stat = async (page, name) => Number(await page.getAttribute('#stats', `data-${name}`));

async function clickCard(page, product, times) {
  for (let i = 0; i < times; i++) await page.click(`[data-product="${product}"]`);
}

async function addToCart(page, product, times) {
  for (let i = 0; i < times; i++) await page.click(`[data-add="${product}"]`);
}

const settle = (entity, id, want, ms) => stack.settle(edge, entity, id, want, ms);

describe('the Leptos example app, tracking in Rust', () => {
  test('events tracked by the Rust app count exactly once, in batches by count', async () => {
    const v = await visitor();
    const popularity = (await stack.features(edge, 'product', 'lp-1')).popularity_7d ?? 0;
    // Three events a batch: the page view and ten more go as four batches.
    const page = await open(v, appUrl({ batchSize: 3, flushIntervalMs: 200 }));
    const cid = await clientId(page);
    assert.equal(cid, (await v.context.cookies()).find((c) => c.name === 'freshet_cid')?.value, 'the page shows the cookie\'s client id');
    await clickCard(page, 'lp-1', 7);
    await addToCart(page, 'lp-2', 2);
    await clickCard(page, 'lp-3', 1);
    await settle('user', cid, {
      pageviews: 1,
      clicks_product_card: 8,
      clicks_product_card_7d: 8,
      cart_value_1h: 2 * 349,
      last_interacted_product: 'lp-3',
      recent_products: ['lp-3', ...Array(7).fill('lp-1')],
    });
    await settle('product', 'lp-1', { popularity_7d: popularity + 7 });
    await settle('user_product', `${cid}|lp-1`, { user_product_clicks: 7 });
    await until(async () => (await stat(page, 'queued')) === 0, 5_000, 'the queue to drain');
    assert.equal(await stat(page, 'dropped'), 0);
    assert.ok(v.sent.length >= 4, `sent ${v.sent.length} batches of at most three: ${JSON.stringify(v.sent)}`);
    assert.ok(v.sent.every((b) => b.events.length <= 3));
    assert.deepEqual(v.errors, []);
    await v.context.close();
  });

  test('the durable queue across a reload: the beacon and the resend of the same batch count once', async () => {
    // The page sends through a relay that sees the beacon of the page being
    // unloaded, which the browser does not show a test.
    const relay = await startRelay(() => edge.base);
    try {
      const v = await visitor();
      // Nothing leaves on its own: a batch of up to 500, an hour apart, and
      // the first event too (no leading edge).
      const page = await open(v, appUrl({ endpoint: `${relay.base}/v1/ingest`, batchSize: 500, flushIntervalMs: 3_600_000, leadingEdge: false }));
      const cid = await clientId(page);
      await clickCard(page, 'lp-3', 5);
      assert.equal(await stat(page, 'queued'), 6, 'the page view and five clicks wait in the queue');
      assert.deepEqual(relay.received, [], 'nothing sent before the reload');
      await page.reload(); // pagehide: the queue goes by sendBeacon and stays saved
      assert.equal(await clientId(page), cid, 'the same visitor after the reload');
      // The next page adopts the saved batch and resends it under its batch id.
      await settle('user', cid, { pageviews: 1, clicks_product_card: 5 });
      const clicks = (b) => b.events.filter((e) => e === 'product_click').length;
      const first = relay.received.find((b) => clicks(b) === 5);
      assert.ok(first, `a batch with the five clicks reached the edge: ${JSON.stringify(relay.received)}`);
      const same = await until(() => {
        const got = relay.received.filter((b) => b.batchId === first.batchId);
        return got.length >= 2 && got;
      }, 5_000, `the batch ${first.batchId} twice: by beacon and resent: ${JSON.stringify(relay.received)}`);
      // Chrome fires pagehide and then visibilitychange (hidden) on a reload:
      // each hands the saved batch to sendBeacon, as the npm package does.
      const modes = same.map((b) => b.mode);
      assert.ok(modes.includes('no-cors') && modes.includes('cors'), `by beacon (no-cors) and by fetch (cors): ${modes}`);
      assert.ok(same.every((b) => b.status < 300 && clicks(b) === 5), JSON.stringify(same));
      // More clicks after the reload add up exactly; "Send now" flushes them.
      await clickCard(page, 'lp-3', 4);
      await addToCart(page, 'lp-3', 1);
      await page.click('#flush');
      await settle('user', cid, { pageviews: 2, clicks_product_card: 9, cart_value_1h: 189 });
      await until(async () => (await stat(page, 'queued')) === 0, 5_000, 'the queue to drain');
      assert.deepEqual(v.errors, []);
      await v.context.close();
    } finally {
      await relay.close();
    }
  });

  test('the edge down across a reload: the queued events arrive exactly once when it is back', async () => {
    const v = await visitor();
    const failed = [];
    v.context.on('requestfailed', (r) => { if (r.url().startsWith(`${edge.base}/v1/ingest`)) failed.push(r.url()); });
    const page = await open(v, appUrl({ flushIntervalMs: 200 }));
    const cid = await clientId(page);
    await settle('user', cid, { pageviews: 1 });
    await stack.stop(edge.child); // the Durable Object store lives in the edge: all of it goes
    await clickCard(page, 'lp-4', 3);
    await addToCart(page, 'lp-4', 2);
    await until(() => failed.length >= 1, 10_000, 'a send to the stopped edge to fail');
    assert.equal(await stat(page, 'queued'), 5, 'five events wait for the edge');
    await page.reload();
    assert.equal(await clientId(page), cid);
    await sleep(1000); // the new page's first attempts fail too
    edge = await startEdge(edge.port); // the same address and persisted state
    await settle('user', cid, { pageviews: 2, clicks_product_card: 3, cart_value_1h: 2 * 25 }, 60_000);
    await until(async () => (await stat(page, 'queued')) === 0, 10_000, 'the queue to drain');
    assert.deepEqual(v.errors, []);
    await v.context.close();
  });

  test('another origin with the same write key is refused: nothing counts, the events stay queued', async () => {
    const other = await serveStatic(DIST);
    try {
      const v = await visitor();
      const attempts = [];
      v.context.on('requestfailed', (r) => { if (r.url().startsWith(`${edge.base}/v1/ingest`)) attempts.push(r.url()); });
      v.context.on('requestfinished', (r) => { if (r.url().startsWith(`${edge.base}/v1/ingest`)) attempts.push(r.url()); });
      const page = await open(v, appUrl({ flushIntervalMs: 200 }, other.origin));
      const cid = await clientId(page);
      await clickCard(page, 'lp-2', 2);
      await until(() => attempts.length >= 1, 10_000, 'an attempt from the other origin');
      await sleep(1000);
      const f = await stack.features(edge, 'user', cid);
      assert.ok(!f.pageviews && !f.clicks_product_card, `nothing counted: ${JSON.stringify(f)}`);
      assert.equal(await stat(page, 'queued'), 3, 'kept for a retry, not dropped');
      await v.context.close();
    } finally {
      await other.close();
    }
  });

  test('bad options: the page shows the error and the shop still works, untracked', async () => {
    const v = await visitor();
    const page = await open(v, appUrl({ batchSize: 'lots' }));
    const error = await page.waitForSelector('#tracker-error');
    assert.match(await error.textContent(), /batchSize must be a whole number, got "lots"/);
    assert.equal(await page.getAttribute('#tracker', 'data-started'), 'false');
    await addToCart(page, 'lp-1', 1);
    assert.equal(await page.getAttribute('#cart', 'data-total'), '899');
    // A value the tracker itself refuses (batchSize is 1 to 500): its error text.
    await page.goto(appUrl({ batchSize: 0 }));
    assert.match(await (await page.waitForSelector('#tracker-error')).textContent(), /the tracker did not start: .*batchSize/);
    await page.goto(appUrl({ endpoint: 'not a url' }));
    assert.match(await (await page.waitForSelector('#tracker-error')).textContent(), /the tracker did not start: .*endpoint/);
    assert.deepEqual(v.errors, []);
    assert.deepEqual(v.sent, [], 'nothing sent by a page whose tracker did not start');
    await v.context.close();
  });
});
