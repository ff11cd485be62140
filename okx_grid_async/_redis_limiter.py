"""A rate limiter shared through Redis by every process and host of one OKX user.

The model is `LocalRateLimiter`'s, kept in Redis and timed
by the Redis server's clock. Each (user, endpoint) budget is a sorted set of
slots, one member per recent request, scored by the latest time that request can
have reached OKX:

- granting (one Lua script): drop members scored at or before
  ``now - (time_period + safety_margin)``; if fewer than ``max_rate`` remain, add
  a new member scored ``now + lease`` ("in flight": the request may still arrive
  until its answer is back); otherwise answer how long to wait;
- releasing, when the answer or the failure is back (one script): re-score the
  member to ``now``;
- penalizing after a 50011 (one script): a "blocked until ``now + time_period +
  safety_margin``" key that granting honours.

``now`` is always ``redis.call('TIME')`` inside the script, so the hosts' clocks
never matter and each decision is atomic. A new request starts after its grant,
and every member dropped at that grant had arrived more than a window earlier,
so no window of ``time_period`` ever holds more than ``max_rate`` arrivals at
OKX, whichever process sent them.

Limits of the guarantee, all conservative or bounded:

- The lease bounds how long a crashed process's slot stays in flight; it must
  exceed the longest a request can take to reach OKX (connect timeout plus the
  call's deadline). A request that outlives its lease is counted again from its
  answer.
- Redis ``TIME`` is the server's wall clock: a backward step of that clock
  (not NTP's usual slewing) shortens windows by the step.
- Within a process, waiters of a budget are served first come, first served and
  only the first of them polls Redis. Across processes the order is approximate:
  whoever polls first after a slot frees takes it.

Requires Redis 5 or later (scripts replicated by effects) and the ``redis``
package: ``pip install 'okx-grid-async[redis]'``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Final, Self, TypeVar
from urllib.parse import unquote

import msgspec

from ._clock import Clock, SystemClock
from ._constants import DEFAULT_SAFETY_MARGIN, GRID_MAX_RATE, GRID_TIME_PERIOD
from ._errors import RateLimiterUnavailableError
from ._limiter import LimiterStats, check_limits

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from redis.commands.core import AsyncScript

__all__ = ["RedisRateLimiter", "redact_url"]

T = TypeVar("T")

logger: Final = logging.getLogger("okx_grid_async")

DEFAULT_LEASE: Final = 30.0
DEFAULT_KEY_PREFIX: Final = "okx-grid"
# For a client this limiter creates (a ``?socket_timeout=`` in the URL wins): an
# unreachable Redis fails a request within seconds instead of hanging it.
_SOCKET_TIMEOUT: Final = 2.0
# Retried connection errors: a pooled connection the server dropped is replaced
# at once, a Redis that is down fails in well under a second.
_RETRIES: Final = 2
_RETRY_BACKOFF_BASE: Final = 0.05
_RETRY_BACKOFF_CAP: Final = 0.2
_REDACTED: Final = "***"
_US: Final = 1_000_000  # the scripts count in integer microseconds of the server's clock

# KEYS: slots (sorted set), blocked-until (string).
# ARGV: max_rate, span_us, lease_us, ttl_ms, member.  Returns {granted, wait_us}.
# Idempotent for one member: a retried call that already granted it grants it again.
_ACQUIRE: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local held = redis.call('ZSCORE', KEYS[1], ARGV[5])
if held and tonumber(held) > now then return {1, 0} end
local blocked = tonumber(redis.call('GET', KEYS[2]) or 0)
if blocked > now then return {0, blocked - now} end
local span = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - span)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[5])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return {1, 0}
end
local oldest = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2])
if oldest > now then
  -- Every slot is in flight: the earliest one can free is a whole span after its answer.
  return {0, span}
end
return {0, oldest + span - now}
"""

