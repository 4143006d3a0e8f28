// GET /api/features[?product=ID]: the visitor's features as the model reads
// them. The visitor is the signed-in user if the identity cookie carries a
// token this server signed, else the tracker's anonymous client id (its
// first-party cookie). The read token is used here and never sent to the browser.
import { verifyIdentityToken } from 'freshet/server';

export default defineEventHandler(async (event) => {
  const { edgeUrl, readToken, identitySecret } = useRuntimeConfig(event).shop;
  const token = getCookie(event, 'shop_identity');
  const userId = token && identitySecret ? verifyIdentityToken(token, identitySecret) : null;
  const clientId = getCookie(event, 'freshet_cid');
  const id = userId ?? (validId(clientId) ? clientId : null);
  setResponseHeader(event, 'cache-control', 'no-store');
  if (!id) return { entity: 'user', id: null, signedIn: false, features: {} };
  const started = performance.now();
  const product = getQuery(event).product;
  try {
    const [user, item] = await Promise.all([
      readFeatures(edgeUrl, readToken, 'user', id),
      validId(product) ? readFeatures(edgeUrl, readToken, 'product', product) : null,
    ]);
    return {
      entity: 'user',
      id,
      signedIn: !!userId,
      features: user.features,
      product: item && { id: item.id, features: item.features },
      tookMs: Math.round(performance.now() - started),
    };
  } catch {
    return { entity: 'user', id, signedIn: !!userId, features: {}, error: 'The serving API is not reachable right now.' };
  }
});
