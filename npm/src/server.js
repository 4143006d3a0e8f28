// Identity tokens, issued by the site's own server for a signed-in user:
// `<userId>.<expiry>.<base64url(HMAC-SHA256(secret, "<userId>.<expiry>"))>`.
// The edge holds the same secret (FRESHET_IDENTITY_SECRET) and honours an
// event's userId only with a valid token, so no visitor can write into
// another user's features. During a rotation (README, "Rotating a secret")
// pass the secrets as a list, the new one first: tokens are signed with the
// first, and a token signed with any of them verifies.
import { createHmac, timingSafeEqual } from 'node:crypto';

const USER_ID = /^[A-Za-z0-9_-]{1,64}$/;

function sign(secret, message) {
  return createHmac('sha256', secret).update(message).digest('base64url');
}

// One secret (a string or bytes) or a non-empty list of them, as a list.
function secretList(secret) {
  const list = Array.isArray(secret) ? secret : [secret];
  const ok = (s) => (typeof s === 'string' || s instanceof Uint8Array) && s.length > 0;
  if (list.length === 0 || !list.every(ok)) {
    throw new TypeError('freshet: the identity secret must be a non-empty string or bytes, or a list of them');
  }
  return list;
}

/**
 * A token for `userId`, valid for `ttlSeconds` (default one hour), signed
 * with `secret`, or with the first of a list of secrets.
 */
export function issueIdentityToken(userId, secret, { ttlSeconds = 3600, now = Date.now() } = {}) {
  if (typeof userId !== 'string' || !USER_ID.test(userId)) {
    throw new TypeError('freshet: userId must be 1 to 64 characters of A-Z, a-z, 0-9, _ or -');
  }
  const [signing] = secretList(secret);
  if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0) {
    throw new TypeError('freshet: ttlSeconds must be a positive integer');
  }
  const message = `${userId}.${Math.floor(now / 1000) + ttlSeconds}`;
  return `${message}.${sign(signing, message)}`;
}

/**
 * The userId of a valid, unexpired token, else null: the edge's rule
 * (core/src/identity.rs), checked against its vectors in
 * tests/fixtures/identity-tokens.json. Split from the right, so a userId may
 * hold dots; the expiry is a 64-bit integer; a token is valid through its
 * expiry second. `secret` may be a list: a token signed with any of them
 * verifies (every one is checked, so the time taken tells nothing of which).
 */
export function verifyIdentityToken(token, secret, { now = Date.now() } = {}) {
  const secrets = secretList(secret);
  const parts = typeof token === 'string' ? /^(.+)\.([+-]?\d+)\.([^.]*)$/s.exec(token) : null;
  if (!parts || BigInt.asIntN(64, BigInt(parts[2])) !== BigInt(parts[2])) return null;
  const given = Buffer.from(parts[3]);
  let signed = false;
  for (const s of secrets) {
    const expected = Buffer.from(sign(s, `${parts[1]}.${parts[2]}`));
    signed = (given.length === expected.length && timingSafeEqual(given, expected)) || signed;
  }
  if (!signed) return null;
  return Number(parts[2]) >= Math.floor(now / 1000) ? parts[1] : null;
}
