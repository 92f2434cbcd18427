"""The Lua scripts of :class:`~stepkit.stores.RedisStore`: each write of a run is one script.

Keys, under the store's prefix ``P``:

- ``P r:<run_id>``: a hash, the run; each record field JSON-encoded by Python (so
  floats round-trip exactly: Lua never re-encodes a number), plus ``seq`` (the
  creation order), ``rev`` (bumped by every write), ``_s``/``_p`` (raw status and
  pipeline, for the indexes);
- ``P v:<run_id>``: a hash, the versions: ``<n>`` (JSON of the version without its
  snapshot), ``<n>p`` (the link a rebuild follows: the parent, ``s`` for a
  snapshot, empty for a root) and ``<n>s`` (the snapshot);
- ``P i:all``, ``P i:p:<pipeline>``, ``P i:s:<status>``, ``P i:s:<status>:<pipeline>``:
  sorted sets of runs for ``list()``, scored by ``updated_at``; a member is the
  20-digit ``seq`` then the run id, so equal times list the later created run first;
- ``P i:exp``: a sorted set of run ids scored by ``expires_at`` (for ``purge()``);
- ``P seq``: the creation counter.

Scripts touch keys derived from their arguments, so they need one Redis (or one
primary), not Redis Cluster.
"""

from __future__ import annotations

#: the run fields, in the order scripts receive them (after the prefix and run id)
FIELDS = (
    "run_id",
    "pipeline",
    "status",
    "version",
    "step_name",
    "error",
    "created_at",
    "updated_at",
    "expires_at",
    "owner",
    "lease_until",
    "meta",
    "wake_at",
    "waiting_for",
)

_PRELUDE = """
local P = ARGV[1]
local F = {'run_id', 'pipeline', 'status', 'version', 'step_name', 'error', 'created_at',
    'updated_at', 'expires_at', 'owner', 'lease_until', 'meta', 'wake_at', 'waiting_for'}
local function member(seq, id) return string.format('%020d', seq) .. id end
local function index_keys(status, pipeline)
    return {P .. 'i:all', P .. 'i:p:' .. pipeline, P .. 'i:s:' .. status,
        P .. 'i:s:' .. status .. ':' .. pipeline}
end
local function unindex(status, pipeline, m)
    for _, k in ipairs(index_keys(status, pipeline)) do redis.call('ZREM', k, m) end
end
local function index(status, pipeline, score, m)
    for _, k in ipairs(index_keys(status, pipeline)) do redis.call('ZADD', k, score, m) end
end
-- the due() indexes: suspended runs by wake time, running runs by lease end
local function place(id, status, wake, lease)
    if (status == 'sleeping' or status == 'waiting') and wake ~= '' then
        redis.call('ZADD', P .. 'i:wake', wake, id)
    else
        redis.call('ZREM', P .. 'i:wake', id)
    end
    if status == 'running' and lease ~= '' then
        redis.call('ZADD', P .. 'i:lease', lease, id)
    else
        redis.call('ZREM', P .. 'i:lease', id)
    end
end
local function put_version(vk, n, json, link, snapshot)
    redis.call('HSET', vk, n, json, n .. 'p', link)
    if link == 's' then redis.call('HSET', vk, n .. 's', snapshot) end
end
local function set_fields(rk, first)
    local args = {}
    for i, f in ipairs(F) do
        args[#args + 1] = f
        args[#args + 1] = ARGV[first + i - 1]
    end
    redis.call('HSET', rk, unpack(args))
end
"""

# ARGV: P, run_id, 14 fields, raw status, raw pipeline, score, expires or '', wake_at or '',
#       lease_until or '', first version: n or '', json, link, snapshot
INSERT = (
    _PRELUDE
    + """
local id = ARGV[2]
local rk = P .. 'r:' .. id
if redis.call('EXISTS', rk) == 1 then return 0 end
local seq = redis.call('INCR', P .. 'seq')
set_fields(rk, 3)
redis.call('HSET', rk, 'seq', seq, 'rev', 0, '_s', ARGV[17], '_p', ARGV[18])
index(ARGV[17], ARGV[18], ARGV[19], member(seq, id))
if ARGV[20] ~= '' then redis.call('ZADD', P .. 'i:exp', ARGV[20], id) end
place(id, ARGV[17], ARGV[21], ARGV[22])
if ARGV[23] ~= '' then put_version(P .. 'v:' .. id, ARGV[23], ARGV[24], ARGV[25], ARGV[26]) end
return 1
"""
)

