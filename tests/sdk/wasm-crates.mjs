// What each crate weighs in a wasm file that kept its name section: the code
// bytes of every function grouped by the crate its (demangled) name starts
// with, plus the data segments. Usage: node wasm-crates.mjs FILE.wasm
import { readFileSync } from 'node:fs';

const bytes = readFileSync(process.argv[2]);
let pos = 8;
const u32 = () => {
  let result = 0;
  let shift = 0;
  for (;;) {
    const b = bytes[pos++];
    result += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (!(b & 0x80)) return result;
  }
};
const name = () => { const n = u32(); const s = bytes.toString('utf8', pos, pos + n); pos += n; return s; };

let imported = 0;
let bodies = [];
let dataBytes = 0;
const names = new Map();
while (pos < bytes.length) {
  const id = bytes[pos++];
  const size = u32();
  const end = pos + size;
  if (id === 2) { // imports: functions among them shift the function indices
    for (let i = u32(); i > 0; i--) {
      name(); name();
      const kind = bytes[pos++];
      if (kind === 0) { u32(); imported++; }
      else if (kind === 1) { pos++; const f = bytes[pos++]; u32(); if (f & 1) u32(); }
      else if (kind === 2) { const f = bytes[pos++]; u32(); if (f & 1) u32(); }
      else if (kind === 3) { pos += 2; }
      else if (kind === 4) { pos++; u32(); }
    }
  } else if (id === 10) {
    bodies = [];
    for (let i = u32(); i > 0; i--) { const n = u32(); bodies.push(n); pos += n; }
  } else if (id === 11) {
    dataBytes = size;
  } else if (id === 0 && name() === 'name') {
    while (pos < end) {
      const sub = bytes[pos++];
      const subSize = u32();
      const subEnd = pos + subSize;
      if (sub === 1) for (let i = u32(); i > 0; i--) { const idx = u32(); names.set(idx, name()); }
      pos = subEnd;
    }
  }
  pos = end;
}

// `serde_json::ser::to_string` and `<serde_json::Foo as serde::Ser>::bar` belong
// to serde_json, `<f64 as core::fmt::Display>::fmt` to core (a primitive's
// impl goes to the trait's crate); the exported entry point holds what LTO
// inlined into it; the rest are wasm-bindgen's runtime and compiler builtins.
const PATH = /^&?(?:mut )?(?:dyn )?([A-Za-z_][A-Za-z0-9_]*)(?:\[[0-9a-f]+\])?::/;
const crateOf = (fn = '') => {
  if (fn.startsWith('<')) {
    const as = fn.indexOf(' as ');
    const self = PATH.exec(fn.slice(1));
    if (self) return self[1];
    const trait = as > 0 ? PATH.exec(fn.slice(as + 4)) : null;
    if (trait) return trait[1];
  }
  const m = PATH.exec(fn);
  if (m) return m[1];
  if (/ externref shim/.test(fn)) return `${fn.split(' ')[0]} (exported; what LTO inlined into it)`;
  if (/^(__externref|__wbindgen|__wbg|undefined)/.test(fn) || !fn) return 'wasm-bindgen runtime';
  return 'compiler builtins (mem*, __multi3)';
};
const byCrate = new Map();
bodies.forEach((n, i) => {
  const c = crateOf(names.get(imported + i));
  byCrate.set(c, (byCrate.get(c) ?? 0) + n);
});
const rows = [...byCrate].sort((a, b) => b[1] - a[1]);
const total = bodies.reduce((a, b) => a + b, 0);
console.log(`code ${total} B in ${bodies.length} functions (${names.size ? 'named' : 'NO name section'}), data ${dataBytes} B, file ${bytes.length} B`);
for (const [c, n] of rows) console.log(`${String(n).padStart(8)} B  ${(100 * n / total).toFixed(1).padStart(5)} %  ${c}`);
if (process.env.SHOW_OTHER) {
  bodies.map((n, i) => [n, names.get(imported + i)]).filter(([, f]) => crateOf(f).startsWith('compiler') || crateOf(f).startsWith('wasm-bindgen')).sort((a, b) => b[0] - a[0]).slice(0, 25)
    .forEach(([n, f]) => console.log(n, f));
}
