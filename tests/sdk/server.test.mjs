// freshet/server: identity tokens as the edge checks them, and the package's
// modules importing cleanly on a server (no window, no document).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
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

// Made by core (core/src/identity.rs), the rule the edge applies.
const { vectors } = JSON.parse(readFileSync(new URL('../fixtures/identity-tokens.json', import.meta.url)));

test("verification gives core's verdict on every shared token vector, through the last millisecond of a second", () => {
  assert.ok(vectors.length >= 10);
  for (const { case: name, secret, token, now, verdict } of vectors) {
    const want = verdict.userId ?? null;
    assert.equal(verifyIdentityToken(token, secret, { now: now * 1000 }), want, name);
    assert.equal(verifyIdentityToken(token, secret, { now: now * 1000 + 999 }), want, `${name}, 999 ms on`);
  }
});

test("issuing gives core's token for every claim freshet/server issues, and refuses the rest", () => {
  const issuable = (userId) => /^[A-Za-z0-9_-]{1,64}$/.test(userId);
  const issued = vectors.filter((v) => v.claims);
  assert.ok(issued.some((v) => issuable(v.claims.userId)) && issued.some((v) => !issuable(v.claims.userId)));
  for (const { case: name, secret, claims: { userId, expiry }, token } of issued) {
    const issue = () => issueIdentityToken(userId, secret, { ttlSeconds: 1, now: (expiry - 1) * 1000 });
    if (issuable(userId)) assert.equal(issue(), token, name);
    else assert.throws(issue, TypeError, name);
  }
});

test('during a rotation, tokens are signed with the first secret and either verifies', () => {
  const [fresh, old] = ['new-secret-2026-12', 'old-secret-2026-06'];
  const token = issueIdentityToken('user-1', [fresh, old], { ttlSeconds: 600, now: NOW });
  assert.equal(token, issueIdentityToken('user-1', fresh, { ttlSeconds: 600, now: NOW }));
  const signedWithOld = issueIdentityToken('user-1', old, { ttlSeconds: 600, now: NOW });
  assert.equal(verifyIdentityToken(token, [fresh, old], { now: NOW }), 'user-1');
  assert.equal(verifyIdentityToken(signedWithOld, [fresh, old], { now: NOW }), 'user-1');
  // The old secret removed: what it signed no longer verifies.
  assert.equal(verifyIdentityToken(signedWithOld, [fresh], { now: NOW }), null);
  assert.throws(() => issueIdentityToken('u', []), TypeError);
  assert.throws(() => issueIdentityToken('u', [fresh, '']), TypeError);
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
