/** `<userId>.<expiry>.<base64url HMAC-SHA256(secret, "<userId>.<expiry>")>`, for `identify()`. */
export declare function issueIdentityToken(
  userId: string,
  secret: string | Uint8Array,
  options?: { ttlSeconds?: number; now?: number },
): string;
/** The userId of a valid, unexpired token, else null. */
export declare function verifyIdentityToken(
  token: string,
  secret: string | Uint8Array,
  options?: { now?: number },
): string | null;
