"""Rate limiting: never more than ``max_rate`` arrivals at OKX in any window of ``time_period``.

The model (see docs/rate-limiting.md): each (user, endpoint) budget is a set of
``max_rate`` *slots*. A slot holds the latest time its request can have reached
OKX, as far as the next request can tell: "in flight" (infinity) from the moment
it is granted until the answer, or the failure, comes back; then that time less
the request's credit (`Slot.arrived`, from `RoundTrips`). A new request may start
once the oldest slot is at least ``time_period + safety_margin`` in the past, and
it takes that slot: two requests of one slot's chain reach OKX more than
``time_period`` apart, so no window holds more than ``max_rate`` arrivals.

aiolimiter's leaky bucket cannot express this bound at full speed: a bucket of
size *b* draining at *r*/s admits *b + r·T* in a window *T* (up to 40 for
``AsyncLimiter(20, 2)``; 39 and 40 have been measured), so the guarantee forces
*b = 1, r = 19/T* and at most 95 % of the budget before any jitter margin. This
module is the smallest correct alternative.

One budget is one user's at OKX, whichever thread or event loop spends it, so a
budget's state sits behind a `threading.Lock` and each waiter is woken on its own
loop (``call_soon_threadsafe`` when the waker runs on another).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import math
import threading
from asyncio import FIRST_COMPLETED
from collections import deque
from collections.abc import Awaitable, Generator
from types import TracebackType
from typing import Any, Final, Protocol, runtime_checkable

import msgspec

from ._clock import Clock, SystemClock
from ._constants import DEFAULT_SAFETY_MARGIN, GRID_MAX_RATE, GRID_TIME_PERIOD
from ._errors import WaitTimeoutError
from ._validation import check_seconds

__all__ = [
    "DONE",
    "LimiterStats",
    "LocalRateLimiter",
    "RateLimiter",
    "Slot",
    "check_limits",
    "check_wait_timeout",
    "default_rate_limiter",
]


class LimiterStats(msgspec.Struct, kw_only=True):
    """Figures for one (user, endpoint) budget.

    ``waited`` is the total time, in seconds, that requests spent waiting for a slot.
    """

    granted: int = 0
    waited: float = 0.0
    rejections: int = 0
    max_waiting: int = 0


class Slot(Protocol):
    """A hold on one rate-limit slot: ``async with limiter.slot(...):``.

    A slot may also have ``arrived(ago: float)``, which `GridClient` calls just
    before exiting: the request reached OKX at the latest ``ago`` seconds before
    the release (``ago`` < 0: it may still arrive until ``-ago`` seconds after).
    A slot without it counts its request as arriving at the release, which is
    sound but uses less of the budget when OKX is far away.
    """

    def __aenter__(self) -> Awaitable[None]: ...

    def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
        /,
    ) -> Awaitable[bool | None]: ...


@runtime_checkable
class RateLimiter(Protocol):
    """What `GridClient` needs from a limiter."""

    def slot(self, user_key: str, endpoint: str, *, wait_timeout: float | None = None) -> Slot:
        """Wait for a slot, first come first served, and hold it while one request runs.

        Entering waits as long as the queue takes. With ``wait_timeout``
        (seconds), it raises `WaitTimeoutError` when the wait would pass the
        bound, and at once, without waiting, when the queue already ahead of
        the call makes the bound impossible. Cancelling the wait takes no slot.

        Exiting releases the slot. `GridClient` exits outside the call's
        deadline and shielded from cancellation, so a release that awaits
        (Redis) can neither turn a known answer into an error nor be cut short.
        """
        ...

    async def penalize(self, user_key: str, endpoint: str) -> None:
        """OKX answered 50011: hold every new request of this budget for a whole window."""
        ...

    def stats(self, user_key: str, endpoint: str) -> LimiterStats:
        """The figures of one budget (zeros if it was never used)."""
        ...


def check_limits(max_rate: int, time_period: float, safety_margin: float) -> None:
    """Raise ValueError unless the rate is a positive int, the period > 0 and the margin >= 0."""
    if isinstance(max_rate, bool) or not isinstance(max_rate, int) or max_rate < 1:
        raise ValueError(f"max_rate must be a positive int, not {max_rate!r}")
    if not time_period > 0:
        raise ValueError(f"time_period must be > 0 seconds, not {time_period!r}")
    if not safety_margin >= 0:
        raise ValueError(f"safety_margin must be >= 0 seconds, not {safety_margin!r}")


def check_wait_timeout(wait_timeout: object) -> float | None:
    """``wait_timeout`` as float seconds, or None for no bound.

    Raises:
        ValueError: unless it is None or a finite number of seconds > 0.
    """
    return None if wait_timeout is None else check_seconds(wait_timeout, "wait_timeout")


class _Waiter:
    """A queued request: the loop it waits on and the future that wakes it to look again."""

    __slots__ = ("future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _Done:
    """An awaitable that is already done, on any event loop: no future, no task."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        yield from ()


