// The loop's parts for the end-to-end tests and the freshness benchmark:
// seeded visits through the edge and a ranker trained from its event log
// (examples/kserve/traffic.py, train.py, in .tools/venv's Python), and the
// KServe model server serving it (examples/kserve/model.py).
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as stack from './stack.mjs';

const KSERVE = path.join(stack.ROOT, 'examples', 'kserve');
export const PYTHON = process.env.FRESHET_PYTHON ?? path.join(process.env.TOOLS ?? path.join(stack.ROOT, '.tools'), 'venv', 'bin', 'python');
export const PRODUCTS = ['prod-1', 'prod-2', 'prod-3', 'prod-4', 'prod-5', 'prod-6', 'prod-7', 'prod-8'];
export const CATEGORY = {
  'prod-1': 'cameras', 'prod-2': 'cameras', 'prod-3': 'cameras',
  'prod-4': 'lenses', 'prod-5': 'lenses', 'prod-6': 'lenses',
  'prod-7': 'tripods', 'prod-8': 'tripods',
};

/** Sends `visitors` seeded visitors' visits through the edge (25 visits to a request: what training reads is the same, in a tenth of the time) and trains the ranker from its log; returns the artifact's path and the training's output. */
export function train(edge, { visitors = 300, seed = 5, metrics } = {}) {
  const artifact = path.join(stack.TMP, `ranker-${seed}.joblib`);
  const run = (args) => execFileSync(PYTHON, args, { cwd: KSERVE, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const sent = run(['traffic.py', '--edge', edge.base, '--write-key', 'dev', '--visitors', String(visitors), '--seed', String(seed), '--visits-per-request', '25']);
  const trained = run(['train.py', '--edge', edge.base, '--read-token', stack.READ_TOKEN, '--out', artifact, ...(metrics ? ['--metrics', metrics] : [])]);
  return { artifact, output: sent + trained };
}

/** The KServe model server with the ranker, reading features from `store` (a Redis URL or the edge's). */
export async function startModel({ store, artifact, port }) {
  port ??= await stack.freePort();
  const grpc = await stack.freePort();
  const logFile = path.join(stack.TMP, `kserve-${port}.log`);
  const log = fs.openSync(logFile, 'w');
  const env = { ...process.env, FRESHET_STORE: store, FRESHET_SPEC: path.join(stack.ROOT, 'features.toml'), FRESHET_MODEL: artifact, FRESHET_READ_TOKEN: stack.READ_TOKEN };
  const child = spawn(PYTHON, [path.join(KSERVE, 'model.py'), '--http_port', String(port), '--grpc_port', String(grpc), '--model_name', 'freshet-user', '--workers', '1'],
    { cwd: stack.TMP, env, detached: true, stdio: ['ignore', log, log] });
  const base = `http://127.0.0.1:${port}`;
  try {
    await stack.until(async () => child.exitCode === null ? (await (await fetch(`${base}/v1/models/freshet-ranker`)).json()).ready : new Error('exited'), 60_000, 'the model server', 200);
  } catch (e) {
    await stack.stop(child);
    throw new Error(`${e.message}\n${fs.readFileSync(logFile, 'utf8').slice(-4000)}`, { cause: e });
  }
  return { base, port, child };
}

/** One v1 predict call to the ranker: the ranked candidates and their scores. */
export async function rank(model, userId, candidates = PRODUCTS) {
  const res = await fetch(`${model.base}/v1/models/freshet-ranker:predict`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ instances: [{ userId, candidates }] }),
  });
  if (!res.ok) throw new Error(`predict ${res.status}: ${await res.text()}`);
  return (await res.json()).predictions[0];
}
