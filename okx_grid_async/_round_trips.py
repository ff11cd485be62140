"""Round trips measured on one client, and the credit they earn a rate-limit slot.

A request reaches OKX after it is sent and before its answer returns; how the
round trip splits between the way there and the way back is unknown. But every
round trip on a path is at least the sum of the path's two one-way floors, and
those floors are the same for the request that frees a slot and the one that
takes it. So a slot may count its request as arrived ``floor`` before its answer,
with ``floor`` the shortest round trip measured recently: the next request, sent
a window after that, reaches OKX at least the way-there floor after it is sent,
and the freed one left OKX at least the way-back floor before its answer came.
docs/rate-limiting.md has the proof and what it assumes.

Only round trips on a reused connection are samples: a new connection's first
round trip includes its handshakes, which would overstate the floor. Samples
older than ``window`` seconds are forgotten, so a route that changed is learnt
again; with fewer than ``min_samples`` recent ones the credit is zero.
"""

from __future__ import annotations

from collections import deque

from ._constants import ARRIVAL_MIN_SAMPLES, ARRIVAL_SAMPLE_WINDOW

__all__ = ["RoundTrips"]


class RoundTrips:
    """A sliding window of round trips (seconds, on a monotonic clock) and their minimum."""

    __slots__ = ("_lows", "_min_samples", "_times", "_window")

    def __init__(
        self, window: float = ARRIVAL_SAMPLE_WINDOW, min_samples: int = ARRIVAL_MIN_SAMPLES
    ) -> None:
        self._window = window
        self._min_samples = min_samples
        self._times: deque[float] = deque()  # when each recent sample was taken
        # (time, round trip), round trips increasing: the front is the window's minimum.
        self._lows: deque[tuple[float, float]] = deque()

    def add(self, now: float, round_trip: float) -> None:
        """Record a round trip measured on a reused connection, ending ``now``."""
        self._times.append(now)
        lows = self._lows
        while lows and lows[-1][1] >= round_trip:
            lows.pop()
        lows.append((now, round_trip))

    def credit(self, now: float, round_trip: float, *, reused: bool) -> float:
        """Record an exchange's round trip; how early its slot may count it as arrived.

        That is the shortest recent round trip (never more than this one); a round
        trip on a new connection is not recorded (its handshakes would overstate
        the floor), but still earns what the others allow.
        """
        if reused:
            self.add(now, round_trip)
        return min(round_trip, self.floor(now))

    def floor(self, now: float) -> float:
        """The shortest recent round trip, or 0.0 with too few recent samples."""
        oldest = now - self._window
        times, lows = self._times, self._lows
        while times and times[0] < oldest:
            times.popleft()
        while lows and lows[0][0] < oldest:
            lows.popleft()
        if len(times) < self._min_samples or not lows:
            return 0.0
        return lows[0][1]
