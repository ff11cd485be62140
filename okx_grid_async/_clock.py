"""The one clock the library reads: monotonic time, wall time and sleeping.

Everything time-dependent (the limiter, backoff, the server-clock offset) takes
a `Clock`, so tests can substitute a `FakeClock` and run without
sleeping.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "FakeClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """What the library needs of time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...

    def time(self) -> float:
        """Seconds since the Unix epoch (the machine's wall clock, UTC)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds``."""
        ...


class SystemClock:
    """The real clock: `time.monotonic()`, `time.time()`, `asyncio.sleep()`."""

    __slots__ = ()

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))

    def __repr__(self) -> str:
        return "SystemClock()"


class FakeClock:
    """A clock for tests: time moves only when a task sleeps or `advance()` is called.

    ``sleep`` advances the clock by the requested amount and yields once to the
    event loop, so code that waits for a rate-limit window runs instantly while
    seeing the same times it would see in real life.
    """

    __slots__ = ("_mono", "_wall", "sleeps")

    def __init__(self, monotonic: float = 1000.0, wall: float = 1_700_000_000.0) -> None:
        self._mono = monotonic
        self._wall = wall
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self._mono

    def time(self) -> float:
        return self._wall

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds``."""
        self._mono += seconds
        self._wall += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds > 0:
            self.advance(seconds)
        await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"FakeClock(monotonic={self._mono!r}, wall={self._wall!r})"
