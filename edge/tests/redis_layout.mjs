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

/**
 * A Lua script (for `EVAL … 1 <hash> <marker hex>`) that answers the day
 * slot (0-10) holding the marker, or -1: markers are 8 bytes each in the
 * hash fields `_b0` … `_b10`.
 */
export const FIND_MARKER = `
local m = (ARGV[1]:gsub('..', function(h) return string.char(tonumber(h, 16)) end))
for s = 0, 10 do
  local v = redis.call('HGET', KEYS[1], '_b' .. s)
  local p = v and string.find(v, m, 1, true)
  while p do
    if (p - 1) % 8 == 0 then return s end
    p = string.find(v, m, p + 1, true)
  end
end
return -1`;
