// freshet: the browser tracker. The wasm core (sdk/, Rust) makes every
// decision: ids, batches, what is due, retry or drop, sessions, the storage
// form. This driver only gives it a clock, storage, one timer, the network
// and the page's lifecycle. It touches no browser global at import time, so
// importing it on a server is safe.
import init, { Core } from '../pkg/freshet_sdk.js';

const CLIENT = 'freshet:cid';
const SESSION = 'freshet:sid';
const OPT_OUT = 'freshet:optout';
// Each tab saves its queue under its own slot; the next tab to start adopts
// the slots of tabs that closed (heartbeat 0) or died (no write for 15 min).
const SLOT = 'freshet:q:';
const ADOPT_AFTER_MS = 15 * 60e3;
// A burst of track() calls costs one write to storage.
const SAVE_DELAY_MS = 250;
// Below this a body is sent as it is: gzip would not pay for itself.
const GZIP_MIN_BYTES = 1024;
const TEXT = { 'content-type': 'text/plain' }; // CORS-simple: no preflight

// localStorage throws in some privacy modes: then the cookie keeps the id.
const store = () => { try { return localStorage; } catch { return null; } };
const get = (key) => { try { return store()?.getItem(key) ?? null; } catch { return null; } };
const put = (key, value) => {
  try { value == null ? store()?.removeItem(key) : store()?.setItem(key, value); } catch { /* full or blocked */ }
};

let loading;
/** Loads the wasm once. `wasm` is its URL (or bytes); default: beside this file. */
export const load = (wasm) => (loading ||= init(wasm == null ? undefined : { module_or_path: wasm }));

/** Loads the wasm, then starts a tracker. Rejects with a TypeError for bad options. */
export async function createTracker(options, wasm) {
  await load(wasm);
  return new Tracker(options);
}

export class Tracker {
  #core; #slot; #timer; #at = Infinity; #dirty = true; #busy = false; #waiters = []; #warned = 0;

  constructor(options) {
    const now = Date.now();
    const cookie = document.cookie.match(/(?:^|; )freshet_cid=([\w-]+)/);
    const core = (this.#core = new Core(options, now, get(CLIENT) ?? cookie?.[1], get(SESSION), get(OPT_OUT) === '1'));
    this.#slot = SLOT + Math.random().toString(36).slice(2, 10);
    this.#saveClient();
    const ls = core.persists && store();
    if (ls) {
      const slots = [];
      for (let i = 0; i < ls.length; i++) if (ls.key(i)?.startsWith(SLOT)) slots.push(ls.key(i));
      for (const key of slots) {
        const text = get(key) ?? '';
        const heartbeat = +text.slice(0, text.indexOf('\n'));
        if (heartbeat === 0 || now - heartbeat > ADOPT_AFTER_MS) {
          core.adopt(text);
          put(key, null);
        }
      }
    }
    addEventListener('pagehide', () => this.#unload(true));
    document.addEventListener('visibilitychange', () => document.visibilityState === 'hidden' && this.#unload(false));
    this.#pump();
  }

  get clientId() { return this.#core.clientId; }
  get sessionId() { return this.#core.sessionId; }
  /** Events waiting, thrown away over `maxQueue`, refused for good by the edge. */
  get stats() { const [queued, evicted, dropped] = this.#core.stats; return { queued, evicted, dropped }; }

  track(type, payload) {
    const now = Date.now();
    const core = this.#core;
    if (core.sessionExpired(now)) { const shared = get(SESSION); if (shared) core.mergeSession(shared); }
    const result = core.track(now, type, payload);
    if (!result) return;
    this.#dirty = true;
    if (core.stats[1] && !(this.#warned & 1)) {
      this.#warned |= 1;
      console.warn('freshet: more than maxQueue events were waiting; the oldest were dropped');
    }
    result === 2 ? this.#pump() : this.#schedule();
  }

  page(props) {
    if (props != null && (typeof props !== 'object' || Array.isArray(props))) {
      throw new TypeError('freshet: page props must be a plain object');
    }
    this.track('page_view', { url: location.href, path: location.pathname, title: document.title, referrer: document.referrer, ...props });
  }

  identify(userId, identityToken) { this.#core.identify(userId, identityToken); }

  reset() { this.#core.reset(Date.now()); this.#saveClient(); this.#dirty = true; this.#pump(); }

  /** Sends what is queued; resolves when the wire is quiet (delivered, or a retry scheduled). */
  flush() {
    this.#core.flush();
    return new Promise((resolve) => { this.#waiters.push(resolve); this.#pump(); });
  }

  optOut() { this.#core.optOut(); put(OPT_OUT, '1'); put(this.#slot, null); }
  optIn() { this.#core.optIn(); put(OPT_OUT, null); }

  #saveClient() {
    const id = this.#core.clientId;
    put(CLIENT, id);
    document.cookie = `freshet_cid=${id}; Max-Age=63072000; Path=/; SameSite=Lax`;
  }

  #save(heartbeat) {
    this.#dirty = false;
    const core = this.#core;
    if (!core.persists) return;
    put(SESSION, core.savedSession);
    put(this.#slot, core.save(heartbeat) ?? null);
  }

  #pump() {
    const now = Date.now();
    const body = this.#busy ? undefined : this.#core.nextBody(now);
    if (this.#dirty || body) this.#save(now);
    if (body) {
      this.#busy = true;
      this.#send(body);
    } else if (!this.#busy) {
      for (const resolve of this.#waiters.splice(0)) resolve();
    }
    this.#schedule();
  }

  #schedule() {
    const wake = this.#core.nextWake();
    let at = wake < 0 ? Infinity : wake;
    if (this.#dirty) at = Math.min(at, Date.now() + SAVE_DELAY_MS);
    if (at >= this.#at) return;
    clearTimeout(this.#timer);
    this.#at = at;
    this.#timer = setTimeout(() => { this.#at = Infinity; this.#pump(); }, Math.max(0, at - Date.now()));
  }

  async #send(body) {
    const core = this.#core;
    let status = 0;
    let retryAfter;
    try {
      const data = core.gzip && body.length >= GZIP_MIN_BYTES && typeof CompressionStream === 'function'
        ? await new Response(new Blob([body]).stream().pipeThrough(new CompressionStream('gzip'))).arrayBuffer()
        : body;
      const res = await fetch(core.endpoint, { method: 'POST', body: data, headers: TEXT });
      status = res.status;
      retryAfter = res.headers.get('retry-after') ?? undefined;
    } catch { /* offline, DNS, CORS: status 0 retries */ }
    if (core.settle(Date.now(), status, retryAfter) === 2 && !(this.#warned & 2)) {
      this.#warned |= 2;
      console.warn(`freshet: the endpoint refused a batch with HTTP ${status}; its events are dropped`);
    }
    this.#busy = false;
    this.#dirty = true;
    this.#pump();
  }

  // pagehide or hidden: every batch to sendBeacon (text/plain, each under
  // 64 KB by maxBatchBytes), fetch(keepalive) if it refuses. The batches stay
  // saved until an answer confirms them; resends reuse their batch ids.
  #unload(closing) {
    const now = Date.now();
    const url = this.#core.endpoint;
    for (const body of this.#core.unload(now)) {
      let queued = false;
      try { queued = navigator.sendBeacon(url, body); } catch { /* refused */ }
      if (!queued) fetch(url, { method: 'POST', body, keepalive: true, headers: TEXT }).catch(() => {});
    }
    this.#save(closing ? 0 : now);
    this.#schedule();
  }
}
