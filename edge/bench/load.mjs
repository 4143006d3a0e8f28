// One load run with autocannon: POST /v1/ingest with a fresh 15-event batch
// per request (new batchId and event ids, current times), or GET a path.
// Prints one JSON line: {label, rps, p50, p99, errors, non2xx, requests}.
// `old` posts one fixed batch whose events are all too old (full validation,
// nothing stored); `dup` posts one fixed batch again and again (everything but
// the store's writes). `rank` posts one ranking read to /v1/features/batch:
// cid-bench-1, prod-0..prod-99 and each (user, product) pair.
// Usage: node load.mjs <label> <url> <connections> <seconds> [ingest|get|old|dup|rank] [header:value ...]
import autocannon from 'autocannon';

const [label, url, connections, seconds, mode = 'ingest', ...headerArgs] = process.argv.slice(2);
const headers = { 'content-type': 'application/json', 'x-freshet-key': 'dev' };
for (const h of headerArgs) { const i = h.indexOf(':'); headers[h.slice(0, i)] = h.slice(i + 1); }

let n = 0;
const TYPES = ['page_view', 'product_click', 'product_click', 'viewed_category', 'search'];
/** A batch sent now; `age` moves its events back in time (not its sentAt). */
function batch(age = 0) {
  n += 1;
  const now = Date.now();
  const user = `cid-bench-${n % 100}`;
  const events = Array.from({ length: 15 }, (_, i) => ({
    id: `e-${process.pid}-${n}-${i}`, type: TYPES[i % TYPES.length],
    timestamp: new Date(now - age - (15 - i) * 100).toISOString(), clientId: user, sessionId: `s-${n % 100}`,
    payload: { productId: `prod-${(n + i) % 50}`, component: 'ProductCard', category: `cat-${i % 7}` },
  }));
  return JSON.stringify({ batchId: `b-${process.pid}-${n}`, sentAt: new Date(now).toISOString(), events });
}

const opts = { url, connections: Number(connections), duration: Number(seconds), pipelining: 1, headers };
if (mode === 'ingest') {
  opts.method = 'POST';
  opts.requests = [{ setupRequest: (req) => ({ ...req, body: batch() }) }];
} else if (mode === 'rank') {
  opts.method = 'POST';
  opts.body = JSON.stringify({
    userId: 'cid-bench-1', itemIds: Array.from({ length: 100 }, (_, i) => `prod-${i}`),
    userFeatures: ['pageviews', 'clicks_product_card'], itemFeatures: ['popularity_7d'],
    pairFeatures: ['user_product_clicks', 'user_product_last_seen'],
  });
} else if (mode === 'old' || mode === 'dup') {
  opts.method = 'POST';
  opts.body = batch(mode === 'old' ? 30 * 86_400_000 : 0);
} else {
  opts.method = 'GET';
}
const r = await autocannon(opts);
console.log(JSON.stringify({ label, connections: Number(connections), rps: Math.round(r.requests.average),
  p50: r.latency.p50, p99: r.latency.p99, max: r.latency.max, errors: r.errors, timeouts: r.timeouts, non2xx: r.non2xx,
  requests: r.requests.total }));
