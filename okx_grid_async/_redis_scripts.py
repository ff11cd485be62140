"""What runs inside Redis: the scripts of `RedisRateLimiter`, and how to read their answers.

The model is `LocalRateLimiter`'s, kept in Redis and timed by the Redis
server's clock. Each (user, endpoint) budget is a sorted set of slots, one
member per recent request, scored by its *answer time*: the latest time that
request can have reached OKX, as any process can tell:

- granting (`ACQUIRE`): drop members scored at or before
  ``now - (time_period + safety_margin)``; if fewer than ``max_rate`` remain, add
  a new member scored ``now + lease`` ("in flight": the request may still arrive
  until its answer is back); otherwise answer how long to wait;
- releasing, when the answer or the failure is back (`RELEASE`): re-score the
  member to ``now`` (or later, for a request abandoned in flight that may still
  arrive), and note its *credited* time, ``now`` less the credit its round trip
  earned (the slot's ``arrived``), in a second sorted set;
- penalizing after a 50011 (`PENALIZE`): a "blocked until ``now + time_period +
  safety_margin``" key that granting honours;
- leaving the queue (`LEAVE`), for a waiter that gives up.

A credit counts only for the limiter that earned it (members are named after
their limiter): granting counts that limiter's own members from their credited
times, and every other limiter's from their answer times. The credit is the
shortest recent round trip on this host's path to OKX; another host's path may
be far shorter, so its requests could land inside the window of a request
credited with this host's round trip.

``now`` is always ``redis.call('TIME')`` inside the script, so the hosts' clocks
never matter and each decision is atomic. A new request starts after its grant,
and every member it replaces had arrived more than a window earlier (by its
answer time, or by its credited time for the process that sent both), so no
window of ``time_period`` ever holds more than ``max_rate`` arrivals at OKX,
whichever process sent them.

Across processes, the heads of the processes' queues (see `_redis_waiters`)
queue in Redis: a head that cannot be granted at once takes a ticket (one more
than the last) in the budget's queue, and `ACQUIRE` grants only a head whose
rank in that queue is below the number of slots free for it (those its own
credit freed count for it alone; it takes one of them first). Every poll
refreshes a head's "last seen"; a head not seen for two windows plus a second
(a live one polls at least once a window) is taken for a crashed process and
dropped, so it holds the others up for that long at most.

Slots live only in Redis. Each budget's *epoch* key (no TTL) names the
``run_id`` of the server that has kept its state; `ACQUIRE` finds a missing or
other epoch (a first use, FLUSHALL, a restart, a failover) and holds the budget
for one window, since grants still in OKX's window may be lost.
"""

from __future__ import annotations

import math
from typing import Final

from ._errors import RateLimiterUnavailableError

__all__ = ["ACQUIRE", "LEAVE", "PENALIZE", "RELEASE", "US", "Arguments", "parse_acquire"]

US: Final = 1_000_000  # the scripts count in integer microseconds of the server's clock

# KEYS: slots (sorted set: member -> answer time), blocked-until (string), queue (sorted
# set: waiting head -> ticket), seen (sorted set: waiting head -> last poll), credited
# (sorted set: member -> credited arrival), epoch (string, no TTL: the run_id of the
# server that has kept this budget's state).
# ARGV: max_rate, span_us, lease_us, slots_ttl_ms, member, stale_us, queue_ttl_ms, mine
# (this limiter's member prefix, with its colon), span_ms.
# Returns {granted, wait_us, earliest_us}: if not granted, how long this head should
# sleep before asking again (the time its rank in the queue needs), and how long
# before it could be granted at the earliest, were it first in the queue (what no
# other waiter giving up can shorten).
# Idempotent for one member: a retried call that already granted it grants it again,
# and a retried registration keeps its ticket.
#
# Every live member counts against the budget until a span after its answer time,
# except, for the limiter that earned it, until a span after its credited arrival:
# another host's round trip says nothing of this host's path to OKX.
ACQUIRE: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local member = ARGV[5]
local held = redis.call('ZSCORE', KEYS[1], member)
if held and tonumber(held) > now then return {1, 0, 0} end
local span = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
-- A budget whose state this server has not kept all along (its first use, FLUSHALL,
-- a restart, a failover to a replica) may have lost grants still in OKX's window:
-- hold it for one window. Without the right to run INFO, a restart that keeps the
-- keys goes unnoticed; a missing epoch does not.
local info = redis.pcall('INFO', 'server')
local run_id = type(info) == 'string' and string.match(info, 'run_id:(%x+)') or '?'
if redis.call('GET', KEYS[6]) ~= run_id then
  redis.call('SET', KEYS[6], run_id)
  if tonumber(redis.call('GET', KEYS[2]) or 0) < now + span then
    redis.call('SET', KEYS[2], string.format('%d', now + span), 'PX', ARGV[9])
  end
