// Seed 2's media spec in the worker under `wrangler dev`, on its default
// store (the Durable Object): watch events in, every new aggregation served
// back, a vector of the wrong length named in the answer. The repository's
// worker build, given the media spec in FRESHET_SPEC (so no second build);
// scripts/test-media.sh runs this.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startWorker, stopWorker } from './wrangler.mjs';

const READ_TOKEN = 'rt-' + randomBytes(8).toString('hex');
const SPEC = fs.readFileSync(path.resolve(import.meta.dirname, '../../examples/media/features.toml'), 'utf8');
const HOUR = 3600e3;
const DAY = 24 * HOUR;

function watch(i, at, item, minutes, embedding) {
  return {
    id: `w${i}`, type: 'watch', timestamp: new Date(at).toISOString(), clientId: 'cid-media',
    payload: { itemId: item, genre: item === 'v-1' ? 'drama' : 'comedy', watchDurationMin: minutes, progress: 0.5,
      genreEmbedding: embedding },
  };
}

async function read(w, entity, id) {
  const res = await fetch(`${w.base}/v1/features/${entity}/${id}`, { headers: { authorization: `Bearer ${READ_TOKEN}` } });
  assert.equal(res.status, 200);
  return { at: Date.now(), features: (await res.json()).features };
}

test('media features on the Durable Object', async () => {
  const w = await startWorker({ FRESHET_WRITE_KEYS: 'dev=*', FRESHET_READ_TOKEN: READ_TOKEN, FRESHET_SPEC: SPEC });
  try {
    const now = Date.now();
    const ones = Array(32).fill(1);
    const zeros = Array(32).fill(0);
    const times = [now - HOUR, now - 26 * HOUR, now - 50 * HOUR, now - 51 * HOUR];
    const events = [
      watch(0, times[0], 'v-1', 30, ones),
      watch(1, times[1], 'v-1', 60, zeros),
      watch(2, times[2], 'v-2', 90, ones),
      watch(3, times[3], 'v-2', 15, Array(31).fill(1)),
    ];
    // Two batches, the second sent twice: each event counts once.
    for (const [id, part] of [['m1', events.slice(0, 2)], ['m2', events.slice(2)], ['m2', events.slice(2)]]) {
      const res = await fetch(`${w.base}/v1/ingest`, {
        method: 'POST', headers: { 'content-type': 'application/json', 'x-freshet-key': 'dev' },
        body: JSON.stringify({ batchId: id, events: part }),
      });
      assert.equal(res.status, 202);
      const body = await res.json();
      if (id === 'm2') {
        assert.deepEqual(body.skipped, [{ index: 1, feature: 'user_genre_preferences@2',
          reason: 'payload.genreEmbedding has 31 numbers, the feature wants 32' }]);
      }
    }
    const user = (await read(w, 'user', 'cid-media')).features;
    assert.equal(user.user_watch_count_7d.value, 4);
    assert.equal(user.user_avg_watch_duration_min.value, (30 + 60 + 90 + 15) / 4);
    // (30 * 1 + 60 * 0 + 90 * 1) / 180 per element; the short vector is not in it.
    assert.ok(Math.abs(user.user_genre_preferences.value[0] - 120 / 180) < 1e-12);
    const hours = times.map((t) => new Date(t).getUTCHours());
    const counts = new Map();
    hours.forEach((h) => counts.set(h, (counts.get(h) ?? 0) + 1));
    const best = [...counts].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0][0];
    assert.equal(user.user_preferred_hour.value, best);

    const item = await read(w, 'item', 'v-1');
    assert.equal(item.features.item_genre.value, 'drama');
    const raw = [times[0], times[1]].reduce((s, t) => s + Math.exp(-0.1 * (item.at - t) / DAY), 0);
    // The read time is the worker's clock, a few milliseconds from ours.
    assert.ok(Math.abs(item.features.item_popularity_score.value - raw / 1000) < 1e-6 * raw / 1000,
      `${item.features.item_popularity_score.value} vs ${raw / 1000}`);
  } finally {
    await stopWorker(w);
  }
});
