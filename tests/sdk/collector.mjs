// A local stand-in for the edge, for the browser tests: serves the test page
// and the npm package on 127.0.0.1, records every POST to /ingest (gunzipping
// bodies that start with the gzip magic, as the edge does) and answers as the
// test tells it: 202 by default, or a scripted 503/429/400/401 (with an
// `error` code in the body, as the edge writes it), or "down" (the
// connection is dropped, which the browser sees as a network error). An
// answer may also be a function of the decoded batch.
//
// Pages of another origin (the Rust tracker's wasm-bindgen tests, served by
// wasm-bindgen-test-runner) reach it through CORS and drive it over HTTP:
// POST /control/reset (a new run; answers its endpoint), POST
// /control/script (a JSON array of answers), POST /control/fallback (the
// answer after the script, e.g. "down"), GET /control/received.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { extname, join, normalize, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const npmDir = resolve(here, '../../npm');
const TYPES = { '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html' };

export const PAGE = `<!doctype html><html><head><title>freshet test</title></head><body>
<script type="module">
  import { createTracker } from '/npm/src/index.js';
  window.start = async (options) => { window.t = await createTracker(options); return window.t.clientId; };
  window.startError = async (options) => {
    try { await createTracker(options); return null; } catch (e) { return e.constructor.name + ': ' + e.message; }
  };
  window.ready = true;
</script></body></html>`;

export async function startCollector() {
  const received = []; // { at, headers, gzip, raw, body }
  const script = []; // responses to use first, one per request: { status, headers, error }, 'down', or (batch) => either
  // Each test gets its own endpoint (?run=N): pages left over from an
  // earlier test (their beacons, their retries) are answered but not recorded.
  const state = { fallback: { status: 202 }, run: 1 };
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    for (const [k, v] of Object.entries(CORS)) res.setHeader(k, v);
    if (req.method === 'OPTIONS') return res.writeHead(204).end();
    if (url.pathname.startsWith('/control/')) return control(req, res, url.pathname.slice(9));
    if (req.method === 'GET') {
      if (url.pathname === '/' || url.pathname === '/page') {
        res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
        return;
      }
      if (url.pathname.startsWith('/npm/')) {
        const file = normalize(join(npmDir, url.pathname.slice(5)));
        if (!file.startsWith(npmDir)) return res.writeHead(403).end();
        try {
          const data = await readFile(file);
          res.writeHead(200, { 'content-type': TYPES[extname(file)] || 'application/octet-stream' }).end(data);
        } catch {
          res.writeHead(404).end();
        }
        return;
      }
      return res.writeHead(404).end();
    }
    if (req.method === 'POST' && url.pathname === '/ingest') {
      const chunks = [];
      for await (const c of req) chunks.push(c);
      const raw = Buffer.concat(chunks);
      if (url.searchParams.get('run') !== String(state.run)) {
        res.writeHead(202, { 'content-type': 'application/json' }).end('{"accepted":0,"rejected":[]}');
        return;
      }
      const gzip = raw[0] === 0x1f && raw[1] === 0x8b;
      let body;
      try {
        body = JSON.parse((gzip ? gunzipSync(raw) : raw).toString('utf8'));
      } catch {
        body = null;
      }
      let answer = script.length ? script.shift() : state.fallback;
      if (typeof answer === 'function') answer = answer(body);
      if (answer === 'down') {
        req.socket.destroy();
        return;
      }
      received.push({ at: Date.now(), headers: req.headers, gzip, raw, body, status: answer.status });
      const accepted = answer.status === 202 ? body?.events?.length ?? 0 : 0;
      res.writeHead(answer.status, { 'content-type': 'application/json', ...(answer.headers || {}) });
      res.end(answer.status === 202 ? JSON.stringify({ accepted, rejected: [] })
        : JSON.stringify({ error: answer.error ?? 'scripted', message: 'scripted by the test' }));
      return;
    }
    res.writeHead(405).end();
  });
  const control = async (req, res, what) => {
    const reply = (value) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(value));
    if (req.method === 'POST' && what === 'reset') {
      collector.reset();
      return reply({ endpoint: collector.endpoint });
    }
    if (req.method === 'POST' && (what === 'script' || what === 'fallback')) {
      const chunks = [];
      for await (const c of req) chunks.push(c);
      let value;
      try {
        value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch (e) {
        return res.writeHead(400).end(String(e));
      }
      if (what === 'script') collector.script.push(...value);
      else state.fallback = value;
      return reply({ scripted: collector.script.length, fallback: state.fallback });
    }
    if (req.method === 'GET' && what === 'received') {
      // `contentType`: the tracker's fetch sends `text/plain`, a beacon of a
      // string `text/plain;charset=UTF-8`.
      return reply(received.map((r) => ({ at: r.at, status: r.status, gzip: r.gzip, contentType: r.headers['content-type'] ?? '', body: r.body })));
    }
    res.writeHead(404).end();
  };
  await new Promise((ok) => server.listen(Number(process.env.COLLECTOR_PORT ?? 0), '127.0.0.1', ok));
  const origin = `http://127.0.0.1:${server.address().port}`;
  const collector = {
    origin,
    get endpoint() { return `${origin}/ingest?run=${state.run}`; },
    received,
    script,
    state,
    /** Batches the edge would have applied: 202s, deduplicated by batchId. */
    applied() {
      const seen = new Map();
      for (const r of received) if (r.status === 202 && r.body && !seen.has(r.body.batchId)) seen.set(r.body.batchId, r.body);
      return [...seen.values()];
    },
    reset() { received.length = 0; script.length = 0; state.fallback = { status: 202 }; state.run += 1; },
    close: () => new Promise((ok) => { server.closeAllConnections?.(); server.close(ok); }),
  };
  return collector;
}

// Any page may post batches and read what came: it is a test's collector on 127.0.0.1.
const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, POST',
  'access-control-allow-headers': 'content-type',
  'access-control-expose-headers': 'retry-after',
};

/** Polls `check` until it returns something truthy, or fails after `ms`. */
export async function until(check, ms = 5000, what = 'condition') {
  const end = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
