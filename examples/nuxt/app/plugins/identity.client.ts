// A visitor who signed in earlier: tell the tracker on every page load (it
// keeps the identity in memory only). The token comes as the server issued it;
// the edge checks its signature, so a hand-made cookie gets nowhere.
export default defineNuxtPlugin((nuxtApp) => {
  const token = useCookie<string | null>('shop_identity').value;
  if (!token) return;
  // After freshet/nuxt's own app:mounted hook has started the tracker.
  nuxtApp.hook('app:mounted', () => useEventTracker().identify(token.split('.')[0]!, token));
});
