"""The streams' policy as small pure pieces: backoff, the operation budget, the heartbeat,
subscribe batching, and which of two versions of a row is news.

Nothing here touches a socket or reads a clock: each piece is given the time, so
tests drive it with plain numbers (or a FakeClock) and no event loop.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Final, Protocol, TypeVar

import msgspec

from okx_grid_async._constants import (
    WS_BACKOFF_BASE,
    WS_BACKOFF_CAP,
    WS_IDLE_LIMIT,
    WS_MAX_MESSAGE_BYTES,
    WS_OPS_PER_HOUR,
    WS_OPS_PERIOD,
    WS_STABLE_AFTER,
)
from okx_grid_async._retry import backoff_delay
from okx_grid_async._validation import check_seconds

__all__ = [
    "Backoff",
    "Beat",
    "Heartbeat",
    "OpBudget",
    "Versioned",
    "check_heartbeat",
    "is_stale",
    "subscribe_batches",
]

Arg = Mapping[str, str]


class Backoff:
    """How long to wait before the next connection attempt: jittered, exponential, capped.

    Every attempt after the first waits `next_delay()`; the step doubles with each
    attempt that fails and each connection that dies young, and only a connection
    that lived ``stable_after`` seconds brings it back to the first step. So a
    server that accepts and drops at once is not hammered, while a connection lost
    after hours is replaced within a second. ``jitter`` returns numbers in [0, 1)
    (``random.Random().random`` by default; tests pass their own).
    """

    __slots__ = ("_jitter", "base", "cap", "failures", "stable_after")

    def __init__(
        self,
        jitter: Callable[[], float],
        *,
        base: float = WS_BACKOFF_BASE,
        cap: float = WS_BACKOFF_CAP,
        stable_after: float = WS_STABLE_AFTER,
    ) -> None:
        self._jitter = jitter
        self.base = base
        self.cap = cap
        self.stable_after = stable_after
        self.failures = 0

    def connection_ended(self, lived: float) -> None:
        """A connection ended after ``lived`` seconds: a long-lived one resets the steps."""
        if lived >= self.stable_after:
            self.failures = 0

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt (counts one more failure)."""
        self.failures += 1
        return backoff_delay(self.failures, self._jitter(), base=self.base, cap=self.cap)


class OpBudget:
    """OKX's 480 login/subscribe/unsubscribe operations per connection per hour.

    A sliding window: `wait()` is how long until one more operation fits, and
    `spend()` records one. The times are the caller's monotonic seconds.
    """

    __slots__ = ("_times", "max_ops", "period")

    def __init__(self, max_ops: int = WS_OPS_PER_HOUR, period: float = WS_OPS_PERIOD) -> None:
        self.max_ops = max_ops
        self.period = period
        self._times: deque[float] = deque()

    def wait(self, now: float) -> float:
        """Seconds from ``now`` until one more operation keeps within the budget (0: now)."""
        times = self._times
        while times and times[0] <= now - self.period:
            times.popleft()
        if len(times) < self.max_ops:
            return 0.0
        return times[0] + self.period - now

    def spend(self, now: float) -> None:
        """Record one operation sent at ``now``."""
        self._times.append(now)

    @property
    def spent(self) -> int:
        """Operations recorded in the last window (as of the last `wait()`)."""
        return len(self._times)


class Beat(enum.Enum):
    """What the heartbeat says to do now."""

    WAIT = "wait"
    PING = "ping"
    DEAD = "dead"


