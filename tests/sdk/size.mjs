// The size budget: JS + wasm that a page downloads for "init + one track",
// bundled and minified by esbuild, each file gzip -9. Fails above the budget.
// Usage: node size.mjs [budgetKB=20]  (KB = 1024 bytes)
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const npmDir = resolve(here, '../../npm');
const budget = Number(process.argv[2] || 20) * 1024;

export const gzipBytes = (file) => execFileSync('gzip', ['-9c', file], { maxBuffer: 1 << 26 }).length;

/** Bundles `entry` (source text) with esbuild, minified; returns the output files. */
export async function bundle(entry, nodePaths = []) {
  const dir = mkdtempSync(join(tmpdir(), 'freshet-size-'));
  writeFileSync(join(dir, 'entry.js'), entry);
  await build({
    entryPoints: [join(dir, 'entry.js')], bundle: true, minify: true, format: 'esm', target: 'es2022',
    outdir: join(dir, 'out'), splitting: true, platform: 'browser', logLevel: 'error', nodePaths,
    alias: { freshet: join(npmDir, 'src/index.js') },
    loader: { '.wasm': 'file' },
  });
  return readdirSync(join(dir, 'out')).map((f) => join(dir, 'out', f));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const files = await bundle(`import { createTracker } from 'freshet';
const t = await createTracker({ endpoint: '/api/ingest', writeKey: 'wk' });
t.track('product_click', { productId: 'p1' });`);
  const js = files.filter((f) => f.endsWith('.js')).reduce((n, f) => n + gzipBytes(f), 0);
  const wasmFile = join(npmDir, 'pkg/freshet_sdk_bg.wasm');
  const wasm = gzipBytes(wasmFile);
  const total = js + wasm;
  const kb = (n) => (n / 1024).toFixed(1);
  console.log(`freshet size: JS ${js} B + wasm ${wasm} B = ${total} B = ${kb(total)} KB gzip -9 (budget ${kb(budget)} KB; wasm raw ${readFileSync(wasmFile).length} B)`);
  if (total > budget) {
    console.error(`size check FAILED: ${kb(total)} KB is over the ${kb(budget)} KB budget`);
    process.exit(1);
  }
}
