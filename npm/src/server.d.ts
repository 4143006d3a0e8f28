/** `<userId>.<expiry>.<base64url HMAC-SHA256(secret, "<userId>.<expiry>")>`, for `identify()`; with a list of secrets, signed with the first. */
export declare function issueIdentityToken(
  userId: string,
  secret: string | Uint8Array | ReadonlyArray<string | Uint8Array>,
  options?: { ttlSeconds?: number; now?: number },
): string;
/** The userId of a valid, unexpired token, else null; with a list of secrets, a token signed with any of them is valid. */
export declare function verifyIdentityToken(
  token: string,
  secret: string | Uint8Array | ReadonlyArray<string | Uint8Array>,
  options?: { now?: number },
): string | null;