end
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now - tonumber(ARGV[6]))) do
  redis.call('ZREM', KEYS[3], gone)
  redis.call('ZREM', KEYS[4], gone)
end
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - span)) do
  redis.call('ZREM', KEYS[1], gone)
  redis.call('ZREM', KEYS[5], gone)
end
-- This limiter's view, O(max_rate): the members free for it (its own, freed by their
-- credit), and when each other one frees: to sleep until ("sleeps": an answer not in
-- yet frees a span after now at the earliest; a credited release of its own wakes the
-- head) and at the earliest ("lows": one of its own in flight may yet be credited
-- back to its grant).
local mine = ARGV[8]
local credited = {}
local entries = redis.call('ZRANGE', KEYS[5], 0, -1, 'WITHSCORES')
for i = 1, #entries, 2 do credited[entries[i]] = tonumber(entries[i + 1]) end
local live = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local free = tonumber(ARGV[1]) - #live / 2
local spare, spare_at
local sleeps, lows = {}, {}
for i = 1, #live, 2 do
  local m, score = live[i], tonumber(live[i + 1])
  local own = string.sub(m, 1, #mine) == mine
  if score > now then
    sleeps[#sleeps + 1] = now + span
    if own then
      lows[#lows + 1] = math.max(score - lease + span, now)
    else
      lows[#lows + 1] = now + span
    end
  else
    if own and credited[m] and credited[m] < score then score = credited[m] end
    if score <= now - span then
      free = free + 1
      if not spare or score < spare_at then spare, spare_at = m, score end
    else
      sleeps[#sleeps + 1] = score + span
      lows[#lows + 1] = score + span
    end
  end
end
local blocked = tonumber(redis.call('GET', KEYS[2]) or 0) - now
local rank = redis.call('ZRANK', KEYS[3], member)
local queued = rank
if not queued then rank = redis.call('ZCARD', KEYS[3]) end
if blocked <= 0 and rank < free then
  -- A slot freed by its credit is this limiter's to take, and taking it leaves a slot
  -- free for every process untouched.
  if spare then
    redis.call('ZREM', KEYS[1], spare)
    redis.call('ZREM', KEYS[5], spare)
  end
  redis.call('ZADD', KEYS[1], now + lease, member)
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  if queued then
    redis.call('ZREM', KEYS[3], member)
    redis.call('ZREM', KEYS[4], member)
  end
  return {1, 0, 0}
end
if not queued then
  local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
  local ticket = 1
  if last[2] then ticket = tonumber(last[2]) + 1 end
  redis.call('ZADD', KEYS[3], ticket, member)
end
redis.call('ZADD', KEYS[4], now, member)
redis.call('PEXPIRE', KEYS[3], ARGV[7])
redis.call('PEXPIRE', KEYS[4], ARGV[7])
-- How long until the head of rank r can have a slot: until the (r - free + 1)-th
-- slot to free does. One not granted yet (taken by a head ahead) frees a whole span
-- after an answer that is not in yet.
table.sort(sleeps)
table.sort(lows)
local function until_rank(r, times)
  if r < free then return 0 end
  local at = times[r - free + 1]
  if not at then return span end
  return at - now
end
return {0, math.max(until_rank(rank, sleeps), blocked, 1),
        math.max(until_rank(0, lows), blocked, 1)}
"""

# KEYS: slots, credited.  ARGV: member, span_us, ago_us (see the slot's ``arrived``).  For every
# process the request counts from its answer (now), or from when it may still arrive
# (now - ago, ago < 0); for the limiter that earned it, from its credited arrival
# (now - ago, ago > 0). Plain ZADD, not XX: a request whose lease ran out (and whose
# member was dropped) still arrived before its answer.
RELEASE: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ago = tonumber(ARGV[3])
local answer = now
if ago < 0 then answer = now - ago end
redis.call('ZADD', KEYS[1], answer, ARGV[1])
local keep = math.ceil((answer - now + tonumber(ARGV[2])) / 1000)
if redis.call('PTTL', KEYS[1]) < keep then redis.call('PEXPIRE', KEYS[1], keep) end
if ago > 0 then
  redis.call('ZADD', KEYS[2], now - ago, ARGV[1])
  if redis.call('PTTL', KEYS[2]) < keep then redis.call('PEXPIRE', KEYS[2], keep) end
end
return 1
"""

# KEYS: blocked-until.  ARGV: span_us, span_ms.
PENALIZE: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('SET', KEYS[1], string.format('%d', now + tonumber(ARGV[1])), 'PX', ARGV[2])
return 1
"""

# KEYS: slots, queue, seen.  ARGV: member.  A waiter that gives up leaves the queue,
# and hands back a grant its cancelled task never read.
LEAVE: Final = """
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return redis.call('ZREM', KEYS[1], ARGV[1])
"""


def parse_acquire(reply: object) -> tuple[bool, float, float]:
    """`ACQUIRE`'s answer: granted, else seconds to sleep and seconds at the least.

    Raises:
        RateLimiterUnavailableError: the answer is not the script's.
    """
    if not (isinstance(reply, list) and len(reply) == 3):
        raise RateLimiterUnavailableError(f"unexpected answer from the acquire script: {reply!r}")
    granted, wait_us, earliest_us = reply
    return bool(granted), int(wait_us) / US, int(earliest_us) / US


class Arguments:
    """The scripts' ARGV for one limiter, its seconds in whole micro- or milliseconds.

    ``span`` is the window plus the safety margin; ``stale`` is how long a waiting
    head not seen polling keeps its place in a budget's queue; ``mine`` prefixes
    every member of this limiter.
    """

    __slots__ = (
        "_lease_us",
        "_max_rate",
        "_mine",
        "_span_ms",
        "_span_us",
        "_stale_ms",
        "_stale_us",
        "_ttl_ms",
    )

    def __init__(self, max_rate: int, span: float, lease: float, stale: float, mine: str) -> None:
        self._max_rate = max_rate
        self._span_us = math.ceil(span * US)
        self._span_ms = math.ceil(span * 1000)
        self._lease_us = math.ceil(lease * US)
        self._ttl_ms = math.ceil((lease + span) * 1000)
        self._stale_us = math.ceil(stale * US)
        self._stale_ms = math.ceil(stale * 1000)
        self._mine = f"{mine}:"

    def acquire(self, member: str) -> list[int | str]:
        return [
            self._max_rate,
            self._span_us,
            self._lease_us,
            self._ttl_ms,
            member,
            self._stale_us,
            self._stale_ms,
            self._mine,
            self._span_ms,
        ]

    def release(self, member: str, ago: float) -> list[int | str]:
        """``ago``: seconds, as the slot's ``arrived`` took them."""
        return [member, self._span_us, round(ago * US)]

    def penalize(self) -> list[int | str]:
        return [self._span_us, self._span_ms]
