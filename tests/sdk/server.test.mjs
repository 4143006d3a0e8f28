// freshet/server: identity tokens as the edge checks them, and the package's
// modules importing cleanly on a server (no window, no document).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { issueIdentityToken, verifyIdentityToken } from '../../npm/src/server.js';

const NOW = Date.UTC(2026, 10, 22, 10, 0, 0);

test('a token is userId.expiry.base64url(HMAC-SHA256(secret, "userId.expiry"))', () => {
  const token = issueIdentityToken('user-1', 's3cret', { ttlSeconds: 600, now: NOW });
  const expiry = NOW / 1000 + 600;
  const mac = createHmac('sha256', 's3cret').update(`user-1.${expiry}`).digest();
  const b64url = mac.toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  assert.equal(token, `user-1.${expiry}.${b64url}`);
  assert.doesNotMatch(token, /[+/=]/);
});

test('verification takes a valid token and refuses tampered, foreign or expired ones', () => {
  const token = issueIdentityToken('user-1', 's3cret', { ttlSeconds: 600, now: NOW });
  assert.equal(verifyIdentityToken(token, 's3cret', { now: NOW }), 'user-1');
  assert.equal(verifyIdentityToken(token, 'other', { now: NOW }), null);
  assert.equal(verifyIdentityToken(token.replace('user-1', 'user-2'), 's3cret', { now: NOW }), null);
  assert.equal(verifyIdentityToken(token, 's3cret', { now: NOW + 601_000 }), null);
  assert.equal(verifyIdentityToken('garbage', 's3cret', { now: NOW }), null);
});

test('bad arguments throw TypeErrors', () => {
  assert.throws(() => issueIdentityToken('a b', 's'), TypeError);
  assert.throws(() => issueIdentityToken('x'.repeat(65), 's'), TypeError);
  assert.throws(() => issueIdentityToken('u', ''), TypeError);
  assert.throws(() => issueIdentityToken('u', 's', { ttlSeconds: 0 }), TypeError);
});

test('importing the tracker and the composable on a server touches no browser global', async () => {
  assert.equal(typeof globalThis.window, 'undefined');
  const tracker = await import('../../npm/src/index.js');
  assert.equal(typeof tracker.createTracker, 'function');
  const vue = await import('../../npm/src/vue.js');
  const t = vue.useEventTracker();
  assert.equal(t.trackEvent('product_click', { productId: 'p1' }), undefined, 'a no-op on the server');
  await t.flush();
  assert.equal(await vue.startTracker({ endpoint: '/api/ingest', writeKey: 'wk' }), undefined);
});