# What LocalRateLimiter's slot hands back when entering needs no wait, and on every
# release: `GridClient` tells it apart, and skips awaiting it.
DONE: Final = _Done()


class _Window:
    """One (user, endpoint) budget: the arrived-by times of finished requests, the
    count in flight, and the FIFO queue of waiters, all behind one thread lock.

    ``done`` is a heap of arrived-by times (a request's answer time less the credit
    its round trip earns, see `Slot.arrived`, so not in release order) and, with
    ``in_flight``, never more than ``max_rate`` entries: the oldest slot is
    ``done[0]``, and taking it is a ``heappop``, O(log n) whatever the rate.
    """

    __slots__ = ("blocked_until", "done", "in_flight", "lock", "max_rate", "stats", "waiters")

    def __init__(self, max_rate: int) -> None:
        self.max_rate = max_rate
        self.done: list[float] = []
        self.in_flight = 0
        self.blocked_until = -math.inf
        self.stats = LimiterStats()
        self.waiters: deque[_Waiter] = deque()
        self.lock = threading.Lock()

    def ready_at(self, span: float) -> float:
        """When a new request may start: -inf for now, inf until an answer frees a slot."""
        done = self.done
        if len(done) + self.in_flight < self.max_rate:
            oldest = -math.inf
        elif done:
            oldest = done[0] + span
        else:
            oldest = math.inf
        return max(oldest, self.blocked_until)

    def earliest(self, position: int, now: float, span: float) -> float:
        """A lower bound of when the request ``position`` places behind the head can start.

        The k-th grant from now takes the k-th oldest slot (free slots first, then
        answered ones; one in flight frees a span after an answer that comes
        ``now`` at the earliest), and no grant comes less than a span after the
        grant ``max_rate`` places before it.
        """
        rounds, index = divmod(position, self.max_rate)
        free = self.max_rate - len(self.done) - self.in_flight
        if index < free:
            base = now
        elif index - free < len(self.done):
            base = max(now, heapq.nsmallest(index - free + 1, self.done)[-1] + span)
        else:
            base = now + span
        return max(base, self.blocked_until) + rounds * span

    def take(self) -> None:
        if len(self.done) + self.in_flight >= self.max_rate:
            heapq.heappop(self.done)
        self.in_flight += 1

    def wake_head(self) -> None:
        """Tell the first waiter to look again, on its own loop. Call with the lock held."""
        if not self.waiters:
            return
        head = self.waiters[0]
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if head.loop is running:
            _wake(head.future)
        else:
            # A closed loop raises RuntimeError: that waiter is gone with it.
            with contextlib.suppress(RuntimeError):
                head.loop.call_soon_threadsafe(_wake, head.future)


