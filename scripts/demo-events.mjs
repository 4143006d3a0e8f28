// `make demo`'s check that the edge works before the shop is opened: sends
// one sample visit's events and prints the features computed from them, one
// line. Usage: node demo-events.mjs EDGE_URL READ_TOKEN
const [url, token] = process.argv.slice(2);
const clientId = `cid-demo-${Date.now().toString(36)}`;
const now = Date.now();
const at = (s) => new Date(now - s * 1000).toISOString();
const event = (type, secondsAgo, payload) => ({
  id: crypto.randomUUID(), type, timestamp: at(secondsAgo), clientId, sessionId: 's-demo', payload,
});
const events = [
  event('page_view', 40, { path: '/' }),
  event('viewed_category', 35, { category: 'cameras' }),
  event('product_click', 30, { productId: 'prod-1', component: 'ProductCard' }),
  event('viewed_category', 25, { category: 'lenses' }),
  event('product_click', 20, { productId: 'prod-4', component: 'ProductCard' }),
  event('add_to_cart', 15, { productId: 'prod-4', price: 249 }),
  event('search', 10, { query: 'tripod' }),
];
const batch = { batchId: crypto.randomUUID(), sentAt: new Date().toISOString(), events };
const post = await fetch(`${url}/v1/ingest`, {
  method: 'POST', headers: { 'content-type': 'application/json', 'x-freshet-key': 'dev' }, body: JSON.stringify(batch),
});
const postText = await post.text();
const get = await fetch(`${url}/v1/features/user/${clientId}`, { headers: { authorization: `Bearer ${token}` } });
const body = await get.json().catch(() => null);
if (post.status !== 202 || get.status !== 200) {
  console.error(`POST /v1/ingest -> ${post.status} ${postText}\nGET /v1/features/user/${clientId} -> ${get.status} ${JSON.stringify(body)}`);
  process.exit(1);
}
const shown = Object.entries(body.features).map(([name, f]) => `${name}=${JSON.stringify(f.value)}`).join(' ');
console.log(`POST /v1/ingest -> 202 ${postText}\nGET /v1/features/user/${clientId} -> ${shown}`);
