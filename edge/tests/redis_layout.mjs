// Redis layout 2 as tests look at it straight from the server
// (core/src/encode/redis/mod.rs): the entity's hash, a feature's 4-character
// tag, and a batch's marker. Core decides these; a test that reads Redis
// directly restates them here, once.
import { createHash } from 'node:crypto';

const DIGITS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** `FeatureDef::tag`: 4 base-62 digits of the SHA-256 of `name@version`. */
export function featureTag(key) {
  let n = createHash('sha256').update(key).digest().readBigUInt64BE(0);
  let tag = '';
  for (let i = 0; i < 4; i++) {
    tag += DIGITS[Number(n % 62n)];
    n /= 62n;
  }
  return tag;
}

/** The entity's hash key. */
export function entityHash(entity, id, prefix = 'fs') {
  return `${prefix}:{${entity}:${id}}:2`;
}

/** `marker_member`: the first 8 bytes of the batch id's SHA-256, in hex. */
export function markerMember(batchId) {
  return createHash('sha256').update(batchId).digest('hex').slice(0, 16);
}

/** The entity's applied-batch markers (a string of day groups). */
export function markersKey(entity, id, prefix = 'fs') {
  return `${entityHash(entity, id, prefix)}:b`;
}

/**
 * A Lua script (for `EVAL … 1 <markers key> <marker hex>`) that answers the
 * receive day (days since the epoch) of the group holding the marker, or
 * -1: per day its number and count (u16 each), then 8-byte markers.
 */
export const FIND_MARKER = `
local m = (ARGV[1]:gsub('..', function(h) return string.char(tonumber(h, 16)) end))
local s, p = redis.call('GET', KEYS[1]) or '', 1
while p + 3 <= #s do
  local d, n = struct.unpack('<HH', s, p)
  for k = 0, n - 1 do
    if string.sub(s, p + 4 + 8 * k, p + 11 + 8 * k) == m then return d end
  end
  p = p + 4 + 8 * n
end
return -1`;