# KEYS: slots.  ARGV: member, span_ms.  Plain ZADD, not XX: a request whose lease
# ran out (and whose member was dropped) still arrived before its answer.
_RELEASE: Final = """
local t = redis.call('TIME')
redis.call('ZADD', KEYS[1], tonumber(t[1]) * 1000000 + tonumber(t[2]), ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
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

# KEYS: slots.  ARGV: member.  A grant whose answer a cancelled task never read.
_FORGET: Final = """
return redis.call('ZREM', KEYS[1], ARGV[1])
"""


def redact_url(url: str) -> str:
    """``url`` with any password (in the user info or a ``password=`` query) replaced by ``***``."""
    return _split_secrets(url)[0]


def _split_secrets(url: str) -> tuple[str, tuple[str, ...]]:
    """``url`` redacted, and every string in it that may be a password (raw and decoded).

    Plain string surgery rather than urllib, so the rest of the URL is shown as written.
    """
    found: list[str] = []
    head, qmark, tail = url.partition("?")
    scheme, sep, rest = head.partition("://")
    if sep:
        netloc, slash, path = rest.partition("/")
        userinfo, at, hostport = netloc.rpartition("@")
        if at:
            user, colon, password = userinfo.partition(":")
            # Without a colon the user info may be a password written in the wrong place.
            found.append(password if colon else userinfo)
            netloc = f"{user}:{_REDACTED}@{hostport}" if colon else f"{_REDACTED}@{hostport}"
        head = f"{scheme}://{netloc}{slash}{path}"
    if qmark:
        query, hashmark, fragment = tail.partition("#")
        pieces = []
        for piece in query.split("&"):
            name, eq, value = piece.partition("=")
            if eq and unquote(name).lower() == "password":
                found.append(value)
                value = _REDACTED
            pieces.append(f"{name}{eq}{value}")
        head = f"{head}?{'&'.join(pieces)}{hashmark}{fragment}"
    candidates = {s for s in found if s} | {unquote(s) for s in found if s}
    return head, tuple(sorted(candidates, key=len, reverse=True))


def _granted_and_wait(reply: object) -> tuple[bool, int]:
    """The acquire script's answer: whether the slot was granted, else microseconds to wait."""
    if not (isinstance(reply, list) and len(reply) == 2):
        raise RateLimiterUnavailableError(f"unexpected answer from the acquire script: {reply!r}")
    granted, wait_us = reply
    return bool(granted), max(int(wait_us), 1)


class _Budget:
    """This process's side of one (user, endpoint) budget: its keys, FIFO lock and figures."""

    __slots__ = ("blocked_key", "lock", "slots_key", "stats", "waiting")

    def __init__(self, slots_key: str, blocked_key: str) -> None:
        self.slots_key = slots_key
        self.blocked_key = blocked_key
        self.lock = asyncio.Lock()
        self.stats = LimiterStats()
        self.waiting = 0


