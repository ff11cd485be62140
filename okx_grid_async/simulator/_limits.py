"""The simulator's rate limits: a sliding window on arrival time, and the log of arrivals.

OKX does not document whether its windows are fixed or sliding. The simulator
takes the strict reading: a request is rejected when ``max_rate`` requests of
the same (user, endpoint) were already *accepted* in the ``time_period``
seconds before it arrived, wherever that window starts. A rejected request
does not consume budget (okx-notes: a 50011 was not executed). Each endpoint
has its own limit (`PathLimits`): 20 per 2 s for the grid endpoints, 5 per
2 s for the account configuration.

Times are plain floats from one clock (``time.monotonic`` in the server) so
tests can drive the limiter with a fake clock.
"""

from __future__ import annotations

import bisect
from collections import Counter, deque
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "Arrival",
    "ArrivalLog",
    "PathLimits",
    "SlidingWindowLimiter",
    "busiest_window",
    "max_in_window",
]


@dataclass(frozen=True, slots=True)
class Arrival:
    """One request that reached a private endpoint, as the simulator saw it.

    Attributes:
        t: Arrival time in seconds on the simulator's clock (``time.monotonic``
            unless the simulator was given another clock), taken before the
            body was read.
        user_id: The authenticated user, or ``None`` when authentication failed.
        path: The endpoint path, without the query string.
        method: The HTTP method, upper case.
        http_status: The HTTP status answered, or ``0`` when no answer was sent
            (the connection was dropped, or the request was left hanging).
        code: OKX's ``code`` in the answer, or ``""`` when the answer carried
            none the client could read (no answer, an HTML page, truncated JSON).
    """

    t: float
    user_id: str | None
    path: str
    method: str
    http_status: int
    code: str


class _Entry:
    """A slot taken at arrival and filled when the answer is known, to keep arrival order."""

    __slots__ = ("arrival",)

    def __init__(self) -> None:
        self.arrival: Arrival | None = None


class ArrivalLog:
    """Arrivals in the order they arrived, each filled in once it has been answered.

    ``limit`` bounds memory for long-running simulators: only the newest
    ``limit`` arrivals are kept.
    """

    __slots__ = ("_entries",)

    def __init__(self, limit: int | None = None) -> None:
        self._entries: deque[_Entry] = deque(maxlen=limit)

    def begin(self) -> _Entry:
        """Reserve the next place in arrival order; fill it with `finish()`."""
        entry = _Entry()
        self._entries.append(entry)
        return entry

    @staticmethod
    def finish(entry: _Entry, arrival: Arrival) -> None:
        """Record how the request reserved as ``entry`` was answered."""
        entry.arrival = arrival

    def snapshot(self, user_id: str | None = None, path: str | None = None) -> list[Arrival]:
        """Answered arrivals in arrival order, optionally only one user's or one path's."""
        return [
            a
            for e in self._entries
            if (a := e.arrival) is not None
            and (user_id is None or a.user_id == user_id)
            and (path is None or a.path == path)
        ]

    def clear(self) -> None:
        """Forget every arrival; requests still in flight are not recorded afterwards."""
        # A fresh deque orphans in-flight entries instead of letting them reappear.
        self._entries = deque(maxlen=self._entries.maxlen)


class SlidingWindowLimiter:
    """At most ``max_rate`` accepted arrivals per key in any window of ``time_period`` seconds.

    The window is half-open: an arrival at ``t`` stops counting at exactly
    ``t + time_period``, matching `max_in_window()`.
    """

    __slots__ = ("_accepted", "max_rate", "time_period")

    def __init__(self, max_rate: int, time_period: float) -> None:
        if max_rate < 1:
            raise ValueError(f"max_rate must be at least 1, got {max_rate}")
        if time_period <= 0:
            raise ValueError(f"time_period must be positive, got {time_period}")
        self.max_rate = max_rate
        self.time_period = time_period
        self._accepted: dict[Hashable, deque[float]] = {}

    def try_acquire(self, key: Hashable, now: float) -> bool:
        """Accept (and count) an arrival at ``now`` for ``key``, or refuse it without counting."""
        times = self._accepted.setdefault(key, deque())
        horizon = now - self.time_period
        while times and times[0] <= horizon:
            times.popleft()
        if len(times) >= self.max_rate:
            return False
        times.append(now)
        return True

    def reset(self) -> None:
        """Forget every accepted arrival."""
        self._accepted.clear()


class PathLimits:
    """A sliding window per (user, path), each path under its own limit.

    Args:
        default: ``(max_rate, time_period)`` for every path not in ``by_path``.
        by_path: ``(max_rate, time_period)`` of the paths with a limit of their own.

    Raises:
        ValueError: If a limit is not a positive rate over a positive period.
    """

    __slots__ = ("_by_path", "_refused", "default")

    def __init__(
        self, default: tuple[int, float], by_path: Mapping[str, tuple[int, float]]
    ) -> None:
        self.default = SlidingWindowLimiter(*default)
        self._by_path = {path: SlidingWindowLimiter(*limit) for path, limit in by_path.items()}
        self._refused: Counter[tuple[str, str]] = Counter()

    def limit(self, path: str) -> tuple[int, float]:
        """``(max_rate, time_period)`` of ``path``."""
        limiter = self._by_path.get(path, self.default)
        return limiter.max_rate, limiter.time_period

    def try_acquire(self, user_id: str, path: str, now: float) -> bool:
        """Accept (and count) ``user_id``'s arrival at ``path`` at ``now``, or refuse it."""
        if self._by_path.get(path, self.default).try_acquire((user_id, path), now):
            return True
        self._refused[user_id, path] += 1
        return False

    def refusals(self) -> dict[tuple[str, str], int]:
        """How many arrivals were refused, per ``(user_id, path)`` (only those refused)."""
        return dict(self._refused)


def max_in_window(times: Sequence[float], window: float) -> int:
    """The largest number of ``times`` that fall in any half-open window ``[t, t + window)``.

    ``times`` need not be sorted. The busiest window can always be taken to
    start at one of the times, so counting forward from each sorted time is
    exact.

    Raises:
        ValueError: If ``window`` is not positive.
    """
    return busiest_window(times, window)[0]


def busiest_window(times: Sequence[float], window: float) -> tuple[int, float | None]:
    """`max_in_window()`, and where the first busiest window starts (``None`` if no times).

    Raises:
        ValueError: If ``window`` is not positive.
    """
    if window <= 0:
        raise ValueError(f"window must be positive, got {window}")
    ordered = sorted(times)
    best, best_start = 0, None
    for i, start in enumerate(ordered):
        end = bisect.bisect_left(ordered, start + window, lo=i)
        if end - i > best:
            best, best_start = end - i, start
    return best, best_start
