// The module as a user adds it. The edge endpoint is given at run time:
// NUXT_FRESHET_EDGE_ENDPOINT (the test's collector).
export default defineNuxtConfig({
  compatibilityDate: '2026-11-01',
  modules: ['freshet/nuxt'],
  freshet: {
    endpoint: 'http://127.0.0.1:9/v1/ingest',
    writeKey: 'wk_nuxt',
    flushIntervalMs: 200,
  },
  telemetry: false,
  devtools: { enabled: false },
});
