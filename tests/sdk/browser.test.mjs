// The tracker in a real browser (headless Chromium) against a local collector:
// batching, the interval, the unload path, retries, the durable queue, ids,
// sessions and gzip. Run: node --test browser.test.mjs (after npm/build.sh).
import { after, afterEach, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, openPage } from './browser.mjs';
import { startCollector, until } from './collector.mjs';

let browser;
let collector;
const contexts = [];

before(async () => {
  collector = await startCollector();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await collector?.close();
});
beforeEach(() => collector.reset());
afterEach(async () => {
  for (const c of contexts.splice(0)) await c.close();
});

async function context() {
  const c = await browser.newContext();
  contexts.push(c);
  return c;
}

// Batching by count and interval alone unless a test asks for the leading edge.
async function tracked(options = {}, ctx) {
  const page = await openPage(ctx ?? (await context()), collector.origin);
  await page.evaluate((o) => window.start(o), { endpoint: collector.endpoint, writeKey: 'wk_test', leadingEdge: false, ...options });
  return page;
}

const track = (page, n, type = 'product_click', payload = {}) =>
  page.evaluate(([n, type, payload]) => { for (let i = 0; i < n; i++) window.t.track(type, { i, ...payload }); }, [n, type, payload]);

const events = (bodies) => bodies.flatMap((b) => b.events);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('bad arguments throw TypeErrors with clear messages', async () => {
  const page = await openPage(await context(), collector.origin);
  const unknown = await page.evaluate(() => window.startError({ endpoint: '/x', writeKey: 'k', batchsize: 5 }));
  assert.equal(unknown, "TypeError: freshet: unknown option 'batchsize'");
  const range = await page.evaluate(() => window.startError({ endpoint: '/x', writeKey: 'k', batchSize: 0 }));
  assert.equal(range, "TypeError: freshet: option 'batchSize' must be an integer from 1 to 500");
  const missing = await page.evaluate(() => window.startError({ endpoint: '/x' }));
  assert.equal(missing, "TypeError: freshet: option 'writeKey' is required");
  const callback = await page.evaluate(() => window.startError({ endpoint: '/x', writeKey: 'k', onIdentityRejected: 'refresh' }));
  assert.equal(callback, "TypeError: freshet: option 'onIdentityRejected' must be a function");
  await page.evaluate((endpoint) => window.start({ endpoint, writeKey: 'wk' }), collector.endpoint);
  const thrown = await page.evaluate(() => {
    const out = [];
    for (const f of [() => window.t.track('Product Click'), () => window.t.track('ok', [1]), () => window.t.track(7),
      () => window.t.identify('a b', 'tok'), () => { const o = {}; o.o = o; window.t.track('ok', o); }]) {
      try { f(); out.push('no error'); } catch (e) { out.push(e.constructor.name + ': ' + e.message); }
    }
    return out;
  });
  assert.match(thrown[0], /^TypeError: freshet: event type 'Product Click' must match/);
  for (const t of thrown.slice(1)) assert.match(t, /^TypeError: freshet: /);
});

test('a batch goes at batchSize, and at maxBatchBytes', async () => {
  const page = await tracked({ batchSize: 3, flushIntervalMs: 60_000 });
  await track(page, 7);
  await until(() => collector.received.length >= 2, 5000, 'two full batches');
  await sleep(300);
  assert.equal(collector.received.length, 2, 'the seventh event waits for the interval');
  assert.deepEqual(collector.received.map((r) => r.body.events.length), [3, 3]);
  const ids = events(collector.received.map((r) => r.body)).map((e) => e.id);
  assert.equal(new Set(ids).size, 6);

  collector.reset();
  const big = await tracked({ batchSize: 500, maxBatchBytes: 4096, flushIntervalMs: 60_000, gzip: false });
  await track(big, 12, 'product_view', { text: 'x'.repeat(600) });
  await until(() => collector.received.length >= 2, 5000, 'batches cut by bytes');
  for (const r of collector.received) assert.ok(r.raw.length <= 4096, `body of ${r.raw.length} bytes`);
});

test('an open batch goes after flushIntervalMs without a flush (leadingEdge false: the first event waits too)', async () => {
  const page = await tracked({ flushIntervalMs: 400 });
  const t0 = Date.now();
  await track(page, 2);
  await until(() => collector.received.length === 1, 5000, 'the interval flush');
  const waited = collector.received[0].at - t0;
  assert.ok(waited >= 300, `sent after ${waited} ms`);
  assert.equal(collector.received[0].body.events.length, 2);
});

