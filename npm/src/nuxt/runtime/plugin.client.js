// Browser only. The wasm is fetched after the app has mounted, so it is never
// part of the server-rendered HTML nor of the first paint.
import { defineNuxtPlugin, useRuntimeConfig } from '#app';
import { startTracker, useEventTracker } from 'freshet/vue';

export default defineNuxtPlugin((nuxtApp) => {
  const { trackPageViews, ...options } = useRuntimeConfig().public.freshet;
  const tracker = useEventTracker();
  nuxtApp.hook('app:mounted', () => {
    startTracker(options, () => import('freshet/wasm?url').then((m) => m.default));
  });
  if (trackPageViews) nuxtApp.hook('page:finish', () => tracker.page());
});
