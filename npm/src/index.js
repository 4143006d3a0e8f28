// freshet: the browser tracker. The wasm core (sdk/, Rust) makes every
// decision: ids, batches, what is due, retry or drop, sessions, the storage
// form. This driver only gives it a clock, storage, one timer, the network
// and the page's lifecycle. It touches no browser global at import time, so
// importing it on a server is safe. Written as closures, not a class with
// #private fields, because a minifier can shorten closure variables.
import { initSync, Core } from '../pkg/freshet_sdk.js';

const CLIENT = 'freshet:cid';
const SESSION = 'freshet:sid';
const OPT_OUT = 'freshet:optout';
// Each tab saves its queue under its own slot; the next tab to start adopts
// the slots of tabs that closed (heartbeat 0) or died (no write for 15 min).
const SLOT = 'freshet:q:';
const ADOPT_AFTER_MS = 15 * 60e3;
// A burst of track() calls costs one write to storage.
const SAVE_DELAY_MS = 250;
// Dispatched on window when the edge refuses the identity token, for sites
// (Nuxt) whose options cannot hold a function; `detail.code` is the reason.
const IDENTITY_REJECTED = 'freshet:identityrejected';
// Below this a body is sent as it is: gzip would not pay for itself.
const GZIP_MIN_BYTES = 1024;
const POST = (body, keepalive) => ({ method: 'POST', body, keepalive, headers: { 'content-type': 'text/plain' } }); // CORS-simple: no preflight

// localStorage throws in some privacy modes: then the cookie keeps the client id.
const store = () => { try { return localStorage; } catch { return null; } };
const get = (key) => { try { return store()?.getItem(key) ?? null; } catch { return null; } };
const put = (key, value) => {
  try { value == null ? store()?.removeItem(key) : store()?.setItem(key, value); } catch { /* full or blocked */ }
};

let loading;
/** Loads the wasm once: `wasm` is its URL, bytes or module; default: the file beside this package. */
export const load = (wasm) => (loading ||= (async () => {
  // Not compileStreaming: it refuses a .wasm served without application/wasm,
  // and streaming buys nothing for 34 KB.
  if (!(wasm instanceof WebAssembly.Module)) {
    const res = await fetch(wasm ?? new URL('../pkg/freshet_sdk_bg.wasm', import.meta.url));
    wasm = await WebAssembly.compile(await res.arrayBuffer());
  }
  initSync({ module: wasm });
})());

/** Loads the wasm, then starts a tracker. Rejects with a TypeError for bad options. */
export async function createTracker(options, wasm) {
  await load(wasm);
  return startTracker(options);
}

