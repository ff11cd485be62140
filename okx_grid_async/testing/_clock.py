"""A clock for tests: time moves only when a task sleeps or the test says so."""

from __future__ import annotations

import asyncio
import math

__all__ = ["FakeClock"]


class FakeClock:
    """A `Clock` for tests: time moves only when a task sleeps or `advance()` is called.

    ``sleep`` advances the clock by the requested amount and yields once to the
    event loop, so code that waits for a rate-limit window runs instantly while
    seeing the same times it would see in real life. Like
    ``trio.testing.MockClock``, it never goes backwards.

    Args:
        monotonic: The starting monotonic time, in seconds.
        wall: The starting wall time, in seconds since the Unix epoch.

    Attributes:
        sleeps: Every duration passed to `sleep()`, in seconds, in call order.
    """

    __slots__ = ("_mono", "_wall", "sleeps")

    def __init__(self, monotonic: float = 1000.0, wall: float = 1_700_000_000.0) -> None:
        self._mono = monotonic
        self._wall = wall
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        """The fake monotonic time, in seconds."""
        return self._mono

    def time(self) -> float:
        """The fake wall time, in seconds since the Unix epoch."""
        return self._wall

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds``.

        Raises:
            ValueError: If ``seconds`` is negative or not finite: the clock
                never goes backwards.
        """
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"a FakeClock only moves forward: advance({seconds!r})")
        self._mono += seconds
        self._wall += seconds

    async def sleep(self, seconds: float) -> None:
        """Advance by ``seconds`` (nothing if not positive), then yield once to the loop."""
        self.sleeps.append(seconds)
        if seconds > 0:
            self.advance(seconds)
        await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"FakeClock(monotonic={self._mono!r}, wall={self._wall!r})"