test('the leading edge (by default): a click after a quiet spell is on the wire at once; ten clicks in 100 ms make two requests', async () => {
  const page = await openPage(await context(), collector.origin);
  await page.evaluate((endpoint) => window.start({ endpoint, writeKey: 'wk_test', flushIntervalMs: 1000 }), collector.endpoint);
  const waited = await page.evaluate(async () => {
    const sent = new Promise((resolve) => new PerformanceObserver((list, observer) => {
      const post = list.getEntries().find((e) => e.name.includes('/ingest'));
      if (post) { observer.disconnect(); resolve(post.startTime); }
    }).observe({ type: 'resource' }));
    const at = performance.now();
    window.t.track('product_click', { productId: 'p1' });
    return (await sent) - at;
  });
  assert.ok(waited < 50, `the click went after ${waited.toFixed(1)} ms`);
  await until(() => collector.received.length === 1, 5000, 'the leading click');
  assert.equal(collector.received[0].body.events.length, 1);

  collector.reset();
  const burst = await openPage(await context(), collector.origin);
  await burst.evaluate((endpoint) => window.start({ endpoint, writeKey: 'wk_test', flushIntervalMs: 1000 }), collector.endpoint);
  await burst.evaluate(async () => {
    for (let i = 0; i < 10; i++) {
      window.t.track('product_click', { i });
      await new Promise((r) => setTimeout(r, 10));
    }
  });
  await until(() => collector.received.length >= 2, 5000, 'the trailing batch');
  await sleep(1200);
  assert.deepEqual(collector.received.map((r) => r.body.events.length), [1, 9]);
});

test('pagehide sends the queue with sendBeacon as text/plain', async () => {
  const page = await tracked({ flushIntervalMs: 60_000 });
  await track(page, 3);
  await page.evaluate(() => window.dispatchEvent(new Event('pagehide')));
  await until(() => collector.received.length === 1, 5000, 'the beacon');
  const r = collector.received[0];
  assert.equal(r.headers['sec-fetch-mode'], 'no-cors', 'a beacon, not a fetch');
  assert.match(r.headers['content-type'], /^text\/plain/);
  assert.equal(r.body.events.length, 3);
});

test('visibilitychange to hidden sends the queue with sendBeacon', async () => {
  const page = await tracked({ flushIntervalMs: 60_000 });
  await track(page, 2);
  await page.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
    document.dispatchEvent(new Event('visibilitychange'));
  });
  await until(() => collector.received.length === 1, 5000, 'the beacon');
  assert.equal(collector.received[0].headers['sec-fetch-mode'], 'no-cors');
  assert.equal(collector.received[0].body.events.length, 2);
});

test('with the collector down, events survive a reload and arrive later exactly once', async () => {
  collector.state.fallback = 'down';
  const ctx = await context();
  const page = await tracked({ flushIntervalMs: 60_000 }, ctx);
  await track(page, 5);
  await page.evaluate(() => window.t.flush());
  const tracked5 = await page.evaluate(() => window.t.stats.queued);
  assert.equal(tracked5, 5);
  await page.reload(); // pagehide: beacons fail too, the queue is saved as closed
  await page.waitForFunction(() => window.ready === true);
  await sleep(200);
  collector.state.fallback = { status: 202 };
  await page.evaluate((endpoint) => window.start({ endpoint, writeKey: 'wk_test', flushIntervalMs: 60_000 }), collector.endpoint);
  await page.evaluate(() => window.t.flush());
  await until(() => events(collector.applied()).length >= 5, 5000, 'the saved events');
  await page.evaluate(() => window.t.flush());
  await sleep(300);
  const applied = events(collector.applied());
  assert.equal(applied.length, 5, 'each event applied once');
  assert.equal(new Set(applied.map((e) => e.id)).size, 5);
  // No event ever travelled under two batch ids: the edge's dedupe is enough.
  const batchOf = new Map();
  for (const r of collector.received) for (const e of r.body?.events ?? []) {
    assert.equal(batchOf.get(e.id) ?? r.body.batchId, r.body.batchId, `event ${e.id} in two batches`);
    batchOf.set(e.id, r.body.batchId);
  }
  assert.equal(await page.evaluate(() => window.t.stats.queued), 0);
});