class LocalRateLimiter:
    """The in-process limiter: one budget per (user, endpoint), shared by every client using it.

    ``GridClient(rate_limiter=None)`` uses `default_rate_limiter()`, one per
    process, so every client of a user shares that user's budgets. Waiters are
    served first come, first served. Thread-safe: clients on several threads,
    each with its own event loop, share one budget, and each waiter is woken on
    its own loop.

    Args:
        max_rate: requests allowed per ``time_period`` (OKX: 20).
        time_period: the window, in seconds (OKX: 2.0).
        safety_margin: seconds added to the window against jitter on OKX's side.
        clock: the clock to read and sleep on (tests pass a FakeClock).

    Raises:
        ValueError: for a non-positive rate or period, or a negative margin.
    """

    __slots__ = (
        "_clock",
        "_span",
        "_windows",
        "_windows_lock",
        "max_rate",
        "safety_margin",
        "time_period",
    )

    def __init__(
        self,
        max_rate: int = GRID_MAX_RATE,
        time_period: float = GRID_TIME_PERIOD,
        *,
        safety_margin: float = DEFAULT_SAFETY_MARGIN,
        clock: Clock | None = None,
    ) -> None:
        check_limits(max_rate, time_period, safety_margin)
        self.max_rate = max_rate
        self.time_period = float(time_period)
        self.safety_margin = float(safety_margin)
        self._span = self.time_period + self.safety_margin
        self._clock: Clock = clock or SystemClock()
        self._windows: dict[tuple[str, str], _Window] = {}
        self._windows_lock = threading.Lock()

    def _window(self, user_key: str, endpoint: str) -> _Window:
        key = (user_key, endpoint)
        window = self._windows.get(key)
        if window is None:
            with self._windows_lock:
                window = self._windows.setdefault(key, _Window(self.max_rate))
        return window

    def slot(self, user_key: str, endpoint: str, *, wait_timeout: float | None = None) -> Slot:
        """Wait for a slot of (user_key, endpoint), hold it while the request runs.

        Raises (on entering):
            WaitTimeoutError: the wait would pass ``wait_timeout`` seconds.
            ValueError: ``wait_timeout`` is not None or a number > 0.
        """
        if wait_timeout is not None:
            wait_timeout = check_seconds(wait_timeout, "wait_timeout")
        window = self._windows.get((user_key, endpoint)) or self._window(user_key, endpoint)
        return _Slot(self, window, endpoint, wait_timeout)

    async def _acquire(self, window: _Window, endpoint: str, wait_timeout: float | None) -> None:
        clock, span = self._clock, self._span
        loop = asyncio.get_running_loop()
        started = clock.monotonic()
        me = _Waiter(loop)
        with window.lock:
            if (
                wait_timeout is not None
                and window.earliest(len(window.waiters), started, span) - started > wait_timeout
            ):
                raise WaitTimeoutError(endpoint, 0.0, wait_timeout)
            window.waiters.append(me)
            window.stats.max_waiting = max(window.stats.max_waiting, len(window.waiters))
        try:
            while True:
                with window.lock:
                    now = clock.monotonic()
                    head = window.waiters[0] is me
                    ready = window.ready_at(span) if head else math.inf
                    if ready <= now:
                        window.take()
                        window.waiters.popleft()
                        window.stats.granted += 1
                        window.stats.waited += now - started
                        window.wake_head()  # a second slot may be free too
                        return
                    if wait_timeout is not None:
                        position = window.waiters.index(me)
                        if window.earliest(position, now, span) - started > wait_timeout:
                            raise WaitTimeoutError(endpoint, now - started, wait_timeout)
                    if me.future.done():
                        me.future = loop.create_future()
                if ready < math.inf:
                    # The head sleeps to its time, unless a release makes it earlier (a
                    # request credited with an early arrival) and wakes it first.
                    sleeper = asyncio.ensure_future(clock.sleep(ready - now))
                    try:
                        await asyncio.wait((sleeper, me.future), return_when=FIRST_COMPLETED)
                    finally:
                        sleeper.cancel()
                    continue
                # Wait to be woken: by becoming the head, or by an answer freeing a slot.
                timer = None
                if wait_timeout is not None:
                    timer = loop.call_later(started + wait_timeout - now, _wake, me.future)
                try:
                    await me.future
                finally:
                    if timer is not None:
                        timer.cancel()
        except BaseException:
            with window.lock:
                was_head = bool(window.waiters) and window.waiters[0] is me
                if me in window.waiters:
                    window.waiters.remove(me)
                if was_head:
                    window.wake_head()
            raise

    def _release(self, window: _Window, ago: float) -> None:
        with window.lock:
            window.in_flight -= 1
            heapq.heappush(window.done, self._clock.monotonic() - ago)
            if window.waiters:
                window.wake_head()

    async def penalize(self, user_key: str, endpoint: str) -> None:
        """Hold every new request of this budget for one whole window after a 50011."""
        window = self._window(user_key, endpoint)
        with window.lock:
            window.stats.rejections += 1
            window.blocked_until = self._clock.monotonic() + self._span

    def stats(self, user_key: str, endpoint: str) -> LimiterStats:
        """The figures of one budget (a copy; zeros if it was never used)."""
        window = self._windows.get((user_key, endpoint))
        if window is None:
            return LimiterStats()
        with window.lock:
            return msgspec.structs.replace(window.stats)

    def __repr__(self) -> str:
        return (
            f"LocalRateLimiter(max_rate={self.max_rate}, time_period={self.time_period}, "
            f"safety_margin={self.safety_margin}, budgets={len(self._windows)})"
        )


class _Slot:
    """One request's hold on a slot (a class, not a generator: it is on every request's path)."""

    __slots__ = ("_ago", "_endpoint", "_limiter", "_wait_timeout", "_window")

    def __init__(
        self,
        limiter: LocalRateLimiter,
        window: _Window,
        endpoint: str,
        wait_timeout: float | None,
    ) -> None:
        self._limiter = limiter
        self._window = window
        self._endpoint = endpoint
        self._wait_timeout = wait_timeout
        self._ago = 0.0

    def arrived(self, ago: float) -> None:
        """The request reached OKX at the latest ``ago`` seconds before the release."""
        self._ago = ago

    def __aenter__(self) -> Awaitable[None]:
        limiter, window = self._limiter, self._window
        with window.lock:
            if not window.waiters and window.ready_at(limiter._span) <= limiter._clock.monotonic():
                # Nobody queued and a slot free: granted at once, nothing to wait for.
                window.take()
                window.stats.granted += 1
                return DONE
        return limiter._acquire(window, self._endpoint, self._wait_timeout)

    def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
        /,
    ) -> Awaitable[None]:
        # Released at once, so the awaitable handed back is already done.
        self._limiter._release(self._window, self._ago)
        return DONE


_DEFAULT: LocalRateLimiter | None = None
_DEFAULT_LOCK = threading.Lock()


def default_rate_limiter() -> LocalRateLimiter:
    """The process-wide limiter that clients use when given none (one for every thread)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = LocalRateLimiter()
        return _DEFAULT
