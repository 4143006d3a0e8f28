// useEventTracker(): the tracker as a composable, for Vue 3 and Nuxt.
// On the server every call is a no-op. In the browser, calls made before the
// tracker has started (or its wasm loaded) are kept, up to 1000, and replayed.
const inBrowser = typeof window !== 'undefined';
const EARLY_CALLS_MAX = 1000;
let tracker;
let starting;
const early = [];

/**
 * Starts the page's tracker once (browser only). `wasm` is the wasm's URL, or
 * a function resolving to it (Nuxt passes a lazy `?url` import).
 */
export function startTracker(options, wasm) {
  if (!inBrowser) return Promise.resolve(undefined);
  starting ||= (async () => {
    const { createTracker } = await import('./index.js');
    tracker = await createTracker(options, typeof wasm === 'function' ? await wasm() : wasm);
    for (const [method, args, done] of early.splice(0)) {
      try { done(tracker[method](...args)); } catch (e) { console.error(e); done(); }
    }
    return tracker;
  })().catch((e) => {
    console.error('freshet: the tracker did not start:', e);
    for (const [, , done] of early.splice(0)) done();
  });
  return starting;
}

function call(method, args) {
  if (tracker) return tracker[method](...args);
  if (!inBrowser) return method === 'flush' ? Promise.resolve() : undefined;
  // Kept even before startTracker() (a plugin's identify() may run first).
  if (method === 'flush') return starting ? new Promise((done) => early.push([method, args, done])) : Promise.resolve();
  if (early.length < EARLY_CALLS_MAX) early.push([method, args, () => {}]);
}

const api = Object.freeze({
  /** The seed's name for `track`: `trackEvent('product_click', { productId })`. */
  trackEvent: (type, payload) => call('track', [type, payload]),
  track: (type, payload) => call('track', [type, payload]),
  page: (props) => call('page', [props]),
  identify: (userId, identityToken) => call('identify', [userId, identityToken]),
  flush: () => call('flush', []),
  reset: () => call('reset', []),
  optOut: () => call('optOut', []),
  optIn: () => call('optIn', []),
});

/** `{ trackEvent, track, page, identify, flush, reset, optOut, optIn }`. */
export function useEventTracker() {
  return api;
}

/** Plain Vue 3: `app.use(freshet, { endpoint, writeKey })`. */
export const freshet = {
  install(app, options) {
    startTracker(options);
    app.config.globalProperties.$freshet = api;
  },
};