test('503 is retried with backoff under the same batchId and a new sentAt', async () => {
  collector.script.push({ status: 503 }, { status: 503 });
  const page = await tracked({ flushIntervalMs: 60_000 });
  await track(page, 2);
  await page.evaluate(() => { window.t.flush(); });
  await until(() => collector.received.length === 3, 8000, 'two retries');
  const [a, b, c] = collector.received;
  assert.deepEqual([a.status, b.status, c.status], [503, 503, 202]);
  assert.equal(new Set([a, b, c].map((r) => r.body.batchId)).size, 1);
  assert.notEqual(a.body.sentAt, b.body.sentAt);
  assert.ok(b.at - a.at >= 450, `first wait ${b.at - a.at} ms`);
  assert.ok(c.at - b.at >= 950, `second wait ${c.at - b.at} ms`);
});

test('429 waits for Retry-After, in seconds or as an HTTP date', async () => {
  collector.script.push({ status: 429, headers: { 'retry-after': '2' } });
  const page = await tracked({ flushIntervalMs: 60_000 });
  await track(page, 1);
  await page.evaluate(() => { window.t.flush(); });
  await until(() => collector.received.length === 2, 6000, 'the retry');
  const wait = collector.received[1].at - collector.received[0].at;
  assert.ok(wait >= 1950, `retried after ${wait} ms`);
  assert.equal(collector.received[1].body.batchId, collector.received[0].body.batchId);

  collector.reset();
  const retryAt = new Date(Math.ceil((Date.now() + 4000) / 1000) * 1000); // HTTP dates have whole seconds
  collector.script.push({ status: 503, headers: { 'retry-after': retryAt.toUTCString() } });
  const dated = await tracked({ flushIntervalMs: 60_000 });
  await track(dated, 1);
  await dated.evaluate(() => { window.t.flush(); });
  await until(() => collector.received.length === 2, 8000, 'the dated retry');
  const early = retryAt.getTime() - collector.received[1].at;
  assert.ok(early <= 50, `retried ${early} ms before the date`);
  assert.ok(collector.received[1].at - collector.received[0].at >= 1000, 'the date, not the 0.5-1 s backoff');
});

test('400 is not retried: dropped and counted', async () => {
  collector.script.push({ status: 400 });
  const page = await tracked({ flushIntervalMs: 60_000 });
  await track(page, 3);
  await page.evaluate(() => window.t.flush());
  await sleep(2500);
  assert.equal(collector.received.length, 1);
  assert.deepEqual(await page.evaluate(() => window.t.stats), { queued: 0, evicted: 0, dropped: 3 });
});

const TOKEN = 'user-1.1795345199.ZXhwaXJlZA';

/** A tracker whose onIdentityRejected calls and window events are recorded, with warnings collected. */
async function listening(options = {}, ctx) {
  const page = await openPage(ctx ?? (await context()), collector.origin);
  const warnings = [];
  page.on('console', (m) => { if (m.type() === 'warning') warnings.push(m.text()); });
  await page.evaluate((o) => {
    window.rejected = [];
    window.heard = [];
    addEventListener('freshet:identityrejected', (e) => window.heard.push(e.detail.code));
    return window.start({ ...o, onIdentityRejected: (code) => window.rejected.push(code) });
  }, { endpoint: collector.endpoint, writeKey: 'wk_test', flushIntervalMs: 60_000, leadingEdge: false, ...options });
  return { page, warnings };
}

