export default defineEventHandler((event) => {
  deleteCookie(event, 'shop_identity', { path: '/' });
  return { ok: true };
});