class Heartbeat:
    """When to send ``ping`` and when to give a connection up.

    The reader sets `last_received` (monotonic seconds) on every message, whatever
    it is: a ``pong`` and a push are both proof of life. The sender sets `last_sent`
    on every frame it sends. After ``interval`` seconds without a message *either
    way*, `step()` says PING: a connection that only receives is still silent on
    the client's side, and a server may count that silence (the simulator does,
    OKX's wording allows it). Once pinged, DEAD if nothing came within ``pong_timeout``.
    """

    __slots__ = ("_pinged_at", "interval", "last_received", "last_sent", "pong_timeout")

    def __init__(self, interval: float, pong_timeout: float, now: float) -> None:
        self.interval = interval
        self.pong_timeout = pong_timeout
        self.last_received = now
        self.last_sent = now
        self._pinged_at: float | None = None

    def pinged(self, now: float) -> None:
        """A ``ping`` was sent at ``now``."""
        self._pinged_at = self.last_sent = now

    def step(self, now: float) -> tuple[Beat, float]:
        """What to do at ``now``, and for WAIT how many seconds until it is worth asking again."""
        pinged = self._pinged_at
        if pinged is not None:
            if self.last_received >= pinged:
                self._pinged_at = pinged = None  # answered (or a push came): alive
            else:
                left = pinged + self.pong_timeout - now
                return (Beat.DEAD, 0.0) if left <= 0 else (Beat.WAIT, left)
        left = min(self.last_received, self.last_sent) + self.interval - now
        return (Beat.PING, 0.0) if left <= 0 else (Beat.WAIT, left)


def check_heartbeat(heartbeat: object, pong_timeout: object) -> tuple[float, float]:
    """``(heartbeat, pong_timeout)`` as seconds, the first below OKX's 30 s idle limit.

    Raises:
        ValueError: unless both are finite numbers of seconds > 0 and ``heartbeat`` is
            below 30 (OKX closes a connection silent for 30 s).
    """
    beat = check_seconds(heartbeat, "heartbeat")
    if beat >= WS_IDLE_LIMIT:
        raise ValueError(
            f"heartbeat must be below OKX's {WS_IDLE_LIMIT:g} s idle limit, not {heartbeat!r}"
        )
    return beat, check_seconds(pong_timeout, "pong_timeout")


_MESSAGE_HEAD: Final = b'{"id":"%s","op":"%s","args":['
_MESSAGE_TAIL: Final = b"]}"


def subscribe_batches(
    op: str,
    args: Sequence[Arg],
    next_id: Callable[[], str],
    limit: int = WS_MAX_MESSAGE_BYTES,
) -> Iterator[tuple[str, list[Arg], bytes]]:
    """Pack ``args`` into as few ``op`` messages as fit in ``limit`` bytes each, in order.

    Yields ``(message id, its args, the message's UTF-8 bytes)``.

    Raises:
        ValueError: an argument that alone would not fit (nothing is yielded for it).
    """
    encode = msgspec.json.encode
    batch: list[Arg] = []
    parts: list[bytes] = []
    message_id = next_id()
    head = _MESSAGE_HEAD % (message_id.encode(), op.encode())
    size = len(head) + len(_MESSAGE_TAIL)
    for arg in args:
        part = encode(arg)
        extra = len(part) + (1 if parts else 0)  # the comma
        if parts and size + extra > limit:
            yield message_id, batch, head + b",".join(parts) + _MESSAGE_TAIL
            batch, parts = [], []
            message_id = next_id()
            head = _MESSAGE_HEAD % (message_id.encode(), op.encode())
            size = len(head) + len(_MESSAGE_TAIL)
            extra = len(part)
        if size + extra > limit:
            raise ValueError(f"a subscription argument of {len(part)} bytes cannot fit a message")
        batch.append(arg)
        parts.append(part)
        size += extra
    if parts:
        yield message_id, batch, head + b",".join(parts) + _MESSAGE_TAIL


class Versioned(Protocol):
    """A row with OKX's update time (``uTime``)."""

    @property
    def u_time(self) -> datetime | None: ...


V = TypeVar("V", bound=Versioned)


def is_stale(held: V, new: V, same: Callable[[V, V], bool]) -> bool:
    """Whether ``new`` tells nothing that ``held`` (the newest row seen of its key) did not.

    Older by ``uTime``: stale. Newer: news. Equal (or either without a ``uTime``):
    stale only if ``same`` says the rows match (a push and a REST read of one
    version, which differ only in ``pTime``); a different row with the same
    ``uTime`` came later over the same ordered connection, so it is news.
    """
    held_time, new_time = held.u_time, new.u_time
    if held_time is not None and new_time is not None and held_time != new_time:
        return new_time < held_time
    return same(held, new)
