// The return two days later, against a real store (issue: exactly once for
// every retry the edge accepts). A visit ends with a beacon: the edge
// applies it, and the tracker never reads the answer, so it keeps the batch
// and sends it again when the visitor comes back. The edge's clock is moved
// two days on by restarting it with FRESHET_CLOCK_OFFSET_MS (the store and
// its markers stay), the same batch is resent with the tracker's clock two
// days on too, and it must count once, while a new batch of that day counts,
// and the event log holds the beacon once. Used by worker.test.mjs (Durable
// Object, Redis) and mongo.test.mjs (MongoDB).
import assert from 'node:assert/strict';
import { startWorker, stopWorker } from './wrangler.mjs';

const DAY = 86_400_000;
const iso = (ms) => new Date(ms).toISOString();

async function post(w, batch) {
  const res = await fetch(`${w.base}/v1/ingest`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-freshet-key': 'dev' },
    body: JSON.stringify(batch),
  });
  return { status: res.status, json: await res.json().catch(() => null) };
}

async function pageviews(w, client, readToken) {
  const res = await fetch(`${w.base}/v1/features/user/${client}?names=pageviews`,
    { headers: { authorization: `Bearer ${readToken}` } });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()).features.pageviews.value;
}

/** Beacon, restart two days on, resend: counted once. `vars` and `options`
 * are startWorker's; the persist directory (and the store) carry over. */
export async function resendTwoDaysLater(vars, options, readToken) {
  const now = Date.now();
  const client = `cid-returns-${now}`;
  const views = (t, tag) => [1, 2, 3].map((i) => ({ id: `ev-${tag}-${i}`, type: 'page_view',
    timestamp: iso(t - (4 - i) * 1000), clientId: client, payload: { path: `/p/${i}` } }));
  const beacon = { batchId: `b-last-of-visit-${now}`, sentAt: iso(now), events: views(now, 'visit') };

  let w = await startWorker(vars, options);
  try {
    // The beacon lands; the page is gone before its answer is read.
    assert.equal((await post(w, beacon)).status, 202);
    assert.equal(await pageviews(w, client, readToken), 3);
  } finally {
    await stopWorker(w);
  }

  w = await startWorker({ ...vars, FRESHET_CLOCK_OFFSET_MS: String(2 * DAY) }, options);
  try {
    const health = await (await fetch(`${w.base}/health`)).json();
    assert.equal(health.clockOffsetMs, 2 * DAY, 'the moved clock shows');
    // The return visit's first batch lands before the kept one (a write to
    // the entity: a store that dropped day-old markers has dropped it now).
    const later = { batchId: `b-return-${now}`, sentAt: iso(now + 2 * DAY), events: views(now + 2 * DAY, 'return') };
    assert.equal((await post(w, later)).status, 202);
    assert.equal(await pageviews(w, client, readToken), 6);
    // Then the tracker sends what it kept, sentAt from its own clock.
    const again = await post(w, { ...beacon, sentAt: iso(now + 2 * DAY) });
    assert.equal(again.status, 202, JSON.stringify(again.json));
    assert.equal(again.json.accepted, 3, 'two-day-old events are still taken');
    assert.equal(await pageviews(w, client, readToken), 6, 'the resent beacon counted once');
    // The log holds the beacon once: its hour's object was already there.
    const res = await fetch(`${w.base}/v1/events?from=${encodeURIComponent(iso(now - 3_600_000))}`,
      { headers: { authorization: `Bearer ${readToken}` } });
    assert.equal(res.status, 200, await res.clone().text());
    const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l));
    const mine = (id) => lines.filter((l) => l.batchId === id).length;
    assert.equal(mine(beacon.batchId), 3, 'logged once');
    assert.equal(mine(later.batchId), 3);
  } finally {
    await stopWorker(w);
  }
}
