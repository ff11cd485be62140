"""Assertions a bot's tests call on the simulator after the bot has run.

Both raise `AssertionError` with one line per problem, naming the user, the
endpoint and the window, or the grid and the two closes, so that a failing CI
run says what the bot did wrong without a debugger.
"""

from __future__ import annotations

from collections import defaultdict

from okx_grid_async.simulator import GridSimulator
from okx_grid_async.simulator._limits import busiest_window

__all__ = [
    "assert_no_duplicate_closes",
    "assert_no_rate_limit_violations",
    "duplicate_close_problems",
    "rate_limit_problems",
]


def rate_limit_problems(sim: GridSimulator) -> list[str]:
    """What `assert_no_rate_limit_violations()` would report: one line per problem."""
    problems = [
        f"user {user_id} on {path}: the simulator's rate limiter answered 50011 "
        f"to {count} request(s)"
        for (user_id, path), count in sorted(sim.rate_limit_refusals().items())
    ]
    times: defaultdict[tuple[str, str], list[float]] = defaultdict(list)
    for arrival in sim.arrivals():
        if arrival.user_id is not None:
            times[arrival.user_id, arrival.path].append(arrival.t)
    for (user_id, path), seen in sorted(times.items()):
        max_rate, period = sim.rate_limit(path)
        count, start = busiest_window(seen, period)
        if count > max_rate:
            problems.append(
                f"user {user_id} on {path}: {count} requests arrived in the {period:g} s "
                f"window from t={start:.3f} (limit {max_rate} per {period:g} s)"
            )
    return problems


def assert_no_rate_limit_violations(sim: GridSimulator) -> None:
    """Fail unless every user kept within OKX's rate limit on every endpoint.

    Per user and endpoint: the simulator's limiter answered no 50011 (an
    injected ``RATE_LIMIT_50011`` fault is the test's doing and does not
    count), and no window of the endpoint's period (`GridSimulator.rate_limit()`)
    saw more than its ``max_rate`` arrivals, rejected ones included. The
    second check also holds with ``enforce_limits=False``.

    Raises:
        AssertionError: Naming each user, endpoint and window at fault.
    """
    problems = rate_limit_problems(sim)
    if problems:
        raise AssertionError("OKX's rate limit was exceeded:\n  " + "\n  ".join(problems))


def duplicate_close_problems(sim: GridSimulator) -> list[str]:
    """What `assert_no_duplicate_closes()` would report: one line per problem."""
    return [
        f"grid {record.algo_id} (user {record.user_id}): {record.describe()} "
        f"repeats {record.duplicate_of.describe()}"
        for record in sim.closes()
        if record.duplicate_of is not None
    ]


def assert_no_duplicate_closes(sim: GridSimulator) -> None:
    """Fail if any grid was sent a close that repeats one already executed.

    A duplicate close, as the simulator defines it (`CloseRecord.duplicate_of`):
    a market close after an executed market close of the same grid, or a
    partial close with the same size and price as an executed one, with no new
    position given to the grid and the earlier order not cancelled in between;
    whatever the repeat was answered.

    Raises:
        AssertionError: Naming each grid and both closes.
    """
    problems = duplicate_close_problems(sim)
    if problems:
        raise AssertionError("a close was sent twice:\n  " + "\n  ".join(problems))
