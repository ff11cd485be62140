"""The one clock the library reads: monotonic time, wall time and sleeping.

Everything time-dependent (the limiter, backoff, the server-clock offset) takes
a `Clock`, so tests can substitute `okx_grid_async.testing.FakeClock` and
run without sleeping.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock"]


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

    # The functions themselves: read several times per request, a wrapper's frame
    # would cost more than the read.
    monotonic = staticmethod(time.monotonic)
    time = staticmethod(time.time)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))

    def __repr__(self) -> str:
        return "SystemClock()"
