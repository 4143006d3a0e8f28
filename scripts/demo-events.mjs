// `make demo`'s check that the edge works before the shop is opened: sends
// one sample visit's events and prints the features computed from them, one
// line; with IDENTITY_SECRET, also a signed-in visit of `u-1` from the same
// browser, which takes the visit before it along (README, "Identity"), and
// whom the demo then offers to erase: `freshet erase --user u-1`.
// Usage: node demo-events.mjs EDGE_URL READ_TOKEN [IDENTITY_SECRET]
import { createHmac } from 'node:crypto';

const [url, token, identitySecret] = process.argv.slice(2);
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

if (identitySecret) {
  // As freshet/server issues it: userId.expiry.base64url(HMAC-SHA256(userId.expiry)).
  const signed = `u-1.${Math.floor(now / 1000) + 600}`;
  const identity = `${signed}.${createHmac('sha256', identitySecret).update(signed).digest('base64url')}`;
  const signedIn = {
    batchId: crypto.randomUUID(), sentAt: new Date().toISOString(), identity,
    events: events.map((e) => ({ ...e, id: crypto.randomUUID(), userId: 'u-1' })),
  };
  const res = await fetch(`${url}/v1/ingest`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-freshet-key': 'dev' }, body: JSON.stringify(signedIn),
  });
  if (res.status !== 202) {
    console.error(`POST /v1/ingest (signed in as u-1) -> ${res.status} ${await res.text()}`);
    process.exit(1);
  }
  // The visit before the sign-in followed the visitor to u-1 (README, "Identity").
  const user = await (await fetch(`${url}/v1/features/user/u-1`, { headers: { authorization: `Bearer ${token}` } })).json();
  const clicks = user.features?.clicks_product_card?.value;
  console.log(`POST /v1/ingest (signed in as u-1, from ${clientId}) -> 202\n` +
    `GET /v1/features/user/u-1 -> clicks_product_card=${clicks} (2 from the visit before the sign-in, 2 signed in)`);
  if (clicks < 4) {
    console.error('the visit before the sign-in did not follow the visitor to u-1');
    process.exit(1);
  }
}
