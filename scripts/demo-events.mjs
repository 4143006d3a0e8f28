// Sends one visit's events to a running edge and prints the visitor's
// features as the model would read them. Usage: node demo-events.mjs URL TOKEN
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
  event('product_click', 20, { productId: 'prod-2', component: 'ProductCard' }),
  event('add_to_cart', 15, { productId: 'prod-2', price: 249 }),
  event('search', 10, { query: 'tripod' }),
];
const batch = { batchId: crypto.randomUUID(), sentAt: new Date().toISOString(), events };
const post = await fetch(`${url}/v1/ingest`, {
  method: 'POST', headers: { 'content-type': 'application/json', 'x-freshet-key': 'dev' }, body: JSON.stringify(batch),
});
console.log(`POST /v1/ingest -> ${post.status} ${await post.text()}`);
const get = await fetch(`${url}/v1/features/user/${clientId}`, { headers: { authorization: `Bearer ${token}` } });
console.log(`GET /v1/features/user/${clientId} -> ${get.status}`);
console.log(JSON.stringify(await get.json(), null, 2));
if (post.status !== 202 || get.status !== 200) process.exit(1);
