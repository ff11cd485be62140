"""What came of a batch of calls: the callers' results, and the server's arrival log.

:func:`tally` counts the results of ``asyncio.gather(..., return_exceptions=True)``;
:func:`pacing` reads how the client paced its requests from the simulator's
arrivals. The steady rate is the slope of a least-squares line through the accepted
arrivals after the first 2-second window (arrival number against arrival time).
A slope, rather than ``count / span``, because the two kinds of client compared
pace differently: this library's slots send bursts of up to 20 about every
2.05 s, ccxt's leaky bucket one request every ``rateLimit``. A count over the
span from the first to the last arrival reads a staircase of bursts too high or
too low depending on where the span cuts it; the slope of a staircase is its
height over its period whichever step the fit starts on, and that of an even
spacing is its rate.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

import msgspec

from okx_grid_async._constants import GRID_MAX_RATE, GRID_TIME_PERIOD
from okx_grid_async.simulator import Arrival, max_in_window

__all__ = ["LIMIT_PER_S", "Pacing", "describe_failures", "pacing", "tally"]

LIMIT_PER_S: Final = GRID_MAX_RATE / GRID_TIME_PERIOD


class Pacing(msgspec.Struct, frozen=True, kw_only=True):
    """Figures of one client's arrivals on one endpoint.

    Attributes:
        arrivals: requests that reached the simulator.
        rejected: of those, answered 50011.
        worst: the most arrivals (accepted or not) in any 2-second window.
        steady: accepted requests per second after the first 2-second window.
    """

    arrivals: int
    rejected: int
    worst: int
    steady: float

    @property
    def share(self) -> float:
        """The steady rate as a percentage of OKX's limit (10 per second)."""
        return 100.0 * self.steady / LIMIT_PER_S


def pacing(arrivals: Sequence[Arrival]) -> Pacing:
    """The figures of ``arrivals`` (one user and endpoint, in arrival order)."""
    times = [a.t for a in arrivals]
    accepted = [a.t for a in arrivals if a.code == "0"]
    return Pacing(
        arrivals=len(arrivals),
        rejected=sum(a.code == "50011" for a in arrivals),
        worst=max_in_window(times, GRID_TIME_PERIOD),
        steady=_steady_rate(accepted),
    )


def _steady_rate(accepted: Sequence[float]) -> float:
    if not accepted:
        return 0.0
    after = [t for t in accepted if t >= accepted[0] + GRID_TIME_PERIOD]
    if len(after) < 2 or after[0] == after[-1]:
        return 0.0
    slope, _ = statistics.linear_regression(after, range(len(after)))
    return slope


def tally(results: Iterable[object]) -> tuple[int, Counter[str]]:
    """Of ``gather(..., return_exceptions=True)``'s results: the successes, and errors by type."""
    ok = 0
    errors: Counter[str] = Counter()
    for result in results:
        if isinstance(result, BaseException):
            errors[type(result).__name__] += 1
        else:
            ok += 1
    return ok, errors


def describe_failures(errors: Mapping[str, int]) -> str:
    """``"0"``, or the failures by type: ``"3 DeadlineExceededError, 1 RateLimitExceeded"``."""
    return ", ".join(f"{n} {name}" for name, n in sorted(errors.items()) if n) or "0"
