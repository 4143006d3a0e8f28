// A pass-through in front of the edge that writes down what reaches it: the
// browser cannot show a test the sendBeacon of a page being unloaded, the
// edge can only count it. Every request goes to the edge unchanged (the
// page's Origin and all) and its answer comes back unchanged; the edge
// decides everything. An edge that does not answer resets the connection,
// as it would for the browser.
import http from 'node:http';
import zlib from 'node:zlib';

/**
 * Listens on a free port of 127.0.0.1 and relays to `target()` (a base URL,
 * asked per request so the edge may move). `received` lists each POST to
 * /v1/ingest: `{ mode, batchId, events, status }`; `mode` is the request's
 * Sec-Fetch-Mode: `no-cors` for a text beacon, `cors` for the tracker's fetch.
 */
export function startRelay(target) {
  const received = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const to = new URL(req.url, target());
      const headers = { ...req.headers, host: to.host };
      const out = http.request(to, { method: req.method, headers }, (answer) => {
        if (req.method === 'POST' && to.pathname === '/v1/ingest') {
          const text = (body[0] === 0x1f && body[1] === 0x8b ? zlib.gunzipSync(body) : body).toString();
          let batch = {};
          try { batch = JSON.parse(text); } catch { /* the edge says what was wrong */ }
          received.push({ mode: req.headers['sec-fetch-mode'], batchId: batch.batchId, events: (batch.events ?? []).map((e) => e.type), status: answer.statusCode });
        }
        res.writeHead(answer.statusCode, answer.headers);
        answer.pipe(res);
      });
      out.on('error', () => req.socket.destroy());
      out.end(body);
    });
  });
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const base = `http://127.0.0.1:${server.address().port}`;
      resolve({ base, received, close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }) });
    });
  });
}
