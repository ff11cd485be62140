"""Rate limiting: never more than ``max_rate`` arrivals at OKX in any window of ``time_period``.

The model (see docs/rate-limiting.md): each (user, endpoint) budget is a set of
``max_rate`` *slots*. A slot holds the latest time its request can have reached
OKX: "in flight" (infinity) from the moment it is granted until the answer, or
the failure, comes back; then the time that happened. A new request may start
once the oldest slot is at least ``time_period + safety_margin`` in the past, and
it takes that slot. Since every earlier request had arrived by its slot's time
and the new one arrives after it starts, no window of ``time_period`` ever holds
more than ``max_rate`` arrivals, whatever the latency or connection set-up.

aiolimiter's leaky bucket cannot express this bound at full speed: a bucket of
size *b* draining at *r*/s admits *b + r·T* in a window *T* (up to 40 for
``AsyncLimiter(20, 2)``; 39 and 40 have been measured), so the guarantee forces
*b = 1, r = 19/T* and at most 95 % of the budget before any jitter margin. This
module is the smallest correct alternative.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

import msgspec

from ._clock import Clock, SystemClock
from ._constants import DEFAULT_SAFETY_MARGIN, GRID_MAX_RATE, GRID_TIME_PERIOD

__all__ = [
    "LimiterStats",
    "LocalRateLimiter",
    "RateLimiter",
    "check_limits",
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


@runtime_checkable
class RateLimiter(Protocol):
    """What `GridClient` needs from a limiter."""

    def slot(self, user_key: str, endpoint: str) -> AbstractAsyncContextManager[None]:
        """Wait for and hold a slot while one request is sent and answered.

        Cancelling the wait takes no slot.
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


class _Window:
    """One (user, endpoint) budget: the answer times of finished requests, the count in
    flight, and a FIFO lock for waiters.

    ``done`` holds answer times oldest first (the clock is monotonic, so appending
    keeps it sorted) and, with ``in_flight``, never more than ``max_rate`` entries:
    the oldest slot is ``done[0]``, and taking it is a ``popleft``, O(1) whatever
    the rate.
    """

    __slots__ = (
        "_changed",
        "_lock",
        "_loop",
        "blocked_until",
        "done",
        "in_flight",
        "max_rate",
        "stats",
        "waiting",
    )

    def __init__(self, max_rate: int) -> None:
        self.max_rate = max_rate
        self.done: deque[float] = deque()
        self.in_flight = 0
        self.blocked_until = -math.inf
        self.stats = LimiterStats()
        self.waiting = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()

    def bind(self) -> tuple[asyncio.Lock, asyncio.Event]:
        """The lock and event of the running loop; rebinds when the old loop is done with them."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None and not self._loop.is_closed() and self.waiting:
                raise RuntimeError(
                    "this rate limiter has waiters on another running event loop; "
                    "use one limiter per event loop (or per thread)"
                )
            self._loop = loop
            self._lock = asyncio.Lock()
            self._changed = asyncio.Event()
        return self._lock, self._changed

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

    def take(self) -> None:
        if len(self.done) + self.in_flight >= self.max_rate:
            self.done.popleft()
        self.in_flight += 1

    def release(self, now: float) -> None:
        self.in_flight -= 1
        self.done.append(now)
        self._changed.set()


class LocalRateLimiter:
    """The in-process limiter: one budget per (user, endpoint), shared by every client using it.

    ``GridClient(rate_limiter=None)`` uses `default_rate_limiter()`, one per
    process, so every client of a user shares that user's budgets. Waiters are
    served first come, first served. Not thread-safe: use it from one event
    loop at a time (sequential ``asyncio.run`` calls are fine).

    Args:
        max_rate: requests allowed per ``time_period`` (OKX: 20).
        time_period: the window, in seconds (OKX: 2.0).
        safety_margin: seconds added to the window against jitter on OKX's side.
        clock: the clock to read and sleep on (tests pass a FakeClock).

    Raises:
        ValueError: for a non-positive rate or period, or a negative margin.
    """

    __slots__ = ("_clock", "_span", "_windows", "max_rate", "safety_margin", "time_period")

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

    def _window(self, user_key: str, endpoint: str) -> _Window:
        key = (user_key, endpoint)
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _Window(self.max_rate)
        return window

    def slot(self, user_key: str, endpoint: str) -> AbstractAsyncContextManager[None]:
        """Wait for a slot of (user_key, endpoint), hold it while the request runs.

        Raises (on entering):
            RuntimeError: if the budget has waiters on another running event loop.
        """
        return _Slot(self, self._window(user_key, endpoint))

    async def _acquire(self, window: _Window) -> None:
        clock = self._clock
        started = clock.monotonic()
        lock, changed = window.bind()
        window.waiting += 1
        window.stats.max_waiting = max(window.stats.max_waiting, window.waiting)
        try:
            async with lock:
                while True:
                    now = clock.monotonic()
                    ready = window.ready_at(self._span)
                    if ready <= now:
                        break
                    if ready == math.inf:
                        # Every slot is in flight: only an answer can free one.
                        changed.clear()
                        await changed.wait()
                    else:
                        await clock.sleep(ready - now)
                window.take()
        finally:
            window.waiting -= 1
        window.stats.granted += 1
        window.stats.waited += now - started

    async def penalize(self, user_key: str, endpoint: str) -> None:
        """Hold every new request of this budget for one whole window after a 50011."""
        window = self._window(user_key, endpoint)
        window.stats.rejections += 1
        window.blocked_until = self._clock.monotonic() + self._span

    def stats(self, user_key: str, endpoint: str) -> LimiterStats:
        """The figures of one budget (a copy; zeros if it was never used)."""
        window = self._windows.get((user_key, endpoint))
        return msgspec.structs.replace(window.stats) if window else LimiterStats()

    def __repr__(self) -> str:
        return (
            f"LocalRateLimiter(max_rate={self.max_rate}, time_period={self.time_period}, "
            f"safety_margin={self.safety_margin}, budgets={len(self._windows)})"
        )


class _Slot:
    """One request's hold on a slot (a class, not a generator: it is on every request's path)."""

    __slots__ = ("_limiter", "_window")

    def __init__(self, limiter: LocalRateLimiter, window: _Window) -> None:
        self._limiter = limiter
        self._window = window

    async def __aenter__(self) -> None:
        limiter, window = self._limiter, self._window
        if not window.waiting and window.ready_at(limiter._span) <= limiter._clock.monotonic():
            # Nobody queued and a slot free: no lock, no await.
            window.take()
            window.stats.granted += 1
        else:
            await limiter._acquire(window)

    async def __aexit__(self, *exc_info: object) -> None:
        self._window.release(self._limiter._clock.monotonic())


_DEFAULT: LocalRateLimiter | None = None


def default_rate_limiter() -> LocalRateLimiter:
    """The process-wide limiter that clients use when given none."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = LocalRateLimiter()
    return _DEFAULT
