// freshet/nuxt: reads `freshet: { endpoint, writeKey, ... }` from nuxt.config
// (and runtime config), mounts a first-party `/api/ingest` that forwards to
// the edge, auto-imports `useEventTracker`, tracks page views on route
// changes, and loads the wasm in the browser only, after hydration.
import { addImports, addPlugin, addServerHandler, createResolver, defineNuxtModule } from '@nuxt/kit';

export default defineNuxtModule({
  meta: { name: 'freshet', configKey: 'freshet', compatibility: { nuxt: '>=3.0.0' } },
  defaults: {
    endpoint: '',
    writeKey: '',
    // Send to a route on the site's own origin, forwarded to `endpoint`:
    // no CORS preflight, no third-party host for blockers to list.
    proxy: true,
    ingestRoute: '/api/ingest',
    trackPageViews: true,
  },
  setup(options, nuxt) {
    const { resolve } = createResolver(import.meta.url);
    const { endpoint, proxy, ingestRoute, trackPageViews, ...tracker } = options;
    const runtime = nuxt.options.runtimeConfig;
    runtime.public.freshet = {
      ...tracker,
      endpoint: proxy ? ingestRoute : endpoint,
      trackPageViews,
      ...runtime.public.freshet,
    };
    runtime.freshet = { edgeEndpoint: endpoint, ...runtime.freshet };
    if (proxy) {
      addServerHandler({ route: ingestRoute, method: 'post', handler: resolve('./runtime/ingest.js') });
    }
    addPlugin({ src: resolve('./runtime/plugin.client.js'), mode: 'client' });
    addImports({ name: 'useEventTracker', from: 'freshet/vue' });
    nuxt.options.build.transpile.push(resolve('./runtime'));
  },
});