/** Starts a tracker once `load()` has resolved. Throws a TypeError for bad options. */
export function startTracker(options) {
  if (options == null || typeof options !== 'object') throw new TypeError('freshet: options must be an object');
  // The one option the core does not see: a function of the page.
  const { onIdentityRejected, ...coreOptions } = options;
  if (onIdentityRejected != null && typeof onIdentityRejected !== 'function') {
    throw new TypeError("freshet: option 'onIdentityRejected' must be a function");
  }
  const now0 = Date.now();
  let cookie;
  try { cookie = document.cookie.match(/(?:^|; )freshet_cid=([\w-]+)/); } catch { /* sandboxed frame */ }
  // One `key\ttypeof\tvalue` a line: the core checks names, types and ranges.
  const lines = Object.keys(coreOptions).map((key) => `${key}\t${typeof coreOptions[key]}\t${coreOptions[key]}`).join('\n');
  const core = new Core(lines, now0, get(CLIENT) ?? cookie?.[1], get(SESSION), get(OPT_OUT) === '1');
  const slot = SLOT + Math.random().toString(36).slice(2, 10);
  let timer;
  let wakeAt = Infinity;
  let dirty = true;
  let busy = false;
  let warned = 0;
  // After pagehide, every save marks the slot closed (heartbeat 0) so the
  // next page adopts it at once, even if a request settles during unload.
  let closed = false;
  const waiters = [];
  // [clientId, sessionId, endpoint, savedSession, gzip, persists, queued, evicted, dropped]
  const info = () => core.info().split('\n');

  // Only a TypeError (the page's misuse) may reach the page; a fault of the
  // tracker itself is logged once and swallowed.
  const guard = (f) => (...args) => {
    try { return f(...args); } catch (e) {
      if (e instanceof TypeError && String(e.message).startsWith('freshet:')) throw e;
      warnOnce(4, 'internal error: ' + e);
    }
  };
  const warnOnce = (bit, message) => { if (!(warned & bit)) { warned |= bit; console.warn('freshet: ' + message); } };

  const saveClient = () => {
    const id = info()[0];
    put(CLIENT, id);
    try { document.cookie = `freshet_cid=${id}; Max-Age=63072000; Path=/; SameSite=Lax`; } catch { /* sandboxed frame */ }
  };

  const save = (heartbeat) => {
    dirty = false;
    const [, , , session, , persists] = info();
    if (persists) {
      put(SESSION, session);
      put(slot, core.save(closed ? 0 : heartbeat) ?? null);
    }
  };

  const schedule = () => {
    const wake = core.nextWake();
    let at = wake < 0 ? Infinity : wake;
    if (dirty) at = Math.min(at, Date.now() + SAVE_DELAY_MS);
    if (at >= wakeAt) return;
    clearTimeout(timer);
    wakeAt = at;
    timer = setTimeout(() => { wakeAt = Infinity; pump(false, true); }, Math.max(0, at - Date.now()));
  };

  const send = async (body) => {
    const [, , url, , gzip] = info();
    let status = 0;
    let retryAfter = -1; // ms; the core decides what to do with it
    let code = ''; // a 401's error code: a refused identity token or write key
    try {
      const data = gzip && body.length >= GZIP_MIN_BYTES && typeof CompressionStream === 'function'
        ? await new Response(new Blob([body]).stream().pipeThrough(new CompressionStream('gzip'))).arrayBuffer()
        : body;
      const res = await fetch(url, POST(data));
      status = res.status;
      const header = res.headers.get('retry-after');
      // Retry-After is delta-seconds or an HTTP date (sdk/src/driver.rs's retry_after_ms).
      if (header) retryAfter = /^\s*\d{1,19}\s*$/.test(header) ? header * 1000 : Math.max(0, Date.parse(header) - Date.now());
      if (status === 401) code = String((await res.json().catch(() => 0)).error);
    } catch { /* offline, DNS, CORS: status 0 is retried */ }
    const settled = core.settle(Date.now(), status, retryAfter, code);
    if (settled === 2) warnOnce(2, `HTTP ${status}: batch refused, events dropped`);
    if (settled === 3) {
      // The batch goes again at once without the token; store it so before a
      // reload could resend the token, and let the site get a fresh one.
      save(Date.now());
      warnOnce(8, `identity token refused (${code}): events go without it until identify() is called again`);
      setTimeout(() => onIdentityRejected?.(code));
      dispatchEvent(new CustomEvent(IDENTITY_REJECTED, { detail: { code } }));
    }
    busy = false;
    dirty = true;
    pump();
  };

  const pump = guard((flush, tick) => {
    const now = Date.now();
    const body = core.nextBody(now, !!flush); // none while a batch is on the wire
    if (body) dirty = true; // its attempt count changed
    // Storage is written from the timer only, at most SAVE_DELAY_MS after a
    // change: a burst of sealed batches must not rewrite the queue each time.
    if (tick && dirty) save(now);
    if (body) {
      busy = true;
      send(body).catch((e) => warnOnce(4, 'internal error: ' + e));
    } else if (!busy) {
      for (const resolve of waiters.splice(0)) resolve();
    }
    schedule();
  });

  // pagehide or hidden: every batch to sendBeacon (text/plain, each under
  // 64 KB by maxBatchBytes), fetch(keepalive) if it refuses. The batches stay
  // saved until an answer confirms them; resends reuse their batch ids.
  const unload = guard((closing) => {
    const now = Date.now();
    const url = info()[2];
    for (const body of core.unload(now).split('\n')) {
      if (!body) continue;
      let queued = false;
      try { queued = navigator.sendBeacon(url, body); } catch { /* refused */ }
      if (!queued) fetch(url, POST(body, true)).catch(() => {});
    }
    closed ||= closing; // Chrome fires visibilitychange after pagehide on unload
    save(now);
    schedule();
  });

  const track = guard((type, payload) => {
    let json;
    try {
      if (typeof type !== 'string' || (payload != null && (typeof payload !== 'object' || Array.isArray(payload)))) throw 0;
      json = payload == null ? undefined : JSON.stringify(payload);
    } catch {
      throw new TypeError('freshet: track(type: string, payload?: plain object serializable as JSON)');
    }
    const result = core.track(Date.now(), type, json, get(SESSION) || undefined);
    if (!result) return;
    dirty = true;
    if (result & 4) warnOnce(1, 'over maxQueue: oldest events dropped');
    result & 2 ? pump() : schedule();
  });

  saveClient();
  if (info()[5]) {
    const ls = store();
    const slots = [];
    for (let i = 0; i < (ls?.length ?? 0); i++) if (ls.key(i)?.startsWith(SLOT)) slots.push(ls.key(i));
    for (const key of slots) {
      const text = get(key) ?? '';
      // As sdk/src/driver.rs's adoptable: an unreadable heartbeat counts as 0.
      const heartbeat = /^\d{1,19}(\n|$)/.test(text) ? parseInt(text) : 0;
      if (heartbeat === 0 || now0 - heartbeat > ADOPT_AFTER_MS) {
        core.adopt(text);
        put(key, null);
      }
    }
  }
  addEventListener('pagehide', () => unload(true));
  addEventListener('pageshow', (e) => { if (e.persisted) { closed = false; dirty = true; pump(); } }); // back from bfcache
  document.addEventListener('visibilitychange', () => document.visibilityState === 'hidden' && unload(false));
  pump();

  return {
    get clientId() { return info()[0]; },
    get sessionId() { return info()[1]; },
    /** Events waiting, thrown away over `maxQueue`, refused for good by the edge. */
    get stats() { const s = info(); return { queued: +s[6], evicted: +s[7], dropped: +s[8] }; },
    track,
    page(props) {
      if (props != null && (typeof props !== 'object' || Array.isArray(props))) {
        throw new TypeError('freshet: page props must be a plain object');
      }
      track('page_view', { url: location.href, path: location.pathname, title: document.title, referrer: document.referrer, ...props });
    },
    identify: guard((userId, identityToken) => {
      if (typeof userId !== 'string' || typeof identityToken !== 'string') {
        throw new TypeError('freshet: identify(userId, identityToken) takes two strings');
      }
      core.identify(userId, identityToken);
    }),
    reset() { core.reset(Date.now()); saveClient(); dirty = true; pump(); },
    /** Sends what is queued; resolves when the wire is quiet (delivered, or a retry scheduled). */
    flush: () => new Promise((resolve) => { waiters.push(resolve); pump(true); }),
    optOut() { core.optOut(true); put(OPT_OUT, '1'); put(slot, null); },
    optIn() { core.optOut(false); put(OPT_OUT, null); },
  };
}
