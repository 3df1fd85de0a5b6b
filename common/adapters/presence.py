"""Redis: presence (session keys, active_users) and fast counters (user_assignments).

Keys, all under the NAMESPACE prefix: `active_users` (hash: operator id -> user region),
`user_assignments` (hash: id -> live count), `user_last_assigned` (hash: id -> microseconds of
the last pick, the tie-break), and `session:<id>` (one per logged-in user, with the TTL).
Redis only chooses fast; PostgreSQL guards the cap and holds the truth.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import redis

from common.settings import Settings

# Picks an operator for each wanted region in turn (ARGV[4]: comma-separated, each 'REGION' or
# 'REGION:avoid'):
# present (session key alive, else pruned from active_users), of that region or any ('*'),
# under the cap, least loaded, ties to the oldest last pick then the lowest id; the `avoid`
# operator (who just lost the event) only when nobody else is eligible. Counts each pick,
# and stamps it `now + j` so later picks of one batch count as newer.
# Each region (and '*') keeps its operators in queues by load, ordered by (last, id); a pick
# moves the operator to the end of the next queue, so each pick costs O(1) amortised. An
# entry is stale once its operator's load differs from its queue's (picked via another
# bucket), and is skipped. Returns the picks as one comma-separated string ('0': nobody): one
# reply to read instead of an array of hundreds (redis-py reads each element in Python).
_PICK = """
local cap, prefix, now = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local active = redis.call('HGETALL', KEYS[1])
local ids, region = {}, {}
for i = 1, #active, 2 do
  local uid = active[i]
  if redis.call('EXISTS', prefix .. uid) == 1 then
    ids[#ids + 1] = uid
    region[uid] = active[i + 1]
  else
    redis.call('HDEL', KEYS[1], uid)
  end
end
local load, last = {}, {}
if #ids > 0 then
  local loads = redis.call('HMGET', KEYS[2], unpack(ids))
  local lasts = redis.call('HMGET', KEYS[3], unpack(ids))
  for k, uid in ipairs(ids) do
    load[uid] = tonumber(loads[k]) or 0
    last[uid] = tonumber(lasts[k]) or 0
  end
end
table.sort(ids, function(a, b)
  if last[a] ~= last[b] then return last[a] < last[b] end
  return tonumber(a) < tonumber(b)
end)
local buckets = {}
local function bucket(name)
  local b = buckets[name]
  if b == nil then b = {q = {}, head = {}, low = cap}; buckets[name] = b end
  return b
end
local function push(b, uid)
  local l = load[uid]
  if l >= cap then return end
  if b.q[l] == nil then b.q[l] = {}; b.head[l] = 1 end
  table.insert(b.q[l], uid)
  if l < b.low then b.low = l end
end
for _, uid in ipairs(ids) do
  push(bucket(region[uid]), uid)
  push(bucket('*'), uid)
end
local function find(b, avoid)
  for l = b.low, cap - 1 do
    local q = b.q[l]
    if q then
      while b.head[l] <= #q and load[q[b.head[l]]] ~= l do b.head[l] = b.head[l] + 1 end
      for i = b.head[l], #q do
        local uid = q[i]
        if load[uid] == l and uid ~= avoid then return uid end
      end
      if b.head[l] > #q and l == b.low then b.low = l + 1 end
    end
  end
  return nil
end
local picks, touched = {}, {}
local j = 3
for wanted in string.gmatch(ARGV[4], '[^,]+') do
  j = j + 1
  local want, avoid = string.match(wanted, '^([^:]*):?(.*)$')
  local b = buckets[want]
  local best = b and find(b, avoid)
  if best == nil and b and avoid ~= '' and load[avoid] ~= nil and load[avoid] < cap
     and (want == '*' or region[avoid] == want) then
    best = avoid
  end
  if best then
    load[best] = load[best] + 1
    last[best] = now + j
    touched[best] = true
    push(bucket(region[best]), best)
    push(bucket('*'), best)
  end
  picks[#picks + 1] = best or '0'
end
for uid in pairs(touched) do
  redis.call('HSET', KEYS[2], uid, load[uid])
  redis.call('HSET', KEYS[3], uid, string.format('%d', last[uid]))
end
return table.concat(picks, ',')
"""

# Free slots per user region among present operators (pruning stale entries as found),
# summed here: a few (region, slots) pairs to read, not one per operator.
_CAPACITY = """
local cap, prefix = tonumber(ARGV[1]), ARGV[2]
local active = redis.call('HGETALL', KEYS[1])
local sums, order = {}, {}
for i = 1, #active, 2 do
  local uid = active[i]
  if redis.call('EXISTS', prefix .. uid) == 1 then
    local free = cap - tonumber(redis.call('HGET', KEYS[2], uid) or '0')
    if free > 0 then
      local region = active[i + 1]
      if sums[region] == nil then sums[region] = 0; order[#order + 1] = region end
      sums[region] = sums[region] + free
    end
  else
    redis.call('HDEL', KEYS[1], uid)
  end
end
local out = {}
for _, region in ipairs(order) do
  out[#out + 1] = region
  out[#out + 1] = sums[region]
end
return out
"""


class Presence:
    """Sessions, availability and counters in Redis for one namespace."""

    def __init__(self, client: redis.Redis, settings: Settings):
        self.client = client
        self.settings = settings
        self.active_key = settings.name("active_users")
        self.counts_key = settings.name("user_assignments")
        self.last_key = settings.name("user_last_assigned")
        self.session_prefix = settings.name("session:")
        self._pick = client.register_script(_PICK)
        self._capacity = client.register_script(_CAPACITY)

    def session_key(self, user_id: int) -> str:
        return f"{self.session_prefix}{user_id}"

    # -- sessions and availability -------------------------------------------------------

    def touch_session(self, user_id: int, ttl: int | None = None) -> None:
        """Start or refresh a user's session key (login, heartbeat)."""
        self.client.set(self.session_key(user_id), "1", ex=ttl or self.settings.SESSION_TTL)

    def end_session(self, user_id: int) -> None:
        pipe = self.client.pipeline()
        pipe.delete(self.session_key(user_id))
        pipe.hdel(self.active_key, user_id)
        pipe.execute()

    def session_alive(self, user_id: int) -> bool:
        return bool(self.client.exists(self.session_key(user_id)))

    def set_available(self, user_id: int, region: str) -> None:
        self.client.hset(self.active_key, user_id, region)

    def set_unavailable(self, user_id: int) -> None:
        self.client.hdel(self.active_key, user_id)

    def active_users(self) -> dict[int, str]:
        return {int(k): v for k, v in self.client.hgetall(self.active_key).items()}

    # -- counters ------------------------------------------------------------------------

    def set_counts(self, counts: dict[int, int]) -> None:
        """Write PostgreSQL's live counts (after a change commits, and by reconcile)."""
        if counts:
            self.client.hset(self.counts_key, mapping={str(k): v for k, v in counts.items()})

    def counts(self) -> dict[int, int]:
        return {int(k): int(v) for k, v in self.client.hgetall(self.counts_key).items()}

    def replace_all(self, counts: dict[int, int], available: dict[int, str]) -> None:
        """Rebuild counters and availability from PostgreSQL in one transaction (reconcile)."""
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(self.counts_key, self.active_key)
        if counts:
            pipe.hset(self.counts_key, mapping={str(k): v for k, v in counts.items()})
        if available:
            pipe.hset(self.active_key, mapping={str(k): v for k, v in available.items()})
        pipe.execute()

    # -- routing -------------------------------------------------------------------------

    def capacity(self) -> dict[str, int]:
        """Free slots per user region among available, present operators."""
        flat = self._capacity(
            keys=[self.active_key, self.counts_key],
            args=[self.settings.MAX_ASSIGNMENTS, self.session_prefix],
        )
        free: dict[str, int] = {}
        for region, slots in zip(flat[::2], flat[1::2], strict=True):
            free[region] = free.get(region, 0) + int(slots)
        return free

    def pick(self, wanted: Iterable[str]) -> list[int | None]:
        """One operator id (or None) per wanted user region ('*' for any, optionally with
        ':<id>' of an operator to avoid), counted at once."""
        wanted = list(wanted)
        if not wanted:
            return []
        picks = self._pick(
            keys=[self.active_key, self.counts_key, self.last_key],
            args=[self.settings.MAX_ASSIGNMENTS, self.session_prefix, time.time_ns() // 1000,
                  ",".join(wanted)],
        )
        return [int(p) or None for p in picks.split(",")]
