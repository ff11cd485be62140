"""A call's exchange deadline: stretches that count, a timer that cancels, a typed end."""

from __future__ import annotations

import asyncio
import math
import threading

from ._clock import Clock

__all__ = ["Deadline", "DeadlineTimer", "ExpiredError"]


class ExpiredError(Exception):
    """The exchange's deadline fired (internal: turned into a public error by the caller)."""


class Deadline:
    """A call's exchange deadline: ``with deadline:`` around each stretch that counts.

    The stretches add up: time outside them (queueing for a slot) is not charged.
    When the deadline fires inside one, the call's task is cancelled and the
    stretch ends with `ExpiredError` instead of the CancelledError. The timer is an
    event-loop callback rather than ``asyncio.timeout``, whose context manager
    costs more than the rest of a request on a cached connection; with a
    `DeadlineTimer`, one callback serves every deadline of a client.
    """

    __slots__ = (
        "_cancelling",
        "_clock",
        "_fired",
        "_loop",
        "_running",
        "_shared",
        "_started",
        "_task",
        "_timer",
        "left",
    )

    def __init__(self, seconds: float, clock: Clock, timer: DeadlineTimer | None = None) -> None:
        task = None if timer is None else timer.current_task()
        if task is None:
            task = asyncio.current_task()
        if task is None:
            raise RuntimeError("GridClient calls must run inside an asyncio task")
        self._task = task
        self._loop = task.get_loop()
        self._clock = clock
        self.left = seconds
        self._fired = False
        self._running = False  # inside a stretch
        self._started = 0.0
        self._shared = timer
        self._timer: asyncio.TimerHandle | None = None  # this deadline's own, without a shared one
        # Cancellations already pending when the call began are not ours to absorb.
        self._cancelling = task.cancelling()

    def remaining(self) -> float:
        """Seconds left, counting the stretch under way."""
        if not self._running:
            return self.left
        return self.left - (self._clock.monotonic() - self._started)

    def _fire(self) -> None:
        self._fired = True
        self._task.cancel()

    def __enter__(self) -> None:
        self._started = self._clock.monotonic()
        self._running = True
        when = self._loop.time() + max(self.left, 0.0)
        shared = self._shared
        if shared is None or not shared.add(self, self._loop, when):
            self._timer = self._loop.call_at(when, self._fire)

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        elif self._shared is not None:
            self._shared.remove(self)
        self._running = False
        self.left -= self._clock.monotonic() - self._started
        if self._fired and exc_type is asyncio.CancelledError:
            self._fired = False
            if self._task.uncancel() <= self._cancelling:
                raise ExpiredError  # ours alone; anyone else's cancellation propagates


class DeadlineTimer:
    """One event-loop timer for the deadlines of one client's calls.

    A timer per stretch (``call_at``, then ``cancel``) costs a handle, a heap push,
    the cancel and the loop's later sweep of cancelled handles: about 3 % of a
    request's CPU on a cached connection. This timer stays armed for the earliest
    expiry it was given; when it fires, it fires every stretch then due and re-arms
    for the next. A stretch that expires after the armed time, the usual case
    (calls share one timeout and start one after another), costs a dict insertion
    and a removal.

    Bound to the event loop it first serves: `add` refuses a deadline of another,
    which then keeps a timer of its own.
    """

    __slots__ = ("_handle", "_loop", "_stretches", "_thread", "_when")

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = 0  # the thread its loop runs in
        self._handle: asyncio.TimerHandle | None = None
        self._when = math.inf  # the loop time the handle fires at
        self._stretches: dict[Deadline, float] = {}  # stretches under way, with their expiry

    def add(self, deadline: Deadline, loop: asyncio.AbstractEventLoop, when: float) -> bool:
        """Fire ``deadline`` at ``loop`` time ``when``, unless removed first.

        False, and nothing done, if this timer serves another loop.
        """
        if self._loop is not loop:
            if self._loop is not None:
                return False
            self._loop = loop
            self._thread = threading.get_ident()
        self._stretches[deadline] = when
        if when < self._when:
            if self._handle is not None:
                self._handle.cancel()
            self._handle = loop.call_at(when, self._fire)
            self._when = when
        return True

    def current_task(self) -> asyncio.Task[object] | None:
        """The task running now, if this timer's loop runs it; else None (ask asyncio).

        ``asyncio.current_task()`` finds the running loop first, and CPython 3.11
        checks the process id for that, a system call per request. On its own
        thread, only this timer's loop can be running.
        """
        loop = self._loop
        if loop is None or self._thread != threading.get_ident():
            return None
        return asyncio.current_task(loop)

    def remove(self, deadline: Deadline) -> None:
        """The stretch ended (or already fired)."""
        self._stretches.pop(deadline, None)

    def _fire(self) -> None:
        loop = self._loop
        assert loop is not None
        # The loop runs a handle up to its clock's resolution early: what was due
        # at the armed time counts as due now, as with a timer of its own.
        due = max(self._when, loop.time())
        self._handle, self._when = None, math.inf
        later = math.inf
        for deadline, when in list(self._stretches.items()):
            if when <= due:
                del self._stretches[deadline]
                deadline._fire()
            elif when < later:
                later = when
        if later < math.inf:
            self._handle = loop.call_at(later, self._fire)
            self._when = later