test('a refused identity token: the batch goes again at once without it, same batchId, exactly once; the site hears of it', async () => {
  // As the edge does: a batch with an expired token is refused whole, one without it (or with a fresh one) is taken.
  // The refusal says Retry-After: 5, so a resend that waited as a retry waits
  // would come 5 s later: "at once" is told apart without a tight timing.
  collector.state.fallback = (batch) => (batch?.identity === TOKEN
    ? { status: 401, error: 'identity_expired', headers: { 'retry-after': '5' } } : { status: 202 });
  const { page, warnings } = await listening();
  await page.evaluate((token) => { window.t.identify('user-1', token); }, TOKEN);
  await track(page, 3);
  await page.evaluate(() => window.t.flush());
  await until(() => collector.applied().length === 1, 5000, 'the batch without the token');
  const [refused, resent] = collector.received;
  assert.deepEqual([refused.status, resent.status], [401, 202]);
  assert.equal(refused.body.identity, TOKEN);
  assert.equal(resent.body.identity, undefined);
  assert.equal(resent.body.batchId, refused.body.batchId, 'the same batch id');
  assert.deepEqual(resent.body.events, refused.body.events, 'the same events, the same ids');
  assert.ok(resent.at - refused.at < 3000, `resent after ${resent.at - refused.at} ms: at once, not after a backoff (5 s)`);
  await until(() => page.evaluate(() => window.rejected.length === 1), 2000, 'the callback');
  assert.deepEqual(await page.evaluate(() => [window.rejected, window.heard]), [['identity_expired'], ['identity_expired']]);
  // Later events go without the token and the user, until identify() is called again.
  await track(page, 2, 'later');
  await page.evaluate(() => window.t.flush());
  await until(() => collector.applied().length === 2, 5000, 'the later batch');
  await sleep(300);
  assert.equal(collector.received.length, 3, 'no other request');
  const later = collector.received[2].body;
  assert.equal(later.identity, undefined);
  assert.ok(later.events.every((e) => e.type === 'later' && e.userId === undefined));
  const applied = events(collector.applied());
  assert.equal(applied.length, 5, 'each event applied once');
  assert.equal(new Set(applied.map((e) => e.id)).size, 5);
  assert.deepEqual(await page.evaluate(() => window.t.stats), { queued: 0, evicted: 0, dropped: 0 });
  const told = warnings.filter((w) => w.includes('identity'));
  assert.equal(told.length, 1, `one warning: ${warnings}`);
  assert.match(told[0], /^freshet: identity token refused \(identity_expired\)/);
  // A new token is sent again.
  await page.evaluate(() => { window.t.identify('user-1', 'user-1.1895345199.ZnJlc2g'); window.t.track('fresh'); return window.t.flush(); });
  await until(() => collector.applied().length === 3, 5000, 'the fresh token');
  assert.equal(collector.received.length, 4);
  assert.equal(collector.received[3].body.identity, 'user-1.1895345199.ZnJlc2g');
});

test('a refused identity is taken off the stored batch too, so a reload does not resend it', async () => {
  collector.script.push({ status: 401, error: 'identity_bad_signature' });
  collector.state.fallback = 'down';
  const ctx = await context();
  const { page } = await listening({}, ctx);
  await page.evaluate((token) => { window.t.identify('user-1', token); }, TOKEN);
  await track(page, 3);
  await page.evaluate(() => { window.t.flush(); });
  await until(() => page.evaluate(() => window.rejected.length === 1), 5000, 'the refusal');
  const stored = () => page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('freshet:q:')).map((k) => localStorage.getItem(k)).join('\n'));
  const saved = await until(async () => { const s = await stored(); return s.includes(collector.received[0].body.batchId) && s; }, 3000, 'the stored batch');
  assert.ok(!saved.includes(TOKEN), `the stored queue still holds the token:\n${saved}`);
  await page.reload(); // the saved queue is adopted by the next page
  await page.waitForFunction(() => window.ready === true);
  collector.state.fallback = (batch) => (batch?.identity ? { status: 401, error: 'identity_bad_signature' } : { status: 202 });
  await page.evaluate((endpoint) => window.start({ endpoint, writeKey: 'wk_test', flushIntervalMs: 60_000 }), collector.endpoint);
  await until(() => collector.applied().length === 1, 5000, 'the adopted batch');
  await sleep(300);
  assert.ok(collector.received.slice(1).every((r) => r.body.identity === undefined && r.status === 202), 'never the token again');
  const [batch] = collector.applied();
  assert.equal(batch.batchId, collector.received[0].body.batchId);
  assert.deepEqual(batch.events.map((e) => e.id), collector.received[0].body.events.map((e) => e.id));
});

test('401 for the write key is not retried: dropped and counted, and no identity callback', async () => {
  collector.script.push({ status: 401, error: 'unknown_write_key' });
  const { page } = await listening();
  await page.evaluate((token) => { window.t.identify('user-1', token); }, TOKEN);
  await track(page, 2);
  await page.evaluate(() => window.t.flush());
  await sleep(1500);
  assert.equal(collector.received.length, 1);
  assert.deepEqual(await page.evaluate(() => window.t.stats), { queued: 0, evicted: 0, dropped: 2 });
  assert.deepEqual(await page.evaluate(() => [window.rejected, window.heard]), [[], []]);
});

