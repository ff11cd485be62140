"""A rate limiter shared through Redis by every process and host of one OKX user.

The model is `LocalRateLimiter`'s, kept in Redis and timed
by the Redis server's clock. Each (user, endpoint) budget is a sorted set of
slots, one member per recent request, scored by its *answer time*: the latest
time that request can have reached OKX, as any process can tell:

- granting (one Lua script): drop members scored at or before
  ``now - (time_period + safety_margin)``; if fewer than ``max_rate`` remain, add
  a new member scored ``now + lease`` ("in flight": the request may still arrive
  until its answer is back); otherwise answer how long to wait;
- releasing, when the answer or the failure is back (one script): re-score the
  member to ``now`` (or later, for a request abandoned in flight that may still
  arrive), and note its *credited* time, ``now`` less the credit its round trip
  earned (`_Slot.arrived`), in a second sorted set;
- penalizing after a 50011 (one script): a "blocked until ``now + time_period +
  safety_margin``" key that granting honours.

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

Waiters are served first come, first served. Within a process, a budget's waiters
queue in a FIFO and only its head asks Redis. Across processes, the heads queue in
Redis: a head that cannot be granted at once takes a ticket (one more than the
last) in the budget's queue, and the acquire script grants only a head whose rank
in that queue is below the number of slots free for it (those its own credit
freed count for it alone; it takes one of them first). A granted head leaves the
queue and the next waiter of its process queues behind the others, so processes
take turns. A credited release wakes its process's head, whose slot it may have
freed early. Every poll refreshes a head's "last seen"; a head not seen for two
windows plus a second (a live one polls at least once a window) is taken for a
crashed process and dropped, so it holds the others up for that long at most.

Limits of the guarantee, all conservative or bounded:

- The lease bounds how long a crashed process's slot stays in flight; it must
  exceed the longest a request can take to reach OKX (connect timeout plus the
  call's deadline). A request that outlives its lease is counted again from its
  answer.
- Redis ``TIME`` is the server's wall clock: a backward step of that clock
  (not NTP's usual slewing) shortens windows by the step.
- Slots live only in Redis. Each budget's *epoch* key (no TTL) names the
  ``run_id`` of the server that has kept its state; granting finds a missing or
  other epoch (a first use, FLUSHALL, a restart, a failover) and holds the budget
  for one window, since grants still in OKX's window may be lost. A first use
  therefore waits one window, once. Keys evicted for memory while the epoch
  stays go unnoticed (run Redis with ``noeviction``, its default).

Requires Redis 5 or later (scripts replicated by effects) and the ``redis``
package: ``pip install 'okx-grid-async[redis]'``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import secrets
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar

import msgspec

from ._clock import Clock, SystemClock
from ._constants import DEFAULT_SAFETY_MARGIN, GRID_MAX_RATE, GRID_TIME_PERIOD
from ._errors import RateLimiterUnavailableError, WaitTimeoutError
from ._limiter import LimiterStats, check_limits
from ._redaction import redact, split_url

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from redis.commands.core import AsyncScript

__all__ = ["RedisRateLimiter"]

T = TypeVar("T")

logger: Final = logging.getLogger("okx_grid_async")

DEFAULT_LEASE: Final = 30.0
DEFAULT_KEY_PREFIX: Final = "okx-grid"
# For a client this limiter creates (a ``?socket_timeout=`` in the URL wins): an
# unreachable Redis fails a request within seconds instead of hanging it.
_SOCKET_TIMEOUT: Final = 2.0
# Retried connection errors: a pooled connection the server dropped is replaced
# at once, a Redis that is down fails in well under a second. Timeouts are not
# retried: a Redis that does not answer within the socket timeout is in no state
# to answer the next try, and each try would cost the whole timeout again.
_RETRIES: Final = 2
_RETRY_BACKOFF_BASE: Final = 0.05
_RETRY_BACKOFF_CAP: Final = 0.2
# A waiting head not seen for this many windows plus this many seconds is dropped
# from the budget's queue (a live head polls at least once a window).
_STALE_SPANS: Final = 2
_STALE_EXTRA: Final = 1.0
# How long aclose() gives releases under way to reach Redis: one socket timeout,
# the most a single try takes.
_CLOSE_GRACE: Final = _SOCKET_TIMEOUT
_CLOSED: Final = "this RedisRateLimiter is closed; create a new one"
_US: Final = 1_000_000  # the scripts count in integer microseconds of the server's clock

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
_ACQUIRE: Final = """
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