class RedisRateLimiter:
    """A limiter whose budgets live in Redis, shared by every process and host of a user.

    The same guarantee as `LocalRateLimiter` (never more
    than ``max_rate`` arrivals at OKX in any window of ``time_period``, wherever
    it starts), for all processes that use the same Redis and ``key_prefix``.
    Every decision is one atomic Lua script timed by the Redis server's clock;
    see the module documentation for the model and its limits.

    Use it as ``async with RedisRateLimiter(url) as limiter:`` (entering checks
    that Redis answers), or call `aclose()` when done. Use it from one event
    loop. Redis keys are ``<key_prefix>:{<user_key>}:<endpoint>:slots`` and
    ``...:blocked``; they expire once idle for a window (plus the lease).

    Cancelling a task that waits for a slot takes no slot: the slot is only
    added when granted (and a grant the cancelled task never read is handed
    back). A task cancelled while holding a slot releases it on the way out; if
    even that cannot reach Redis, the slot counts as in flight until its lease
    expires.

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
        "_budgets",
        "_client",
        "_clock",
        "_closed",
        "_errors",
        "_forget_script",
        "_lease_us",
        "_loop",
        "_member_ids",
        "_member_prefix",
        "_owns_client",
        "_penalize_script",
        "_release_script",
        "_secrets",
        "_span_ms",
        "_span_us",
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
            from redis.exceptions import RedisError
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
        self.url, self._secrets = _split_secrets(url)
        self.max_rate = max_rate
        self.time_period = float(time_period)
        self.safety_margin = float(safety_margin)
        self.lease = float(lease)
        self.key_prefix = key_prefix
        span = self.time_period + self.safety_margin
        self._span_us = math.ceil(span * _US)
        self._span_ms = math.ceil(span * 1000)
        self._lease_us = math.ceil(self.lease * _US)
        self._ttl_ms = math.ceil((self.lease + span) * 1000)
        self._clock: Clock = clock or SystemClock()
        self._errors: tuple[type[Exception], ...] = (RedisError, OSError)
        if client is None:
            try:
                client = aioredis.from_url(
                    url,
                    socket_timeout=_SOCKET_TIMEOUT,
                    socket_connect_timeout=_SOCKET_TIMEOUT,
                    retry=Retry(
                        ExponentialBackoff(_RETRY_BACKOFF_CAP, _RETRY_BACKOFF_BASE), _RETRIES
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
        self._forget_script: AsyncScript = client.register_script(_FORGET)
        self._budgets: dict[tuple[str, str], _Budget] = {}
        # Members are unique across processes: a random prefix per limiter, a counter within.
        self._member_prefix = secrets.token_hex(8)
        self._member_ids = itertools.count()
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------ life cycle

    async def __aenter__(self) -> Self:
        """Check that Redis answers (PING).

        Raises:
            RateLimiterUnavailableError: if it does not (the connections are then closed).
            RuntimeError: if the limiter is closed.
        """
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

        Idempotent; a closed limiter refuses new slots with RuntimeError.
        """
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            await self._client.aclose()

    # ------------------------------------------------------------ the protocol

    @asynccontextmanager
    async def slot(
        self, user_key: str, endpoint: str, *, wait_timeout: float | None = None
    ) -> AsyncIterator[None]:
        """Wait for a slot of (user_key, endpoint), hold it while the request runs.

        Raises:
            RateLimiterUnavailableError: Redis cannot be reached or failed; no slot
                was taken and nothing should be sent.
            RuntimeError: if the limiter is closed.
        """
        budget = self._budget(user_key, endpoint)
        member = f"{self._member_prefix}:{next(self._member_ids)}"
        await self._acquire(budget, member)
        try:
            yield
        finally:
            await self._release(budget, member)

    async def penalize(self, user_key: str, endpoint: str) -> None:
        """Hold every new request of this budget, in every process, for one whole window.

        Called after OKX answered 50011; the block lasts ``time_period + safety_margin``
        seconds of the Redis server's clock.

        Raises:
            RateLimiterUnavailableError: Redis cannot be reached or failed.
            RuntimeError: if the limiter is closed.
        """
        budget = self._budget(user_key, endpoint)
        budget.stats.rejections += 1
        await self._run(
            self._penalize_script, [budget.blocked_key], [self._span_us, self._span_ms], "penalize"
        )

    def stats(self, user_key: str, endpoint: str) -> LimiterStats:
        """This process's figures for one budget (a copy; zeros if it never used it).

        ``granted``, ``waited`` (seconds), ``rejections`` and ``max_waiting`` count
        only this limiter's requests, not other processes'.
        """
        budget = self._budgets.get((user_key, endpoint))
        return msgspec.structs.replace(budget.stats) if budget else LimiterStats()

    # ------------------------------------------------------------ internals

    def _budget(self, user_key: str, endpoint: str) -> _Budget:
        if self._closed:
            raise RuntimeError("this RedisRateLimiter is closed; create a new one")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            # Its Redis connections and FIFO locks belong to the first loop; used from
            # another they fail with "Event loop is closed" or worse.
            raise RuntimeError(
                "this RedisRateLimiter is bound to the event loop that first used it; "
                "create one per event loop (for example inside each asyncio.run())"
            )
        key = (user_key, endpoint)
        budget = self._budgets.get(key)
        if budget is None:
            # The hash tag keeps both keys of a user on one Redis Cluster slot.
            base = f"{self.key_prefix}:{{{user_key}}}:{endpoint}"
            budget = self._budgets[key] = _Budget(f"{base}:slots", f"{base}:blocked")
        return budget

    async def _acquire(self, budget: _Budget, member: str) -> None:
        clock = self._clock
        stats = budget.stats
        started = clock.monotonic()
        budget.waiting += 1
        stats.max_waiting = max(stats.max_waiting, budget.waiting)
        keys = [budget.slots_key, budget.blocked_key]
        args: list[int | str] = [self.max_rate, self._span_us, self._lease_us, self._ttl_ms, member]
        try:
            # Local waiters queue here, so only the first of them polls Redis.
            async with budget.lock:
                while True:
                    try:
                        reply = await self._run(self._acquire_script, keys, args, "acquire")
                    except asyncio.CancelledError:
                        # The script may have granted before the cancellation reached
                        # this task: hand the slot back, since nothing will be sent.
                        await self._forget(budget, member)
                        raise
                    granted, wait_us = _granted_and_wait(reply)
                    if granted:
                        break
                    await clock.sleep(wait_us / _US)
        finally:
            budget.waiting -= 1
        stats.granted += 1
        stats.waited += clock.monotonic() - started

    async def _release(self, budget: _Budget, member: str) -> None:
        """Re-score the slot to the server's now; never raises (the lease is the fallback)."""
        if self._closed:
            logger.warning(
                "rate limiter at %s closed with a request in flight; its slot is held "
                "until its lease (%.0f s) expires",
                self.url,
                self.lease,
            )
            return
        try:
            await self._run(
                self._release_script, [budget.slots_key], [member, self._span_ms], "release"
            )
        except RateLimiterUnavailableError as exc:
            # Raising here would hide the request's own outcome (a close that went
            # through would look failed); the slot stays in flight until its lease.
            logger.warning("%s; the slot is held until its lease (%.0f s) expires", exc, self.lease)

    async def _forget(self, budget: _Budget, member: str) -> None:
        if self._closed:
            return
        try:
            await self._run(self._forget_script, [budget.slots_key], [member], "forget")
        except RateLimiterUnavailableError as exc:
            logger.warning("%s; the slot is held until its lease (%.0f s) expires", exc, self.lease)

    async def _run(
        self, script: AsyncScript, keys: Sequence[str], args: Sequence[int | str], what: str
    ) -> object:
        reply: object = await self._call(lambda: script(keys=keys, args=args), what)
        return reply

    async def _call(self, command: Callable[[], Awaitable[T]], what: str) -> T:
        """Run one Redis command, turning Redis failures into RateLimiterUnavailableError."""
        if self._closed:
            # A closed pool would silently reconnect (and leak the connection).
            raise RuntimeError("this RedisRateLimiter is closed; create a new one")
        try:
            return await command()
        except self._errors as exc:
            detail = self._scrub(f"{type(exc).__name__}: {exc}")
            error = RateLimiterUnavailableError(
                f"Redis rate limiter at {self.url} unavailable ({what}): {detail}"
            )
            if any(s in repr(exc) or s in str(exc) for s in self._secrets):
                raise error from None
            raise error from exc

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, _REDACTED)
        return text

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"budgets={len(self._budgets)}"
        return (
            f"RedisRateLimiter(url={self.url!r}, max_rate={self.max_rate}, "
            f"time_period={self.time_period}, key_prefix={self.key_prefix!r}, "
            f"safety_margin={self.safety_margin}, lease={self.lease}, {state})"
        )
