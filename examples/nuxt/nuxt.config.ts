// The shop as a Freshet user writes it: the module in `modules`, its options
// under `freshet`. Everything that differs per machine is set at run time:
//   NUXT_FRESHET_EDGE_ENDPOINT   where /api/ingest forwards batches (the edge's /v1/ingest)
//   NUXT_SHOP_EDGE_URL           the edge, for the features panel's reads
//   NUXT_SHOP_READ_TOKEN         the serving API's read token (server only)
//   NUXT_SHOP_IDENTITY_SECRET    the secret identity tokens are signed with (server only)
//   NUXT_SHOP_MODEL_URL          the ranker's KServe model server, for the recommended row (server only)
export default defineNuxtConfig({
  compatibilityDate: '2026-11-01',
  modules: ['freshet/nuxt'],
  freshet: {
    // The browser sends to /api/ingest on this origin; the Nuxt server forwards here.
    endpoint: 'http://127.0.0.1:8787/v1/ingest',
    writeKey: 'dev',
    // A click is on the wire a quarter of a second later: the panel can show it
    // within a second. The package's default (5 s) suits a site that wants fewer requests.
    flushIntervalMs: 250,
    // The first click after a quiet spell goes at once (the default); set here so
    // NUXT_PUBLIC_FRESHET_LEADING_EDGE=false can turn it off at run time (the benchmark does).
    leadingEdge: true,
  },
  runtimeConfig: {
    // Server only: never part of the page or its payload.
    shop: { edgeUrl: 'http://127.0.0.1:8787', readToken: '', identitySecret: '', modelUrl: '' },
  },
  css: ['~/assets/shop.css'],
  app: { head: { title: 'Freshet shop', meta: [{ name: 'viewport', content: 'width=device-width, initial-scale=1' }] } },
  telemetry: false,
  devtools: { enabled: false },
});
