"""A call's exchange deadline: stretches that count, a timer that cancels, a typed end."""

from __future__ import annotations

import asyncio

from ._clock import Clock

__all__ = ["Deadline", "ExpiredError"]


class ExpiredError(Exception):
    """The exchange's deadline fired (internal: turned into a public error by the caller)."""


class Deadline:
    """A call's exchange deadline: ``with deadline:`` around each stretch that counts.

    The stretches add up: time outside them (queueing for a slot) is not charged.
    When the deadline fires inside one, the call's task is cancelled and the
    stretch ends with `ExpiredError` instead of the CancelledError. The timer is an
    event-loop callback rather than ``asyncio.timeout``, whose context manager
    costs more than the rest of a request on a cached connection.
    """

    __slots__ = ("_cancelling", "_clock", "_fired", "_loop", "_started", "_task", "_timer", "left")

    def __init__(self, seconds: float, clock: Clock) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("GridClient calls must run inside an asyncio task")
        self._task = task
        self._loop = task.get_loop()
        self._clock = clock
        self.left = seconds
        self._fired = False
        self._started = 0.0
        self._timer: asyncio.TimerHandle | None = None
        # Cancellations already pending when the call began are not ours to absorb.
        self._cancelling = task.cancelling()

    def remaining(self) -> float:
        """Seconds left, counting the stretch under way."""
        if self._timer is None:
            return self.left
        return self.left - (self._clock.monotonic() - self._started)

    def _fire(self) -> None:
        self._fired = True
        self._task.cancel()

    def __enter__(self) -> None:
        self._started = self._clock.monotonic()
        self._timer = self._loop.call_at(self._loop.time() + max(self.left, 0.0), self._fire)

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.left -= self._clock.monotonic() - self._started
        if self._fired and exc_type is asyncio.CancelledError:
            self._fired = False
            if self._task.uncancel() <= self._cancelling:
                raise ExpiredError  # ours alone; anyone else's cancellation propagates
