"""A rate limiter shared through Redis by every process and host of one OKX user.

`RedisRateLimiter` keeps `LocalRateLimiter`'s model in Redis, timed by the Redis
server's clock: one atomic Lua script per decision (`_redis_scripts` has the
model and the scripts), over one client (`_redis_link`), with this process's
waiters queued first come, first served (`_redis_waiters`).

Limits of the guarantee, all conservative or bounded:

- The lease bounds how long a crashed process's slot stays in flight; it must
  exceed the longest a request can take to reach OKX (connect timeout plus the
  call's deadline). A request that outlives its lease is counted again from its
  answer.
- Redis ``TIME`` is the server's wall clock: a backward step of that clock
  (not NTP's usual slewing) shortens windows by the step.
- Slots live only in Redis. A budget whose state Redis lost (or never had) is
  held for one window at its next use, so a first use waits one window, once.
  Keys evicted for memory while the budget's epoch key stays go unnoticed (run
  Redis with ``noeviction``, its default).

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
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Final, Self

import msgspec

from ._clock import Clock, SystemClock
from ._constants import (
    DEFAULT_SAFETY_MARGIN,
    GRID_MAX_RATE,
    GRID_TIME_PERIOD,
    REDIS_SOCKET_TIMEOUT,
)
from ._errors import RateLimiterUnavailableError, WaitTimeoutError
from ._limiter import LimiterStats, check_limits
from ._redaction import redact, split_url
from ._redis_scripts import Arguments, parse_acquire
from ._redis_waiters import CLOSED, Budget, Budgets, Waiter

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from ._redis_link import RedisLink

__all__ = ["RedisRateLimiter"]

logger: Final = logging.getLogger("okx_grid_async")

DEFAULT_LEASE: Final = 30.0
DEFAULT_KEY_PREFIX: Final = "okx-grid"
# A waiting head not seen for this many windows plus this many seconds is dropped
# from the budget's queue (a live head polls at least once a window).
_STALE_SPANS: Final = 2
_STALE_EXTRA: Final = 1.0
# How long aclose() gives releases under way to reach Redis: one socket timeout,
# the most a single try takes.
_CLOSE_GRACE: Final = REDIS_SOCKET_TIMEOUT


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
        "_args",
        "_bind_lock",
        "_budgets",
        "_clock",
        "_closed",
        "_link",
        "_loop",
        "_member_ids",
        "_member_prefix",
        "_secrets",
        "_span",
        "_stale",
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
            from ._redis_link import RedisLink, connect  # imports redis
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
        self._stale = _STALE_SPANS * self._span + _STALE_EXTRA
        # Members are unique across processes: a random prefix per limiter, a counter within.
        self._member_prefix = secrets.token_hex(8)
        self._member_ids = itertools.count()
        self._args = Arguments(max_rate, self._span, self.lease, self._stale, self._member_prefix)
        self._clock: Clock = clock or SystemClock()
        self._link: RedisLink = RedisLink(
            connect(url, self.url) if client is None else client,
            owns_client=client is None,
            shown_url=self.url,
            secrets=self._secrets,
            scrub=self._scrub,
            on_down=self._fail_waiters,
        )
        self._budgets = Budgets(key_prefix)
        self._closed = False  # refuses new work
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
            await self._link.ping()
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
        await self._budgets.drain(_CLOSE_GRACE)
        await self._link.close(
            give_up, f"their slots are held until their lease ({self.lease:.0f} s) expires"
        )

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
        link = self._link
        await link.run(link.penalize, [budget.blocked_key], self._args.penalize(), "penalize")

    def stats(self, user_key: str, endpoint: str) -> LimiterStats:
        """This process's figures for one budget (a copy; zeros if it never used it).

        ``granted``, ``waited`` (seconds), ``rejections`` and ``max_waiting`` count
        only this limiter's requests, not other processes'. Safe from any thread.
        """
        budget = self._budgets.find(user_key, endpoint)
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
            raise RuntimeError(CLOSED)
        return self._bound_loop()

    def _budget(self, user_key: str, endpoint: str) -> Budget:
        self._check_open()
        return self._budgets.get(user_key, endpoint)

    def _new_member(self) -> str:
        return f"{self._member_prefix}:{next(self._member_ids)}"

    async def _acquire(
        self, budget: Budget, endpoint: str, member: str, wait_timeout: float | None
    ) -> None:
        clock = self._clock
        started = clock.monotonic()
        deadline = math.inf if wait_timeout is None else started + wait_timeout
        queue = budget.queue
        if (
            wait_timeout is not None
            and queue
            and budget.hopeless(deadline, wait_timeout, self.max_rate, self._span)
        ):
            raise WaitTimeoutError(endpoint, 0.0, wait_timeout)
        waiter = Waiter(deadline)
        budget.enqueue(waiter)
        try:
            if queue[0] is not waiter:
                # Only the head of the queue asks Redis; the others wait for their turn.
                await self._pause(waiter, deadline - clock.monotonic())
                if queue[0] is not waiter:
                    assert wait_timeout is not None  # woken by nothing else
                    raise WaitTimeoutError(endpoint, clock.monotonic() - started, wait_timeout)
            await self._take(budget, endpoint, member, waiter, started, wait_timeout)
        finally:
            self._budgets.dequeue(budget, waiter)
        budget.stats.granted += 1
        budget.stats.waited += clock.monotonic() - started

    async def _take(
        self,
        budget: Budget,
        endpoint: str,
        member: str,
        waiter: Waiter,
        started: float,
        wait_timeout: float | None,
    ) -> None:
        """As the head of this process's queue, ask Redis until granted."""
        clock, link = self._clock, self._link
        args = self._args.acquire(member)
        asked = False  # whether Redis may hold a queue entry or an unread grant of this call
        try:
            while True:
                asked = waiter.in_call = True
                try:
                    reply = await link.run(link.acquire, budget.keys, args, "acquire")
                finally:
                    waiter.in_call = False
                granted, wait, earliest = parse_acquire(reply)
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
                link.spawn(
                    link.send(
                        link.leave,
                        budget.leave_keys,
                        [member],
                        "leave",
                        f"its place in the queue lapses within {self._stale:.1f} s",
                    )
                )
            raise

    async def _pause(self, waiter: Waiter, seconds: float) -> None:
        """Sleep ``seconds`` on the clock (``inf``: until woken), or until ``waiter`` is woken.

        Raises what ended the wait, before or after sleeping: see `_check_waiter`.
        """
        self._check_waiter(waiter)
        await waiter.pause(seconds, self._clock)
        self._check_waiter(waiter)

    def _check_waiter(self, waiter: Waiter) -> None:
        """Raise what ended the wait: the limiter closed, or Redis failed for another waiter."""
        if self._closed:
            raise RuntimeError(CLOSED)
        if waiter.error is not None:
            raise RateLimiterUnavailableError(str(waiter.error)) from waiter.error

    def _fail_waiters(self, error: RateLimiterUnavailableError) -> None:
        """Redis cannot be reached: every waiter of this process learns it now.

        Otherwise each head in turn would find it out for itself, one socket
        timeout (and its retries) after another.
        """
        self._budgets.fail(error)

    async def _release(self, budget: Budget, member: str, ago: float) -> None:
        """Re-score the slot to its answer (see `_Slot.arrived` for ``ago``), in a task
        that cancelling the caller does not stop. Raises only RuntimeError (another
        loop) or the caller's own cancellation; a failure to reach Redis is logged."""
        self._bound_loop()
        link = self._link
        if link.disconnected:
            logger.warning(
                "rate limiter at %s closed with a request in flight; its slot is held "
                "until its lease (%.0f s) expires",
                self.url,
                self.lease,
            )
            return
        task = link.spawn(
            link.send(
                link.release,
                [budget.slots_key, budget.credited_key],
                self._args.release(member, ago),
                "release",
                f"the slot is held until its lease ({self.lease:.0f} s) expires",
            )
        )
        if ago > 0:
            # Credited, the slot may free for this process before its head's next poll.
            task.add_done_callback(lambda _: budget.poke_head())
        await asyncio.shield(task)

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
        self._budget: Budget | None = None
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
