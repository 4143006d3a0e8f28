// The collector as a process of its own, for the Rust tracker's browser tests
// (wasm-bindgen-test in headless Chromium, scripts/test-sdk-web.sh): prints
// its origin on the first line, serves until killed.
// Usage: node collector-server.mjs   (COLLECTOR_PORT=N to pick the port)
import { startCollector } from './collector.mjs';

const collector = await startCollector();
console.log(collector.origin);
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => collector.close().then(() => process.exit(0)));
