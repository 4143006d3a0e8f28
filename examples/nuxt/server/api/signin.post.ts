// POST /api/signin {name}: a pretend sign-in (no password). Issues an identity
// token with freshet/server, signed with the secret the edge shares, and keeps
// it in a cookie the page hands to the tracker. A real shop does this after
// checking a password; nothing else changes.
import { issueIdentityToken } from 'freshet/server';

export default defineEventHandler(async (event) => {
  const { identitySecret } = useRuntimeConfig(event).shop;
  if (!identitySecret) throw createError({ statusCode: 503, statusMessage: 'NUXT_SHOP_IDENTITY_SECRET is not set' });
  const body = await readBody<{ name?: unknown }>(event);
  const slug = String(body?.name ?? '').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40);
  if (!slug) throw createError({ statusCode: 400, statusMessage: 'a name, please' });
  const userId = `user-${slug}`;
  const token = issueIdentityToken(userId, identitySecret, { ttlSeconds: 3600 });
  setCookie(event, 'shop_identity', token, { path: '/', sameSite: 'lax', maxAge: 3600 });
  return { userId, token };
});
