// Compiled with `tsc --noEmit` by types.test.mjs: the package's .d.ts files
// describe the API a user writes against, and refuse misuse.
import { createTracker, load, startTracker, type IdentityRejectedCode, type Tracker, type TrackerOptions } from '../../../npm/src/index.js';
import { freshet, startTracker as startVue, useEventTracker, type EventTracker } from '../../../npm/src/vue.js';
import { issueIdentityToken, verifyIdentityToken } from '../../../npm/src/server.js';

const options: TrackerOptions = { endpoint: '/api/ingest', writeKey: 'wk', batchSize: 20, gzip: true };

export async function plain(): Promise<string> {
  await load();
  const t: Tracker = startTracker(options);
  const u: Tracker = await createTracker(options, '/freshet_sdk_bg.wasm');
  u.track('product_click', { productId: 'p1' });
  u.page();
  u.identify('user-1', 'token');
  await u.flush();
  const { queued, evicted, dropped } = t.stats;
  return `${t.clientId} ${t.sessionId} ${queued + evicted + dropped}`;
}

export function identityRejected(refresh: (code: IdentityRejectedCode) => void): TrackerOptions {
  addEventListener('freshet:identityrejected', (e) => refresh(e.detail.code));
  return { ...options, onIdentityRejected: (code) => { if (code === 'identity_expired') refresh(code); } };
}

export async function vue(): Promise<void> {
  const e: EventTracker = useEventTracker();
  e.trackEvent('search', { query: 'boots' });
  await e.flush();
  freshet.install({}, options);
  await startVue(options, () => Promise.resolve('/x.wasm'));
}

export function server(): string | null {
  return verifyIdentityToken(issueIdentityToken('user-1', 'secret', { ttlSeconds: 60 }), 'secret');
}

// @ts-expect-error: writeKey is required
export const missing: TrackerOptions = { endpoint: '/x' };
// @ts-expect-error: batchSize is a number
export const wrong: TrackerOptions = { endpoint: '/x', writeKey: 'k', batchSize: '20' };
// @ts-expect-error: onIdentityRejected is a function of the code
export const notAFunction: TrackerOptions = { endpoint: '/x', writeKey: 'k', onIdentityRejected: 'refresh' };