# The compare-and-set of every write of a run but a saved step.
# ARGV: P, run_id, seq, rev, 14 fields, raw status, raw pipeline, score, expires or '',
#       wake_at or '', lease_until or '', version: n or '', json, link, snapshot
# (DELIVER adds: message JSON, idempotency key or '')
CAS = (
    _PRELUDE
    + """
local id = ARGV[2]
local rk = P .. 'r:' .. id
local cur = redis.call('HMGET', rk, 'seq', 'rev', '_s', '_p')
if not cur[1] or cur[1] ~= ARGV[3] or cur[2] ~= ARGV[4] then return 0 end
if DELIVER and ARGV[30] ~= '' and redis.call('SISMEMBER', P .. 'mk:' .. id, ARGV[30]) == 1 then
    return -1
end
local m = member(tonumber(cur[1]), id)
unindex(cur[3], cur[4], m)
set_fields(rk, 5)
redis.call('HSET', rk, '_s', ARGV[19], '_p', ARGV[20])
redis.call('HINCRBY', rk, 'rev', 1)
index(ARGV[19], ARGV[20], ARGV[21], m)
if ARGV[22] ~= '' then
    redis.call('ZADD', P .. 'i:exp', ARGV[22], id)
else
    redis.call('ZREM', P .. 'i:exp', id)
end
place(id, ARGV[19], ARGV[23], ARGV[24])
if ARGV[25] ~= '' then put_version(P .. 'v:' .. id, ARGV[25], ARGV[26], ARGV[27], ARGV[28]) end
if DELIVER then
    redis.call('RPUSH', P .. 'm:' .. id, ARGV[29])
    if ARGV[30] ~= '' then redis.call('SADD', P .. 'mk:' .. id, ARGV[30]) end
end
return 1
"""
)
DELIVER = "local DELIVER = true\n" + CAS
CAS = "local DELIVER = false\n" + CAS

# Saving a step (the hot path): if this owner holds the run at the previous version,
# store the version and advance the run, in one script.
# ARGV: P, run_id, owner (JSON), n, step_name (JSON), now (JSON, also the score),
#       lease_until (JSON) or '' to keep it, version json, link, snapshot
APPEND = (
    _PRELUDE
    + """
local id = ARGV[2]
local rk = P .. 'r:' .. id
local cur = redis.call('HMGET', rk, 'owner', '_s', 'version', 'seq', '_p')
if cur[1] ~= ARGV[3] or cur[2] ~= 'running' or tonumber(cur[3]) ~= tonumber(ARGV[4]) - 1 then
    return 0
end
put_version(P .. 'v:' .. id, ARGV[4], ARGV[8], ARGV[9], ARGV[10])
redis.call('HSET', rk, 'version', ARGV[4], 'step_name', ARGV[5], 'updated_at', ARGV[6])
if ARGV[7] ~= '' then
    redis.call('HSET', rk, 'lease_until', ARGV[7])
    redis.call('ZADD', P .. 'i:lease', ARGV[7], id)
end
redis.call('HINCRBY', rk, 'rev', 1)
index('running', cur[5], ARGV[6], member(tonumber(cur[4]), id))
return 1
"""
)

# The run and the versions that rebuild it at ``upto`` (default: its latest), walked
# back to a snapshot, latest first: {run hash, {n, json, snapshot}, ...}; {} if no run.
# ARGV: P, run_id, upto or ''
RUN_AND_CHAIN = """
local P = ARGV[1]
local id = ARGV[2]
local h = redis.call('HGETALL', P .. 'r:' .. id)
if #h == 0 then return {} end
local latest = 0
for i = 1, #h, 2 do
    if h[i] == 'version' then latest = tonumber(h[i + 1]) or 0 end
end
local n = latest
if ARGV[3] ~= '' then n = tonumber(ARGV[3]) end
local out = {h}
local vk = P .. 'v:' .. id
local seen = 0
while n and n >= 1 and n <= latest and seen <= latest do  -- bounded: cycles end
    local got = redis.call('HMGET', vk, n, n .. 'p', n .. 's')
    if not got[1] then break end
    out[#out + 1] = {tostring(n), got[1], got[3]}
    if got[2] == 's' or got[2] == '' or not got[2] then break end
    n = tonumber(got[2])
    seen = seen + 1
end
return out
"""

