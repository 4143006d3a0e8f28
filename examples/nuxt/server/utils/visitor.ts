// Who is asking: the signed-in user if the identity cookie carries a token
// this server signed, else the tracker's anonymous client id (its first-party
// cookie), else nobody yet.
import type { H3Event } from 'h3';
import { verifyIdentityToken } from 'freshet/server';

export function visitorId(event: H3Event, identitySecret: string): { id: string | null; signedIn: boolean } {
  const token = getCookie(event, 'shop_identity');
  const userId = token && identitySecret ? verifyIdentityToken(token, identitySecret) : null;
  const clientId = getCookie(event, 'freshet_cid');
  return { id: userId ?? (validId(clientId) ? clientId : null), signedIn: !!userId };
}