# KEYS: slots, credited.  ARGV: member, span_us, ago_us (see _Slot.arrived).  For every
# process the request counts from its answer (now), or from when it may still arrive
# (now - ago, ago < 0); for the limiter that earned it, from its credited arrival
# (now - ago, ago > 0). Plain ZADD, not XX: a request whose lease ran out (and whose
# member was dropped) still arrived before its answer.
_RELEASE: Final = """
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
_PENALIZE: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('SET', KEYS[1], string.format('%d', now + tonumber(ARGV[1])), 'PX', ARGV[2])
return 1
"""

# KEYS: slots, queue, seen.  ARGV: member.  A waiter that gives up leaves the queue,
# and hands back a grant its cancelled task never read.
_LEAVE: Final = """
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return redis.call('ZREM', KEYS[1], ARGV[1])
"""


def _parse_acquire(reply: object) -> tuple[bool, float, float]:
    """The acquire script's answer: granted, else seconds to sleep and seconds at the least."""
    if not (isinstance(reply, list) and len(reply) == 3):
        raise RateLimiterUnavailableError(f"unexpected answer from the acquire script: {reply!r}")
    granted, wait_us, earliest_us = reply
    return bool(granted), int(wait_us) / _US, int(earliest_us) / _US


class _Waiter:
    """One call waiting for a slot, in its budget's FIFO of this process.

    ``wake`` is the future it sleeps on (None while it runs), resolved when it
    becomes the head, when the limiter closes, or when Redis failed for another
    waiter (``error``). ``in_call`` marks a head whose own Redis call is under way:
    that call decides its fate.
    """

    __slots__ = ("again", "deadline", "error", "in_call", "wake")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.error: RateLimiterUnavailableError | None = None
        self.in_call = False
        self.again = False  # a slot of this process may have freed during its own call
        self.wake: asyncio.Future[None] | None = None

    def rouse(self) -> None:
        wake = self.wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    def poke(self) -> None:
        """A release of this process was credited: ask Redis again, without sleeping."""
        if self.wake is None:
            self.again = True  # its call's answer may predate the release
        self.rouse()


def _poke_head(queue: deque[_Waiter]) -> None:
    if queue:
        queue[0].poke()


class _Budget:
    """This process's side of one (user, endpoint) budget: its keys, FIFO of waiters and figures."""

    __slots__ = ("blocked_key", "credited_key", "keys", "queue", "slots_key", "stats")

    def __init__(self, base: str) -> None:
        self.slots_key = f"{base}:slots"
        self.blocked_key = f"{base}:blocked"
        self.credited_key = f"{base}:credited"
        # The acquire script's KEYS, in its order; the leave script takes slots, queue,
        # seen; the release script slots and credited.
        self.keys = [
            self.slots_key,
            self.blocked_key,
            f"{base}:queue",
            f"{base}:seen",
            self.credited_key,
            f"{base}:epoch",
        ]
        self.queue: deque[_Waiter] = deque()
        self.stats = LimiterStats()


