-- Freshet: applies one entity's delta atomically, at most once per batch.
-- Mirrors freshet-core's FeatureState::merge (core/src/state.rs); the test
-- core/tests/redis_script.rs pins the two together on a real Redis.
-- KEYS[1] entity hash, KEYS[2] the entity's batch markers (zset: member the
-- marker's 8 bytes, score when it expires, Unix s), KEYS[3] the batch's marker in the
-- layout before (a string key, honoured until the last of them expires),
-- KEYS[4..] zsets of set features.
-- ARGV[1] the marker (16 hex digits), ARGV[2] the receive time and ARGV[3]
-- the marker's expiry (Unix s), then per feature: op, field, updatedAt, args.
-- Kept as its 8 bytes: 9 bytes a marker less than the hex in a listpack.
local marker = (ARGV[1]:gsub('..', function(h) return string.char(tonumber(h, 16)) end))
if redis.call('ZSCORE', KEYS[2], marker) or redis.call('EXISTS', KEYS[3]) == 1 then
  return 0
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], marker)
-- The key goes with its last marker (an entity that stops being written),
-- timed from the receive time, so Redis's clock and the edge's need not agree.
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('EXPIRE', KEYS[2], math.max(1, tonumber(last[2]) - tonumber(ARGV[2])))
local hash = KEYS[1]
-- (t1, id1) < (t2, id2), ids compared byte-wise (Lua's < follows the locale).
local function precedes(t1, id1, t2, id2)
  if t1 ~= t2 then return t1 < t2 end
  for k = 1, math.min(#id1, #id2) do
    local a, b = string.byte(id1, k), string.byte(id2, k)
    if a ~= b then return a < b end
  end
  return #id1 < #id2
end
-- The numbers of an avg or vector_avg cell, kept as '%.17g' text joined by
-- ',' (exact for every double), added one by one in doubles as core adds.
local function add_parts(cur, delta)
  local sum = {}
  for x in string.gmatch(delta, '[^,]+') do sum[#sum + 1] = tonumber(x) end
  if cur then
    local old = {}
    for x in string.gmatch(cur, '[^,]+') do old[#old + 1] = tonumber(x) end
    -- Another length: the spec changed dim without a new version; the delta wins.
    if #old == #sum then
      for k = 1, #sum do sum[k] = old[k] + sum[k] end
    end
  end
  for k = 1, #sum do sum[k] = string.format('%.17g', sum[k]) end
  return table.concat(sum, ',')
end
local i, z = 4, 4
while i <= #ARGV do
  local op, field, ts = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  i = i + 3
  local tsfield = '_ts:' .. field
  local old = tonumber(redis.call('HGET', hash, tsfield) or '-1')
  local now = old
  if ts > old then
    now = ts
    redis.call('HSET', hash, tsfield, ARGV[i - 1])
  end
  if op == 'count' or op == 'sum' or op == 'min' or op == 'max' or op == 'parts' then
    local span, g, n = tonumber(ARGV[i]), tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
    i = i + 3
    local cutoff = 0
    if span > 0 then cutoff = math.floor((now - span) / g) * g end
    for _ = 1, n do
      local start, v = ARGV[i], ARGV[i + 1]
      i = i + 2
      local f = field
      if span > 0 then f = field .. '|' .. start end
      if span == 0 or tonumber(start) * 1000 >= cutoff then
        if op == 'count' then
          redis.call('HINCRBY', hash, f, v)
        elseif op == 'sum' then
          redis.call('HINCRBYFLOAT', hash, f, v)
        elseif op == 'parts' then
          redis.call('HSET', hash, f, add_parts(redis.call('HGET', hash, f), v))
        else
          local cur = redis.call('HGET', hash, f)
          if not cur or (op == 'min' and tonumber(v) < tonumber(cur))
              or (op == 'max' and tonumber(v) > tonumber(cur)) then
            redis.call('HSET', hash, f, v)
          end
        end
      end
    end
    -- Buckets that left the window: every bucket lies in [old cutoff, old],
    -- so this loop is bounded by the window's bucket count.
    if span > 0 and old >= 0 and now > old then
      local s = math.floor((old - span) / g) * g
      local stop = math.min(cutoff, math.floor(old / g) * g + g)
      while s < stop do
        redis.call('HDEL', hash, field .. '|' .. string.format('%d', s / 1000))
        s = s + g
      end
    end
  elseif op == 'last' or op == 'first' then
    local t, id, v = ARGV[i], ARGV[i + 1], ARGV[i + 2]
    i = i + 3
    local ofield = '_o:' .. field
    local cur = redis.call('HGET', hash, ofield)
    local take = true
    if cur then
      local bar = string.find(cur, '|', 1, true)
      local ct, cid = tonumber(string.sub(cur, 1, bar - 1)), string.sub(cur, bar + 1)
      if op == 'last' then
        take = precedes(ct, cid, tonumber(t), id)
      else
        take = precedes(tonumber(t), id, ct, cid)
      end
    end
    if take then redis.call('HSET', hash, field, v, ofield, t .. '|' .. id) end
  elseif op == 'distinct' or op == 'latest' or op == 'mode' then
    -- A zset trimmed to the max highest scores: latest times, or for mode
    -- the counts of each value.
    local key, max, n = KEYS[z], tonumber(ARGV[i]), tonumber(ARGV[i + 1])
    z = z + 1
    i = i + 2
    for _ = 1, n do
      if op == 'mode' then
        redis.call('ZINCRBY', key, ARGV[i], ARGV[i + 1])
      else
        redis.call('ZADD', key, 'GT', ARGV[i], ARGV[i + 1])
      end
      i = i + 2
    end
    redis.call('ZREMRANGEBYRANK', key, 0, -(max + 1))
  else
    return redis.error_reply('freshet: unknown op ' .. tostring(op))
  end
end
return 1
