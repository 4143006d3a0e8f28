// Turns freshness.mjs's JSON lines (stdin) into the `freshness` section of
// BENCHMARKS.md (markdown on stdout). Usage: node freshness-report.mjs COMMAND < lines
import fs from 'node:fs';
import os from 'node:os';

const command = (process.argv[2] || 'bash scripts/bench-freshness.sh').trim();
const runs = fs.readFileSync(0, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const ms = (x) => (x === undefined ? '–' : `${Math.round(x)} ms`);
const name = { 'durable-object': 'Durable Object (default)', redis: 'Redis 7.0 (redis-server)', mongo: 'MongoDB wire (SecantusDB)' };
const lines = [
  'From a click in the browser to the value visible in the serving API: headless Chromium clicks a',
  'product card in the built example shop (`examples/nuxt`, tracker as shipped: `flushIntervalMs: 250`,',
  'through the shop\'s first-party `/api/ingest`), with the leading edge on (the default: the first',
  'event after a quiet spell is sent at once) and off (`leadingEdge: false`: every batch waits out the',
  'interval), side by side in one run, and the benchmark polls',
  '`GET /v1/features/user/<clientId>` every 5 ms until `clicks_product_card` shows the click. One click',
  'at a time, 600 ms after the page it is on was shown; the edge under `wrangler dev` (its proxy in front of workerd), everything on 127.0.0.1.',
  '"to the wire": click until the batch request leaves the browser (the flush interval);',
  '"wire to visible": from there through the shop, the edge and the store to the first read that shows it.',
  '',
];
// A pipeline column only when a run was in the queue pipeline.
const piped = runs.some((r) => (r.pipeline ?? 'direct') !== 'direct');
const pipe = (r) => (piped ? ` ${r.pipeline ?? 'direct'} |` : '');
lines.push(`| store |${piped ? ' pipeline |' : ''} leading edge | clicks | counted | click → visible p50 | p99 | max | to the wire p50 | wire → visible p50 | p99 |`,
  `|---|${piped ? '---|' : ''}---|---|---|---|---|---|---|---|---|`);
const mode = (r) => (r.leadingEdge === false ? 'off' : 'on');
for (const r of runs) {
  if (r.error) { lines.push(`| ${name[r.store] ?? r.store} |${pipe(r)} ${mode(r)} | – | – | failed: ${r.error.replace(/\|/g, '/')} | | | | | |`); continue; }
  lines.push(`| ${name[r.store] ?? r.store} |${pipe(r)} ${mode(r)} | ${r.clicks} | ${r.counted} | ${ms(r.total.p50)} | ${ms(r.total.p99)} | ${ms(r.total.max)} | ${ms(r.toWire.p50)} | ${ms(r.fromWire.p50)} | ${ms(r.fromWire.p99)} |`);
}
const counted = runs.filter((r) => r.requests);
if (counted.length) {
  lines.push('', 'Requests (batches to `/api/ingest`) for 100 clicks on one page, at a human pace (one click every',
    '600 ms) and in bursts (ten bursts of ten clicks within 100 ms, 1.5 s apart):', '',
    '| leading edge | human pace | bursts |', '|---|---|---|');
  for (const r of counted) lines.push(`| ${mode(r)} | ${r.requests.human} | ${r.requests.bursts} |`);
}
const load = runs.filter((r) => !r.error).map((r) => `${r.store}/${piped ? `${r.pipeline}/` : ''}${mode(r)} ${r.loadBefore.split(' ')[0]}→${r.loadAfter.split(' ')[0]}`).join(', ');
lines.push('', `Measured, not asserted. Machine: ${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}), ${Math.round(os.totalmem() / 2 ** 30)} GiB,`,
  `shared with other work; 1-minute load average before→after each store: ${load}. Taken ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC with \`${command}\`.`,
  'With the leading edge off, most of the time is the tracker\'s flush interval (`flushIntervalMs`); with it',
  'on, a click after a quiet spell skips it, and the rest is the edge path. The p99 on this loaded 2-core machine is mostly scheduling of the five busy processes',
  '(Chromium, Nuxt, wrangler\'s proxy, workerd, the store).');
console.log(lines.join('\n'));