class RedisRateLimiter:
    """A limiter whose budgets live in Redis, shared by every process and host of a user.

    The same guarantee as `LocalRateLimiter` (never more
    than ``max_rate`` arrivals at OKX in any window of ``time_period``, wherever
    it starts), for all processes that use the same Redis and ``key_prefix``.
    Every decision is one atomic Lua script timed by the Redis server's clock;
    waiters are served first come, first served, within a process and across
    processes; see the module documentation for the model and its limits.

    Use it as ``async with RedisRateLimiter(url) as limiter:`` (entering checks
    that Redis answers), or call `aclose()` when done. It is bound to the event
    loop that first uses it; used from another loop or thread, every method but
    `stats()` raises RuntimeError. Redis keys are
    ``<key_prefix>:{<user_key>}:<endpoint>:slots``, ``...:credited``,
    ``...:blocked``, ``...:queue`` and ``...:seen``, which expire once idle, and
    ``...:epoch``, which does not: a budget that Redis lost (or never had) is held
    for one window at its next use.

    Cancelling a task that waits for a slot takes no slot: the slot is only
    added when granted (and a grant the cancelled task never read is handed
    back). A slot's release runs in a task of the limiter, so it reaches Redis
    even if the task leaving the slot is cancelled; if Redis cannot be reached,
    the slot counts as in flight until its lease expires.

    Args:
        url: the Redis URL (``redis://[:password@]host:port/db``, ``rediss://``,
            ``unix://``); it is shown only without its password.
        max_rate: requests allowed per ``time_period`` (OKX: 20).
        time_period: the window, in seconds (OKX: 2.0).
        key_prefix: the namespace of the keys; processes sharing budgets use the same one.
        safety_margin: seconds added to the window against jitter on OKX's side.
        lease: seconds an unanswered request holds its slot at most (bounds how
            long a crashed process blocks a slot); must exceed the longest a
            request can take to reach OKX.
        clock: the clock to sleep on while waiting (time itself is the Redis server's).
        client: a ``redis.asyncio.Redis`` to borrow instead of connecting to
            ``url`` (``url`` then only names it in messages); it is left open.

    Raises:
        ImportError: if the ``redis`` package is missing (``okx-grid-async[redis]``).
        TypeError: if ``url`` is not a str.
        ValueError: for a bad URL, a non-positive rate, period or lease, a
            negative margin, or an empty key prefix.
    """

    __slots__ = (
        "_acquire_script",
        "_bind_lock",
        "_budgets",
        "_client",
        "_clock",
        "_closed",
        "_disconnected",
        "_down_errors",
        "_drained",
        "_errors",
        "_lease_us",
        "_leave_script",
        "_loop",
        "_member_ids",
        "_member_prefix",
        "_owns_client",
        "_penalize_script",
        "_release_script",
        "_secrets",
        "_span",
        "_span_ms",
        "_span_us",
        "_stale_ms",
        "_stale_us",
        "_tasks",
        "_ttl_ms",
        "key_prefix",
        "lease",
        "max_rate",
        "safety_margin",
        "time_period",
        "url",
    )

    def __init__(
        self,
        url: str,
        max_rate: int = GRID_MAX_RATE,
        time_period: float = GRID_TIME_PERIOD,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        *,
        safety_margin: float = DEFAULT_SAFETY_MARGIN,
        lease: float = DEFAULT_LEASE,
        clock: Clock | None = None,
        client: aioredis.Redis | None = None,
    ) -> None:
        try:
            import redis.asyncio as aioredis
            from redis.asyncio.retry import Retry
            from redis.backoff import ExponentialBackoff
            from redis.exceptions import ConnectionError as RedisConnectionError
            from redis.exceptions import RedisError
            from redis.exceptions import TimeoutError as RedisTimeoutError
        except ImportError as exc:
            raise ImportError(
                "RedisRateLimiter needs the redis package: install okx-grid-async[redis]"
            ) from exc
        if not isinstance(url, str):
            raise TypeError(f"url must be a str, not {type(url).__name__}")
        check_limits(max_rate, time_period, safety_margin)
        if not lease > 0:
            raise ValueError(f"lease must be > 0 seconds, not {lease!r}")
        if not isinstance(key_prefix, str) or not key_prefix:
            raise ValueError(f"key_prefix must be a non-empty str, not {key_prefix!r}")
        self.url, self._secrets = split_url(url)
        self.max_rate = max_rate
        self.time_period = float(time_period)
        self.safety_margin = float(safety_margin)
        self.lease = float(lease)
        self.key_prefix = key_prefix
        self._span = self.time_period + self.safety_margin
        self._span_us = math.ceil(self._span * _US)
        self._span_ms = math.ceil(self._span * 1000)
        self._lease_us = math.ceil(self.lease * _US)
        self._ttl_ms = math.ceil((self.lease + self._span) * 1000)
        stale = _STALE_SPANS * self._span + _STALE_EXTRA
        self._stale_us = math.ceil(stale * _US)
        self._stale_ms = math.ceil(stale * 1000)
        self._clock: Clock = clock or SystemClock()
        self._errors: tuple[type[Exception], ...] = (RedisError, OSError)
        # Failures that say Redis itself cannot be reached (not that one command was refused).
        self._down_errors: tuple[type[Exception], ...] = (
            RedisConnectionError,
            RedisTimeoutError,
            OSError,
        )
        if client is None:
            try:
                client = aioredis.from_url(
                    url,
                    socket_timeout=_SOCKET_TIMEOUT,
                    socket_connect_timeout=_SOCKET_TIMEOUT,
                    retry=Retry(
                        ExponentialBackoff(_RETRY_BACKOFF_CAP, _RETRY_BACKOFF_BASE),
                        _RETRIES,
                        supported_errors=(RedisConnectionError,),
                    ),
                )
            except ValueError:
                raise ValueError(f"not a usable Redis URL: {self.url}") from None
            self._owns_client = True
        else:
            self._owns_client = False
        self._client = client
        self._acquire_script: AsyncScript = client.register_script(_ACQUIRE)
        self._release_script: AsyncScript = client.register_script(_RELEASE)
        self._penalize_script: AsyncScript = client.register_script(_PENALIZE)
        self._leave_script: AsyncScript = client.register_script(_LEAVE)
        self._budgets: dict[tuple[str, str], _Budget] = {}
        # Members are unique across processes: a random prefix per limiter, a counter within.
        self._member_prefix = secrets.token_hex(8)
        self._member_ids = itertools.count()
        # Releases and queue departures under way, each in a task of its own (see _spawn).
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False  # refuses new work
        self._disconnected = False  # the client is closed: refuses every Redis call
        self._drained: asyncio.Future[None] | None = None  # while closing: no waiter left
        self._loop: asyncio.AbstractEventLoop | None = None
        self._bind_lock = threading.Lock()

    # ------------------------------------------------------------ life cycle

    async def __aenter__(self) -> Self:
        """Check that Redis answers (PING).

        Raises:
            RateLimiterUnavailableError: if it does not (the connections are then closed).
            RuntimeError: if the limiter is closed, or bound to another event loop.
        """
        self._check_open()
        try:
            await self._call(self._client.ping, "PING")
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections this limiter opened (a borrowed ``client`` is left open).

        Waiters still queued raise RuntimeError at once (a head inside a Redis call
        when the call returns). Their departures from Redis's queues and the releases
        still on their way get up to 2 s (one socket timeout) to reach Redis before
        the connections close. Idempotent; a closed limiter refuses new slots with
        RuntimeError.

        Raises:
            RuntimeError: if the limiter is bound to another event loop.
        """
        if self._closed:
            return
        loop = self._bound_loop()
        self._closed = True
        give_up = loop.time() + _CLOSE_GRACE
        if any(budget.queue for budget in self._budgets.values()):
            self._drained = loop.create_future()
            for budget in self._budgets.values():
                for waiter in budget.queue:
                    waiter.rouse()
            await asyncio.wait([self._drained], timeout=_CLOSE_GRACE)
        while self._tasks and (left := give_up - loop.time()) > 0:
            await asyncio.wait(set(self._tasks), timeout=left)
        if self._tasks:
            logger.warning(
                "rate limiter at %s closed before %d release(s) or queue departure(s) "
                "reached Redis; their slots are held until their lease (%.0f s) expires",
                self.url,
                len(self._tasks),
                self.lease,
            )
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._disconnected = True
        if self._owns_client:
            await self._client.aclose()

    # ------------------------------------------------------------ the protocol

    def slot(
        self, user_key: str, endpoint: str, *, wait_timeout: float | None = None
    ) -> AbstractAsyncContextManager[None]:
        """Wait for a slot of (user_key, endpoint), first come first served; hold it
        while one request is sent and answered.

        By default waits as long as the queue takes. With ``wait_timeout``
        (seconds, > 0), gives up when the wait would pass it: at once, without
        sleeping, when the waiters of this process already queued ahead (those
        whose own bound is not shorter) or the budget's state in Redis make it
        impossible; otherwise when it runs out. Cancelling the wait takes no slot.
        Exiting releases the slot.

        Raises:
            ValueError: (here) if ``wait_timeout`` is not a number > 0.
            WaitTimeoutError: (entering) the wait would pass ``wait_timeout``;
                ``waited`` says how long it waited. No slot was taken.
            RateLimiterUnavailableError: (entering) Redis cannot be reached or
                failed, for this call or for the waiter ahead of it; no slot was
                taken and nothing should be sent.
            RuntimeError: (entering or exiting) if the limiter is closed, or bound
                to another event loop.
        """
        if wait_timeout is not None and not wait_timeout > 0:
            raise ValueError(f"wait_timeout must be > 0 seconds or None, not {wait_timeout!r}")
        return _Slot(self, user_key, endpoint, wait_timeout)

    async def penalize(self, user_key: str, endpoint: str) -> None:
        """Hold every new request of this budget, in every process, for one whole window.

        Called after OKX answered 50011; the block lasts ``time_period + safety_margin``
        seconds of the Redis server's clock.

        Raises:
            RateLimiterUnavailableError: Redis cannot be reached or failed.
            RuntimeError: if the limiter is closed, or bound to another event loop.
        """
        budget = self._budget(user_key, endpoint)
        budget.stats.rejections += 1
        await self._run(
            self._penalize_script, [budget.blocked_key], [self._span_us, self._span_ms], "penalize"
        )

    def stats(self, user_key: str, endpoint: str) -> LimiterStats:
        """This process's figures for one budget (a copy; zeros if it never used it).

        ``granted``, ``waited`` (seconds), ``rejections`` and ``max_waiting`` count
        only this limiter's requests, not other processes'. Safe from any thread.
        """
        budget = self._budgets.get((user_key, endpoint))
        return msgspec.structs.replace(budget.stats) if budget else LimiterStats()

    # ------------------------------------------------------------ internals

    def _bound_loop(self) -> asyncio.AbstractEventLoop:
        """The running loop, which must be the one this limiter first ran in."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            with self._bind_lock:  # two threads using a new limiter at once: one wins
                if self._loop is None:
                    self._loop = loop
            if self._loop is not loop:
                # Its Redis connections and waiters belong to the first loop; used from
                # another they fail with "Event loop is closed", or hang.
                raise RuntimeError(
                    "this RedisRateLimiter is bound to the event loop that first used it; "
                    "create one per event loop (for example inside each asyncio.run())"
                )
        return loop

    def _check_open(self) -> asyncio.AbstractEventLoop:
        if self._closed:
            raise RuntimeError(_CLOSED)
        return self._bound_loop()

    def _budget(self, user_key: str, endpoint: str) -> _Budget:
        self._check_open()
        key = (user_key, endpoint)
        budget = self._budgets.get(key)
        if budget is None:
            # The hash tag keeps every key of a user on one Redis Cluster slot.
            budget = self._budgets[key] = _Budget(f"{self.key_prefix}:{{{user_key}}}:{endpoint}")
        return budget

    def _new_member(self) -> str:
        return f"{self._member_prefix}:{next(self._member_ids)}"

    def _hopeless(self, queue: deque[_Waiter], deadline: float, wait_timeout: float) -> bool:
        """Whether the waiters queued ahead make a wait of at most ``wait_timeout`` impossible.

        The limiter never grants the k-th request less than a span after the
        (k - max_rate)-th, so a call with p waiters ahead that will all be granted
        first waits at least floor(p / max_rate) spans. Only waiters whose own bound
        is not shorter count: one that may give up first may leave the call its slot.
        """
        if len(queue) // self.max_rate * self._span <= wait_timeout:
            return False  # not even if every waiter ahead counted
        ahead = sum(1 for waiter in queue if waiter.deadline >= deadline)
        return ahead // self.max_rate * self._span > wait_timeout

    async def _acquire(
        self, budget: _Budget, endpoint: str, member: str, wait_timeout: float | None
    ) -> None:
        clock = self._clock
        started = clock.monotonic()
        deadline = math.inf if wait_timeout is None else started + wait_timeout
        queue = budget.queue
        if wait_timeout is not None and queue and self._hopeless(queue, deadline, wait_timeout):
            raise WaitTimeoutError(endpoint, 0.0, wait_timeout)
        waiter = _Waiter(deadline)
        queue.append(waiter)
        stats = budget.stats
        stats.max_waiting = max(stats.max_waiting, len(queue))
        try:
            if queue[0] is not waiter:
                # Only the head of the queue asks Redis; the others wait for their turn.
                await self._pause(waiter, deadline - clock.monotonic())
                if queue[0] is not waiter:
                    assert wait_timeout is not None  # woken by nothing else
                    raise WaitTimeoutError(endpoint, clock.monotonic() - started, wait_timeout)
            await self._take(budget, endpoint, member, waiter, started, wait_timeout)
        finally:
            self._dequeue(queue, waiter)
        stats.granted += 1
        stats.waited += clock.monotonic() - started

    async def _take(
        self,
        budget: _Budget,
        endpoint: str,
        member: str,
        waiter: _Waiter,
        started: float,
        wait_timeout: float | None,
    ) -> None:
        """As the head of this process's queue, ask Redis until granted."""
        clock = self._clock
        args: list[int | str] = [
            self.max_rate,
            self._span_us,
            self._lease_us,
            self._ttl_ms,
            member,
            self._stale_us,
            self._stale_ms,
            f"{self._member_prefix}:",
            self._span_ms,
        ]
        asked = False  # whether Redis may hold a queue entry or an unread grant of this call
        try:
            while True:
                asked = waiter.in_call = True
                try:
                    reply = await self._run(self._acquire_script, budget.keys, args, "acquire")
                finally:
                    waiter.in_call = False
                granted, wait, earliest = _parse_acquire(reply)
                if granted:
                    return
                now = clock.monotonic()
                left = waiter.deadline - now
                if earliest > left or left <= 0:
                    assert wait_timeout is not None  # left is inf without one
                    raise WaitTimeoutError(endpoint, now - started, wait_timeout)
                await self._pause(waiter, min(wait, left))
        except RateLimiterUnavailableError:
            raise  # Redis is failing: its queue entry goes stale on its own
        except BaseException:
            if asked:
                # Leave the queue, and hand back a grant the cancellation may have hidden.
                keys = [budget.slots_key, *budget.keys[2:]]
                self._spawn(
                    self._send(
                        self._leave_script,
                        keys,
                        [member],
                        "leave",
                        f"its place in the queue lapses within {self._stale_us / _US:.1f} s",
                    )
                )
            raise

    def _dequeue(self, queue: deque[_Waiter], waiter: _Waiter) -> None:
        was_head = queue[0] is waiter
        queue.remove(waiter)
        if was_head and queue:
            queue[0].rouse()
        drained = self._drained
        if (
            drained is not None
            and not drained.done()
            and not any(b.queue for b in self._budgets.values())
        ):
            drained.set_result(None)

    async def _pause(self, waiter: _Waiter, seconds: float) -> None:
        """Sleep ``seconds`` on the clock (``inf``: until woken), or until ``waiter`` is woken.

        Raises what ended the wait, before or after sleeping: see `_check_waiter`.
        """
        self._check_waiter(waiter)
        if waiter.again:
            waiter.again = False
            return
        loop = asyncio.get_running_loop()
        wake = waiter.wake = loop.create_future()
        try:
            if seconds == math.inf:
                await wake
            elif seconds > 0:
                timer = loop.create_task(self._clock.sleep(seconds))
                try:
                    await asyncio.wait((wake, timer), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    timer.cancel()
        finally:
            waiter.wake = None
        self._check_waiter(waiter)

    def _check_waiter(self, waiter: _Waiter) -> None:
        """Raise what ended the wait: the limiter closed, or Redis failed for another waiter."""
        if self._closed:
            raise RuntimeError(_CLOSED)
        if waiter.error is not None:
            raise RateLimiterUnavailableError(str(waiter.error)) from waiter.error

    def _fail_waiters(self, error: RateLimiterUnavailableError) -> None:
        """Redis cannot be reached: every waiter of this process learns it now.

        Otherwise each head in turn would find it out for itself, one socket
        timeout (and its retries) after another.
        """
        for budget in self._budgets.values():
            for waiter in budget.queue:
                if not waiter.in_call:
                    waiter.error = error
                    waiter.rouse()

    async def _release(self, budget: _Budget, member: str, ago: float) -> None:
        """Re-score the slot to its answer (see `_Slot.arrived` for ``ago``), in a task
        that cancelling the caller does not stop. Raises only RuntimeError (another
        loop) or the caller's own cancellation; a failure to reach Redis is logged."""
        self._bound_loop()
        if self._disconnected:
            logger.warning(
                "rate limiter at %s closed with a request in flight; its slot is held "
                "until its lease (%.0f s) expires",
                self.url,
                self.lease,
            )
            return
        task = self._spawn(
            self._send(
                self._release_script,
                [budget.slots_key, budget.credited_key],
                [member, self._span_us, round(ago * _US)],
                "release",
                f"the slot is held until its lease ({self.lease:.0f} s) expires",
            )
        )
        if ago > 0:
            # Credited, the slot may free for this process before its head's next poll.
            task.add_done_callback(lambda _: _poke_head(budget.queue))
        await asyncio.shield(task)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``coroutine`` in a task of its own, kept until done (aclose() waits for it)."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)  # the loop keeps only a weak reference
        task.add_done_callback(self._tasks.discard)
        return task

    async def _send(
        self,
        script: AsyncScript,
        keys: Sequence[str],
        args: Sequence[int | str],
        what: str,
        if_lost: str,
    ) -> None:
        """Run a script whose loss only costs time (``if_lost`` says how): log, never raise.

        Raising would hide the request's own outcome (a close that went through
        would look failed), and nobody may be waiting for it anyway.
        """
        try:
            await self._run(script, keys, args, what)
        except (RateLimiterUnavailableError, RuntimeError) as exc:
            logger.warning("%s; %s", exc, if_lost)

    async def _run(
        self, script: AsyncScript, keys: Sequence[str], args: Sequence[int | str], what: str
    ) -> object:
        reply: object = await self._call(lambda: script(keys=keys, args=args), what)
        return reply

    async def _call(self, command: Callable[[], Awaitable[T]], what: str) -> T:
        """Run one Redis command, turning Redis failures into RateLimiterUnavailableError."""
        if self._disconnected:
            # A closed pool would silently reconnect (and leak the connection).
            raise RuntimeError(_CLOSED)
        try:
            return await command()
        except self._errors as exc:
            detail = self._scrub(f"{type(exc).__name__}: {exc}")
            error = RateLimiterUnavailableError(
                f"Redis rate limiter at {self.url} unavailable ({what}): {detail}"
            )
            if isinstance(exc, self._down_errors):
                self._fail_waiters(error)
            if any(s in repr(exc) or s in str(exc) for s in self._secrets):
                raise error from None
            raise error from exc

    def _scrub(self, text: str) -> str:
        return redact(text, self._secrets)

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"budgets={len(self._budgets)}"
        return (
            f"RedisRateLimiter(url={self.url!r}, max_rate={self.max_rate}, "
            f"time_period={self.time_period}, key_prefix={self.key_prefix!r}, "
            f"safety_margin={self.safety_margin}, lease={self.lease}, {state})"
        )


class _Slot:
    """One request's hold on a slot of a budget (see `RedisRateLimiter.slot`)."""

    __slots__ = (
        "_ago",
        "_budget",
        "_endpoint",
        "_granted_at",
        "_limiter",
        "_member",
        "_user_key",
        "_wait_timeout",
    )

    def __init__(
        self, limiter: RedisRateLimiter, user_key: str, endpoint: str, wait_timeout: float | None
    ) -> None:
        self._limiter = limiter
        self._user_key = user_key
        self._endpoint = endpoint
        self._wait_timeout = wait_timeout
        self._budget: _Budget | None = None
        self._member = ""
        self._granted_at = 0.0
        self._ago = 0.0

    def arrived(self, ago: float) -> None:
        """The request reached OKX at the latest ``ago`` seconds before the release.

        ``ago`` < 0: it may still arrive until ``-ago`` seconds after the release.
        Every process counts the request from its answer (the release, or ``-ago``
        after it); only this limiter counts it from ``ago`` before the release.
        Capped at the time since the grant (nothing arrives before it is sent) and
        at the lease the other way; anything else (NaN) counts from the release.
        """
        if ago > 0:
            self._ago = min(ago, self._limiter._clock.monotonic() - self._granted_at)
        elif ago < 0:
            self._ago = max(ago, -self._limiter.lease)
        else:
            self._ago = 0.0

    async def __aenter__(self) -> None:
        limiter = self._limiter
        budget = limiter._budget(self._user_key, self._endpoint)
        member = limiter._new_member()
        await limiter._acquire(budget, self._endpoint, member, self._wait_timeout)
        self._budget, self._member = budget, member
        self._granted_at = limiter._clock.monotonic()

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._budget is not None, "exited a slot that was never entered"
        await self._limiter._release(self._budget, self._member, self._ago)