test('over maxQueue the oldest events are evicted and counted', async () => {
  collector.state.fallback = 'down';
  const page = await tracked({ flushIntervalMs: 60_000, maxQueue: 5, batchSize: 2 });
  await track(page, 9);
  const stats = await page.evaluate(() => window.t.stats);
  assert.equal(stats.queued + stats.evicted, 9);
  assert.ok(stats.queued <= 6 && stats.evicted >= 3, JSON.stringify(stats));
});

test('the client id is stable across reloads and tabs, and new in a new browser profile', async () => {
  const ctx = await context();
  const first = await tracked({}, ctx);
  const id = await first.evaluate(() => window.t.clientId);
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  await first.reload();
  await first.waitForFunction(() => window.ready === true);
  const reloaded = await first.evaluate((endpoint) => window.start({ endpoint, writeKey: 'wk' }), collector.endpoint);
  const tab = await tracked({}, ctx);
  assert.equal(reloaded, id);
  assert.equal(await tab.evaluate(() => window.t.clientId), id);
  const cookie = (await ctx.cookies()).find((c) => c.name === 'freshet_cid');
  assert.equal(cookie?.value, id, 'first-party cookie fallback');
  const other = await tracked({}, await context());
  assert.notEqual(await other.evaluate(() => window.t.clientId), id);
});

test('the session rotates after sessionTimeoutMin idle (page clock)', async () => {
  const page = await (await context()).newPage();
  await page.clock.install({ time: new Date('2026-11-22T10:00:00Z') });
  await page.goto(`${collector.origin}/page`);
  await page.waitForFunction(() => window.ready === true);
  await page.evaluate((endpoint) => window.start({ endpoint, writeKey: 'wk', sessionTimeoutMin: 30, flushIntervalMs: 60_000 }), collector.endpoint);
  const session = () => page.evaluate(() => { window.t.track('tick'); return window.t.sessionId; });
  const s1 = await session();
  await page.clock.fastForward('29:00');
  assert.equal(await session(), s1, 'active within the timeout');
  await page.clock.fastForward('29:00');
  assert.equal(await session(), s1, 'idle counts from the last event');
  await page.clock.fastForward('31:00');
  const s2 = await session();
  assert.notEqual(s2, s1, 'rotated after 31 idle minutes');
});

test('gzip bodies start with the magic bytes and decode to the batch', async () => {
  const page = await tracked({ flushIntervalMs: 60_000, batchSize: 10 });
  await track(page, 10, 'product_view', { text: 'compress me '.repeat(20) });
  await until(() => collector.received.length === 1, 5000, 'the batch');
  const r = collector.received[0];
  assert.equal(r.gzip, true);
  assert.ok(r.raw.length < 1500, `${r.raw.length} bytes on the wire`);
  assert.equal(r.body.events.length, 10);
  assert.equal(r.body.writeKey, 'wk_test');

  collector.reset();
  const plain = await tracked({ flushIntervalMs: 60_000, batchSize: 10, gzip: false });
  await track(plain, 10, 'product_view', { text: 'compress me '.repeat(20) });
  await until(() => collector.received.length === 1, 5000, 'the plain batch');
  assert.equal(collector.received[0].gzip, false);
});

test('identify puts the token in the batch and the userId on events; reset forgets both', async () => {
  const page = await tracked({ flushIntervalMs: 60_000 });
  await page.evaluate(() => {
    window.t.track('anon');
    window.t.identify('user-1', 'user-1.1795345199.c2lnbmF0dXJl');
    window.t.track('known', { productId: 'p1' });
  });
  const before = await page.evaluate(() => window.t.clientId);
  await page.evaluate(() => { window.t.reset(); window.t.track('after'); return window.t.flush(); });
  await until(() => collector.applied().length === 3, 5000, 'three batches');
  const byType = Object.fromEntries(collector.applied().map((b) => [b.events[0].type, b]));
  assert.equal(byType.anon.identity, undefined);
  assert.equal(byType.known.identity, 'user-1.1795345199.c2lnbmF0dXJl');
  assert.equal(byType.known.events[0].userId, 'user-1');
  assert.deepEqual(byType.known.events[0].payload, { productId: 'p1' });
  assert.equal(byType.after.identity, undefined);
  assert.notEqual(byType.after.events[0].clientId, before);
});

