// A static file server on 127.0.0.1 for a built web app (e.g.
// examples/leptos/dist), with the content types a browser insists on:
// WebAssembly.instantiateStreaming needs `application/wasm`.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
};

/** Serves `dir` on a free port (or `port`); resolves to { origin, port, close }. */
export function serveStatic(dir, port = 0) {
  const root = path.resolve(dir);
  const server = http.createServer((req, res) => {
    const { pathname } = new URL(req.url, 'http://x');
    const file = path.join(root, decodeURIComponent(pathname === '/' ? '/index.html' : pathname));
    if (!file.startsWith(root + path.sep) || !fs.statSync(file, { throwIfNoEntry: false })?.isFile()) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const { port: bound } = server.address();
      resolve({
        origin: `http://127.0.0.1:${bound}`,
        port: bound,
        close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
      });
    });
  });
}