# Every version of a run, oldest first, without snapshots; false if there is no run.
# ARGV: P, run_id
HISTORY = """
local P = ARGV[1]
local id = ARGV[2]
local latest = redis.call('HGET', P .. 'r:' .. id, 'version')
if not latest then return false end
local vk = P .. 'v:' .. id
local out = {}
for n = 1, tonumber(latest) do
    local got = redis.call('HGET', vk, n)
    if got then out[#out + 1] = got end
end
return out
"""

# Runs in list() order from one index: {run hash, ...}
# ARGV: P, index key (after P), limit (-1: all)
LIST = """
local P = ARGV[1]
local limit = tonumber(ARGV[3])
local members = redis.call('ZREVRANGE', P .. ARGV[2], 0, limit < 0 and -1 or limit - 1)
local out = {}
for _, m in ipairs(members) do
    local h = redis.call('HGETALL', P .. 'r:' .. string.sub(m, 21))
    if #h > 0 then out[#out + 1] = h end
end
return out
"""

# The runs named, as hashes (false for a missing one). ARGV: P, run_id...
GET_MANY = """
local P = ARGV[1]
local out = {}
for i = 2, #ARGV do
    local h = redis.call('HGETALL', P .. 'r:' .. ARGV[i])
    out[#out + 1] = h
end
return out
"""

# Delete runs: ARGV: P, then (run_id, seq, rev) triples; seq '' deletes unconditionally,
# otherwise only a run still at that seq and rev (purge checked it). Returns how many.
DELETE = (
    _PRELUDE
    + """
local deleted = 0
for i = 2, #ARGV, 3 do
    local id = ARGV[i]
    local rk = P .. 'r:' .. id
    local cur = redis.call('HMGET', rk, 'seq', 'rev', '_s', '_p')
    if cur[1] and (ARGV[i + 1] == '' or (cur[1] == ARGV[i + 1] and cur[2] == ARGV[i + 2])) then
        unindex(cur[3], cur[4], member(tonumber(cur[1]), id))
        redis.call('ZREM', P .. 'i:exp', id)
        redis.call('ZREM', P .. 'i:wake', id)
        redis.call('ZREM', P .. 'i:lease', id)
        redis.call('DEL', rk, P .. 'v:' .. id, P .. 'm:' .. id, P .. 'mk:' .. id)
        deleted = deleted + 1
    end
end
return deleted
"""
)

# The runs whose ids a sorted set holds with a score up to a bound, as hashes, lowest
# first: {run hash, ...}. ARGV: P, index key (after P), max score, limit (-1: all)
BY_SCORE = """
local P = ARGV[1]
local ids = redis.call('ZRANGEBYSCORE', P .. ARGV[2], '-inf', ARGV[3])
local limit = tonumber(ARGV[4])
local out = {}
for _, id in ipairs(ids) do
    local h = redis.call('HGETALL', P .. 'r:' .. id)
    if #h > 0 then out[#out + 1] = h end
    if limit >= 0 and #out >= limit then break end
end
return out
"""

# The mailbox of a run: {message JSON, ...}, or false if there is no run. ARGV: P, run_id
SIGNALS = """
local P = ARGV[1]
if redis.call('EXISTS', P .. 'r:' .. ARGV[2]) == 0 then return false end
return redis.call('LRANGE', P .. 'm:' .. ARGV[2], 0, -1)
"""

SCRIPTS = {
    "insert": INSERT,
    "cas": CAS,
    "deliver": DELIVER,
    "by_score": BY_SCORE,
    "signals": SIGNALS,
    "append": APPEND,
    "run_and_chain": RUN_AND_CHAIN,
    "history": HISTORY,
    "list": LIST,
    "get_many": GET_MANY,
    "delete": DELETE,
}
