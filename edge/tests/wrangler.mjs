// What the workerd tests share: a temporary folder, child processes stopped
// when the file's tests end, free ports, and the worker under `wrangler dev`
// from a config without [build] (so a restart does not rebuild). Each test
// file runs in its own process, so the state here is per file.
import { after } from 'node:test';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const EDGE = process.env.EDGE_DIR ?? path.resolve(import.meta.dirname, '..');
// The worker build served, under edge/: `build` (the repository's spec; a
// test that needs another passes its text in FRESHET_SPEC), or another a
// script built with FRESHET_BUILD_DIR (edge/build.sh).
export const BUILD = process.env.FRESHET_EDGE_BUILD ?? 'build';
export const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'freshet-edge-'));
const children = [];

after(() => {
  for (const c of children) stop(c);
  fs.rmSync(TMP, { recursive: true, force: true });
});

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Spawns a detached child (its own process group), stopped when the tests end. */
export function spawnChild(command, args, options) {
  const child = spawn(command, args, { detached: true, ...options });
  children.push(child);
  return child;
}

/** SIGTERM to the child's process group (wrangler and its workerd together). */
export function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try { process.kill(-child.pid, 'SIGTERM'); } catch { /* already gone */ }
}

export async function waitExit(child) {
  for (let i = 0; i < 400 && child.exitCode === null && child.signalCode === null; i++) await sleep(25);
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

/**
 * edge/wrangler.toml without [build], serving <BUILD>/index.js. `limits`
 * replaces the `simple = {...}` of the named [[ratelimits]] bindings; one
 * that is commented out (off as shipped) is added.
 */
export function testConfig(limits = {}) {
  let text = fs.readFileSync(path.join(EDGE, 'wrangler.toml'), 'utf8')
    .replace(/\[build\][^[]*/, '')
    .replace(/^main = .*$/m, `main = "${path.join(EDGE, BUILD, 'index.js')}"`);
  Object.entries(limits).forEach(([name, limit], i) => {
    const block = new RegExp(`^(name = "${name}"[^[]*?simple = )\\{[^}]*\\}`, 'm');
    text = block.test(text)
      ? text.replace(block, `$1{ limit = ${limit}, period = 10 }`)
      : `${text}\n[[ratelimits]]\nname = "${name}"\nnamespace_id = "9${i}"\nsimple = { limit = ${limit}, period = 10 }\n`;
  });
  const file = path.join(TMP, `wrangler-${Object.values(limits).join('-') || 'default'}.toml`);
  fs.writeFileSync(file, text);
  return file;
}

/**
 * `wrangler dev` with `--var`s, persisted to `persist`, on a free port;
 * resolves once `/health` answers as `ready` wants (ok, unless told).
 * `env` adds to the process environment. Returns `{ base, child, log }`,
 * `log()` being what it has printed so far.
 */
export async function startWorker(vars, { persist = path.join(TMP, 'state'), limits, env = {}, ready = (res) => res.ok } = {}) {
  const port = await freePort();
  const inspector = await freePort();
  const args = ['dev', '--config', testConfig(limits), '--local', '--ip', '127.0.0.1', '--port', String(port),
    '--inspector-port', String(inspector), '--show-interactive-dev-session=false', '--persist-to', persist];
  for (const [k, v] of Object.entries(vars)) args.push('--var', `${k}:${v}`);
  const logFile = path.join(TMP, `wrangler-${port}.log`);
  const out = fs.openSync(logFile, 'w');
  const child = spawnChild(path.join(EDGE, 'node_modules', '.bin', 'wrangler'), args,
    { cwd: EDGE, stdio: ['ignore', out, out], env: { ...process.env, ...env } });
  const base = `http://127.0.0.1:${port}`;
  const log = () => fs.readFileSync(logFile, 'utf8');
  for (let i = 0; i < 240; i++) {
    try { if (ready(await fetch(`${base}/health`))) return { base, child, log }; } catch { /* not yet */ }
    if (child.exitCode !== null) break;
    await sleep(250);
  }
  throw new Error(`wrangler dev did not start:\n${log()}`);
}

export async function stopWorker(w) {
  stop(w.child);
  await waitExit(w.child);
}

// ---- payloads ----
export const fixture = (name) => JSON.parse(fs.readFileSync(path.join(EDGE, 'tests', 'fixtures', name), 'utf8'));

/** A batch with its times moved to now (the worker checks them against its clock). */
export function fresh(batch) {
  const now = Date.now();
  const out = structuredClone(batch);
  if ('sentAt' in out) out.sentAt = new Date(now).toISOString();
  out.events.forEach((e, i) => { e.timestamp = new Date(now - (out.events.length - i) * 1000).toISOString(); });
  return out;
}