test('page() sends a page_view with the location, and optOut stops everything', async () => {
  const page = await tracked({ flushIntervalMs: 60_000 });
  await page.evaluate(() => { window.t.page({ category: 'shoes' }); return window.t.flush(); });
  await until(() => collector.received.length === 1, 5000, 'the page view');
  const e = collector.received[0].body.events[0];
  assert.equal(e.type, 'page_view');
  assert.equal(e.payload.path, '/page');
  assert.equal(e.payload.title, 'freshet test');
  assert.equal(e.payload.category, 'shoes');
  collector.reset();
  await page.evaluate(() => { window.t.optOut(); window.t.track('x'); return window.t.flush(); });
  await sleep(300);
  assert.equal(collector.received.length, 0);
  assert.equal(await page.evaluate(() => localStorage.getItem('freshet:optout')), '1');
});

test('two tabs with the collector down: every event arrives once, under one batch id', async () => {
  collector.state.fallback = 'down';
  const ctx = await context();
  const a = await tracked({ flushIntervalMs: 60_000 }, ctx);
  const b = await tracked({ flushIntervalMs: 60_000 }, ctx);
  await track(a, 3, 'tab_a');
  await track(b, 4, 'tab_b');
  await Promise.all([a.evaluate(() => window.t.flush()), b.evaluate(() => window.t.flush())]);
  await a.close({ runBeforeUnload: true }); // pagehide: tab A's queue is left to the next tab
  await sleep(200);
  collector.state.fallback = { status: 202 };
  const c = await tracked({ flushIntervalMs: 60_000 }, ctx); // adopts A's queue, not live B's
  await c.evaluate(() => window.t.flush());
  await until(() => events(collector.applied()).length >= 7, 10_000, 'all seven events');
  await sleep(500);
  const applied = events(collector.applied());
  assert.deepEqual(applied.map((e) => e.type).sort(), ['tab_a', 'tab_a', 'tab_a', 'tab_b', 'tab_b', 'tab_b', 'tab_b']);
  assert.equal(new Set(applied.map((e) => e.id)).size, 7);
  const batchOf = new Map();
  for (const r of collector.received) for (const e of r.body?.events ?? []) {
    assert.equal(batchOf.get(e.id) ?? r.body.batchId, r.body.batchId, `event ${e.id} in two batches`);
    batchOf.set(e.id, r.body.batchId);
  }
});

test('with localStorage blocked the cookie keeps the client id and events still go', async () => {
  const ctx = await context();
  await ctx.addInitScript(() => {
    Object.defineProperty(window, 'localStorage', { get() { throw new DOMException('blocked', 'SecurityError'); } });
  });
  const page = await tracked({ flushIntervalMs: 60_000 }, ctx);
  const id = await page.evaluate(() => window.t.clientId);
  await track(page, 2);
  await page.evaluate(() => window.t.flush());
  await until(() => collector.applied().length === 1, 5000, 'the batch');
  assert.equal(collector.applied()[0].events[0].clientId, id);
  await page.reload();
  await page.waitForFunction(() => window.ready === true);
  const again = await page.evaluate((endpoint) => window.start({ endpoint, writeKey: 'wk' }), collector.endpoint);
  assert.equal(again, id, 'the same client id, from the freshet_cid cookie');
});

test('freshet/vue: calls before the wasm has loaded are kept and replayed', async () => {
  const page = await openPage(await context(), collector.origin);
  const result = await page.evaluate(async (endpoint) => {
    const { freshet, useEventTracker } = await import('/npm/src/vue.js');
    const app = { config: { globalProperties: {} } }; // what app.use() hands a plugin
    const t = useEventTracker();
    t.trackEvent('early', { n: 1 }); // before the plugin: kept
    freshet.install(app, { endpoint, writeKey: 'wk_vue', flushIntervalMs: 60_000 });
    t.trackEvent('product_click', { productId: 'p1' });
    await t.flush();
    return app.config.globalProperties.$freshet === t;
  }, collector.endpoint);
  assert.equal(result, true);
  await until(() => events(collector.applied()).length === 2, 5000, 'both events');
  assert.deepEqual(events(collector.applied()).map((e) => e.type), ['early', 'product_click']);
});
