-- Freshet: applies one entity's delta atomically, at most once per batch,
-- in layout 2 (core/src/encode/redis/mod.rs). Mirrors freshet-core's
-- FeatureState::merge (core/src/state.rs); core/tests/redis_script.rs pins
-- the two together on a real Redis.
-- KEYS[1] the entity's hash; KEYS[2] its batch markers; KEYS[3] its
-- layout-1 hash and KEYS[4] its layout-1 marker zset (state a migration
-- moves here); KEYS[5..4+M] each batch's marker string of the layout before
-- those (honoured until it expires), M the number of markers (at least 1);
-- when migrating, KEYS[5+M..4+M+L] the layout-1 set keys to delete; then
-- one key per cells or set feature, in feature order.
-- ARGV[1] the batch markers (16 hex digits each): one for a batch's delta,
-- several for the deltas of several batches folded into one (a queue
-- delivery, core's fold_deltas), '' for a delta that needs none (every
-- feature idempotent); ARGV[2] the receive time (Unix s; the batches share
-- its day); ARGV[3] 'apply', 'fold' (a fold of several batches' deltas),
-- or 'migrate' followed by L, the number N of layout-1 markers and N
-- (receive day, marker) pairs; then per feature: op, tag, updatedAt, args.
-- Replies 1 applied, 0 applied before (nothing changed), 2 the entity still
-- holds layout-1 state (migrate it, then apply again), 3 some of several
-- folded batches applied before (nothing changed: apply them one by one).
local hash = KEYS[1]
local m = math.max(1, #ARGV[1] / 16)
local i, z = 4, 5 + m
local function bytes(hex)
  return (hex:gsub('..', function(h) return string.char(tonumber(h, 16)) end))
end
-- Markers: one string of day groups, each the receive day (days since
-- the epoch, u16), the count n (u16) and n markers of 8 bytes, in the
-- order they came. A day keeps its latest MAX_PER_DAY (core's
-- MAX_MARKERS_PER_DAY), so a hot entity's string stays bounded. A write
-- drops the groups ten or more days old (a marker is kept nine days or
-- more, past its 8 d 1 h), so the string holds at most ten days' batches;
-- the key expires ten days after its newest group's day began.
local MAX_PER_DAY = 1000
local function markers_with(day, adds, check)
  local cur = redis.call('GET', KEYS[2]) or ''
  local groups, p = {}, 1
  while p + 3 <= #cur do
    local d, n = struct.unpack('<HH', cur, p)
    local body = string.sub(cur, p + 4, p + 3 + 8 * n)
    p = p + 4 + 8 * n
    if d > day - 10 then
      for _, marker in ipairs(check) do
        local q = string.find(body, marker, 1, true)
        while q do
          if (q - 1) % 8 == 0 then return nil end
          q = string.find(body, marker, q + 1, true)
        end
      end
      groups[d] = (groups[d] or '') .. body
    end
  end
  local newest = day
  for _, a in ipairs(adds) do
    groups[a[1]] = (groups[a[1]] or '') .. a[2]
    newest = math.max(newest, a[1])
  end
  local days = {}
  for d in pairs(groups) do days[#days + 1] = d end
  table.sort(days)
  local out = {}
  for _, d in ipairs(days) do
    local body = groups[d]
    if #body > 8 * MAX_PER_DAY then body = string.sub(body, -8 * MAX_PER_DAY) end
    out[#out + 1] = struct.pack('<HH', d, #body / 8) .. body
  end
  return table.concat(out), newest
end
local function save_markers(text, newest)
  local ttl = (newest + 10) * 86400 - tonumber(ARGV[2])
  if #text > 0 and ttl > 0 then
    redis.call('SET', KEYS[2], text, 'EX', ttl)
  else
    redis.call('DEL', KEYS[2])
  end
end
-- Every key this apply writes is absent or of its type, checked before the
-- first write: Redis does not undo a failed script's writes, so a key of
-- another type (foreign data under the prefix) refused half-way would leave
-- the batch's marker without its features, and the retry would find the
-- marker. Feature keys are strings (cells) or sorted sets.
local function foreign(key, ...)
  local t = redis.call('TYPE', key).ok
  if t == 'none' then return nil end
  for _, want in ipairs({ ... }) do
    if t == want then return nil end
  end
  return redis.error_reply('WRONGTYPE freshet: ' .. key .. ' holds a ' .. t .. ', nothing written')
end
local refused = foreign(KEYS[1], 'hash') or foreign(KEYS[2], 'string')
local first = 5 + m
if ARGV[3] == 'migrate' then first = first + tonumber(ARGV[4]) end
for k = first, #KEYS do
  refused = refused or foreign(KEYS[k], 'string', 'zset')
end
if refused then return refused end
local day = math.floor(tonumber(ARGV[2]) / 86400)
if ARGV[3] == 'migrate' then
  if redis.call('EXISTS', KEYS[3], KEYS[4]) == 0 then return 0 end
  local l, n = tonumber(ARGV[4]), tonumber(ARGV[5])
  i = 6
  local adds = {}
  for _ = 1, n do
    adds[#adds + 1] = { tonumber(ARGV[i]), bytes(ARGV[i + 1]) }
    i = i + 2
  end
  if n > 0 then save_markers(markers_with(day, adds, {})) end
  redis.call('DEL', KEYS[3], KEYS[4])
  for k = 5 + m, 4 + m + l do redis.call('DEL', KEYS[k]) end
  z = 5 + m + l
elseif redis.call('EXISTS', KEYS[3], KEYS[4]) > 0 then
  return 2
end
if ARGV[1] ~= '' then
  local seen = 0
  if ARGV[3] == 'fold' then seen = 3 end
  for k = 5, 4 + m do
    if redis.call('EXISTS', KEYS[k]) == 1 then return seen end
  end
  local adds, check = {}, {}
  for k = 1, #ARGV[1], 16 do
    local marker = bytes(string.sub(ARGV[1], k, k + 15))
    adds[#adds + 1] = { day, marker }
    check[#check + 1] = marker
  end
  local text, newest = markers_with(day, adds, check)
  if not text then return seen end
  save_markers(text, newest)
end
-- (t1, id1) < (t2, id2), ids compared byte-wise (Lua's < follows the locale).
local function precedes(t1, id1, t2, id2)
  if t1 ~= t2 then return t1 < t2 end
  for k = 1, math.min(#id1, #id2) do
    local a, b = string.byte(id1, k), string.byte(id2, k)
    if a ~= b then return a < b end
  end
  return #id1 < #id2
end
while i <= #ARGV do
  local op, tag, ts = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  i = i + 3
  local tsfield = '_t' .. tag
  local old = tonumber(redis.call('HGET', hash, tsfield) or '-1')
  local now = old
  if ts > old then
    now = ts
    redis.call('HSET', hash, tsfield, ARGV[i - 1])
  end
  if op == 'count' or op == 'sum' or op == 'min' or op == 'max' then
    -- Windowed cells are fields `<tag>|<bucket number>` (start / width).
    local span, g, n = tonumber(ARGV[i]), tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
    i = i + 3
    local cutoff = 0
    if span > 0 then cutoff = math.floor((now - span) / g) end
    for _ = 1, n do
      local b, v = ARGV[i], ARGV[i + 1]
      i = i + 2
      local f = tag
      if span > 0 then f = tag .. '|' .. b end
      if span == 0 or tonumber(b) >= cutoff then
        if op == 'count' then
          redis.call('HINCRBY', hash, f, v)
        elseif op == 'sum' then
          redis.call('HINCRBYFLOAT', hash, f, v)
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
      local stop = math.min(cutoff, math.floor(old / g) + 1)
      for b = math.floor((old - span) / g), stop - 1 do
        redis.call('HDEL', hash, tag .. '|' .. string.format('%d', b))
      end
    end
  elseif op == 'cells' then
    -- avg and vector_avg: one string key of packed cells after a 3-byte
    -- header (the number format, then the count of numbers a cell keeps, u16),
    -- each cell a bucket number (i4, 0 without a window) and its numbers,
    -- little-endian doubles ('d') or single floats ('f', float = "f32":
    -- adding two in doubles and rounding once gives their single sum).
    local key = KEYS[z]
    z = z + 1
    local span, g, fmt, parts, n = tonumber(ARGV[i]), tonumber(ARGV[i + 1]), ARGV[i + 2],
      tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4])
    i = i + 5
    local cutoff = -2147483648
    if span > 0 then cutoff = math.floor((now - span) / g) end
    local header = fmt .. string.char(parts % 256, math.floor(parts / 256))
    local layout = '<i4' .. string.rep(fmt, parts)
    local width = 4 + parts * (fmt == 'f' and 4 or 8)
    local cur = redis.call('GET', key) or ''
    local cells, order = {}, {}
    -- Another header: the spec changed dim or float without a new version;
    -- the delta wins, as in core.
    if string.sub(cur, 1, 3) == header then
      for p = 4, #cur, width do
        local cell = { struct.unpack(layout, cur, p) }
        cell[#cell] = nil
        local b = table.remove(cell, 1)
        if b >= cutoff then
          cells[b] = cell
          order[#order + 1] = b
        end
      end
    end
    for _ = 1, n do
      local b = tonumber(ARGV[i])
      local sum = {}
      for x in string.gmatch(ARGV[i + 1], '[^,]+') do sum[#sum + 1] = tonumber(x) end
      i = i + 2
      if b >= cutoff then
        local old_cell = cells[b]
        if old_cell then
          for k = 1, parts do sum[k] = old_cell[k] + sum[k] end
        else
          order[#order + 1] = b
        end
        cells[b] = sum
      end
    end
    if #order > 0 then
      table.sort(order)
      local out = { header }
      for _, b in ipairs(order) do
        out[#out + 1] = struct.pack(layout, b, unpack(cells[b]))
      end
      redis.call('SET', key, table.concat(out))
    else
      redis.call('DEL', key)
    end
  elseif op == 'last' or op == 'first' then
    local t, id, v = ARGV[i], ARGV[i + 1], ARGV[i + 2]
    i = i + 3
    local ofield = '_o' .. tag
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
    if take then redis.call('HSET', hash, tag, v, ofield, t .. '|' .. id) end
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
