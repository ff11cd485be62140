"""limiter (issue 3): full speed at OKX's limit, and never a 50011.

At the simulator's strict OKX limit (20 per 2 s per user and endpoint, a sliding
window), 200 concurrent polls and 200 concurrent closes of one user go out

1. through the default LocalRateLimiter, in this process;
2. through a RedisRateLimiter shared by three OS processes, each with its own
   GridClient (and its own API key) of that user, against a real redis-server.

For each endpoint it prints, from the simulator's arrival log: the sustained rate
past the first burst of 20, ``(n - 20) / (t_last - t_first)``, as a share of the
limit (10 per second); the most arrivals in any 2-second window; the 50011 answers.
Goal: no 50011 and at least 95 % of the limit.

For the record it also measures what plain ``aiolimiter.AsyncLimiter(20, 2)``
lets through in the worst 2-second window when fed 80 concurrent acquisitions
(okx-notes says 39), and what one LocalRateLimiter grant costs as ``max_rate`` grows.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Sequence
from typing import Final

import msgspec
from aiolimiter import AsyncLimiter

from okx_grid_async import Credentials, GridClient, LocalRateLimiter
from okx_grid_async._constants import (
    GRID_CLOSE_POSITION_PATH,
    GRID_MAX_RATE,
    GRID_POSITIONS_PATH,
    GRID_TIME_PERIOD,
)
from okx_grid_async.simulator import Arrival, GridSimulator, SimAccount, max_in_window

from .limiter_worker import WorkerConfig, redis_server, run_workers
from .peers import CALL_TIMEOUT, unpaced_limiter
from .report import print_table, print_title, verdict

__all__ = ["main"]

POLLS: Final = 200
CLOSES: Final = 200
WORKERS: Final = 3
AIOLIMITER_CALLS: Final = 80
GOAL_SHARE: Final = 95.0
LIMIT_PER_S: Final = GRID_MAX_RATE / GRID_TIME_PERIOD
# Grants measured per max_rate in the grant-cost table: fewer where each one is slow.
GRANTS: Final = ((GRID_MAX_RATE, 2000), (1_000, 2000), (100_000, 100), (1_000_000, 20))
_WORKER_RUN_TIMEOUT: Final = 90.0

ENDPOINTS: Final = (("polls", GRID_POSITIONS_PATH), ("closes", GRID_CLOSE_POSITION_PATH))
COLUMNS: Final = (
    "limiter",
    "endpoint",
    "requests",
    "ok",
    "client errors",
    "50011",
    "max in any 2 s",
    "sustained req/s",
    "% of limit",
    "wall s",
)


class _EndpointResult(msgspec.Struct, kw_only=True):
    ok: int
    errors: dict[str, int]


def _endpoint_row(
    limiter: str, endpoint: str, arrivals: Sequence[Arrival], result: _EndpointResult, wall: float
) -> tuple[list[object], float, int, int]:
    """A table row, and the figures the verdict needs: share of limit, worst window, 50011s."""
    accepted = [a.t for a in arrivals if a.code == "0"]
    rejected = sum(a.code == "50011" for a in arrivals)
    worst = max_in_window([a.t for a in arrivals], GRID_TIME_PERIOD)
    span = accepted[-1] - accepted[0] if len(accepted) > GRID_MAX_RATE else 0.0
    rate = (len(accepted) - GRID_MAX_RATE) / span if span > 0 else 0.0
    share = 100.0 * rate / LIMIT_PER_S
    errors = ", ".join(f"{n} {name}" for name, n in sorted(result.errors.items())) or "0"
    row: list[object] = [
        limiter,
        endpoint,
        len(arrivals),
        result.ok,
        errors,
        rejected,
        worst,
        rate,
        share,
        wall,
    ]
    return row, share, worst, rejected


def _tally(paths: Sequence[str], results: Sequence[object]) -> dict[str, _EndpointResult]:
    tally = {path: _EndpointResult(ok=0, errors={}) for _, path in ENDPOINTS}
    for path, result in zip(paths, results, strict=True):
        if isinstance(result, BaseException):
            name = type(result).__name__
            tally[path].errors[name] = tally[path].errors.get(name, 0) + 1
        else:
            tally[path].ok += 1
    return tally


def _credentials(account: SimAccount) -> Credentials:
    return Credentials(account.api_key, account.secret_key, account.passphrase)


async def _local(sim: GridSimulator) -> tuple[dict[str, _EndpointResult], float, str]:
    """Polls and closes through the process-wide default LocalRateLimiter."""
    account = sim.add_account()
    grids = [sim.add_grid(account.user_id).algo_id for _ in range(max(POLLS, CLOSES))]
    async with GridClient(
        _credentials(account), base_url=sim.url, user_id=account.user_id, timeout=CALL_TIMEOUT
    ) as client:
        polls = [client.get_positions(algo_id) for algo_id in grids[:POLLS]]
        closes = [client.close_position(algo_id, mkt_close=True) for algo_id in grids[:CLOSES]]
        started = time.perf_counter()
        results = await asyncio.gather(*polls, *closes, return_exceptions=True)
        wall = time.perf_counter() - started
    paths = [GRID_POSITIONS_PATH] * POLLS + [GRID_CLOSE_POSITION_PATH] * CLOSES
    return _tally(paths, results), wall, account.user_id


def _shares(ids: Sequence[str]) -> list[list[str]]:
    return [list(ids[i::WORKERS]) for i in range(WORKERS)]


async def _redis(
    sim: GridSimulator, redis_url: str
) -> tuple[dict[str, _EndpointResult], float, str]:
    """Polls and closes from three processes sharing one RedisRateLimiter budget."""
    first = sim.add_account()
    accounts = [first] + [sim.add_account(user_id=first.user_id) for _ in range(WORKERS - 1)]
    grids = [sim.add_grid(first.user_id).algo_id for _ in range(max(POLLS, CLOSES))]
    key_prefix = f"okx-grid-bench-{secrets.token_hex(4)}"
    configs = [
        WorkerConfig(
            sim_url=sim.url,
            redis_url=redis_url,
            key_prefix=key_prefix,
            api_key=account.api_key,
            secret_key=account.secret_key,
            passphrase=account.passphrase,
            user_id=first.user_id,
            poll_ids=polls,
            close_ids=closes,
            timeout=CALL_TIMEOUT,
        )
        for account, polls, closes in zip(
            accounts, _shares(grids[:POLLS]), _shares(grids[:CLOSES]), strict=True
        )
    ]
    outcomes, go = await run_workers(configs, timeout=_WORKER_RUN_TIMEOUT)
    wall = max(outcome.last_done for outcome in outcomes) - go
    tally = {path: _EndpointResult(ok=0, errors={}) for _, path in ENDPOINTS}
    for outcome in outcomes:
        for path, result in tally.items():
            result.ok += outcome.ok.get(path, 0)
            for name, n in outcome.errors.get(path, {}).items():
                result.errors[name] = result.errors.get(name, 0) + n
    return tally, wall, first.user_id


async def _aiolimiter_worst_window() -> tuple[int, float]:
    """Arrivals in the worst 2 s window when 80 calls go through AsyncLimiter(20, 2) at once."""
    async with GridSimulator("127.0.0.1", 0, enforce_limits=False) as sim:
        account = sim.add_account()
        algo_id = sim.add_grid(account.user_id).algo_id
        bucket = AsyncLimiter(GRID_MAX_RATE, GRID_TIME_PERIOD)
        async with GridClient(
            _credentials(account),
            base_url=sim.url,
            user_id=account.user_id,
            rate_limiter=unpaced_limiter(AIOLIMITER_CALLS),
            timeout=CALL_TIMEOUT,
        ) as client:

            async def one() -> None:
                async with bucket:
                    await client.get_positions(algo_id)

            started = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(AIOLIMITER_CALLS)))
            wall = time.perf_counter() - started
        times = [a.t for a in sim.arrivals(account.user_id, GRID_POSITIONS_PATH)]
    return max_in_window(times, GRID_TIME_PERIOD), wall


async def _grant_cost(max_rate: int, grants: int) -> float:
    """CPU microseconds per grant of a LocalRateLimiter with ``max_rate`` slots (no waiting)."""
    limiter = LocalRateLimiter(max_rate=max_rate, time_period=1e-6, safety_margin=0.0)
    started = time.process_time()
    for _ in range(grants):
        async with limiter.slot("user", "/endpoint"):
            pass
    return (time.process_time() - started) / grants * 1e6


async def _run() -> None:
    print_title(
        "limiter",
        f"{POLLS} polls + {CLOSES} closes at once, simulator at 20 per 2 s per user and "
        "endpoint (strict sliding window)",
    )
    rows: list[list[object]] = []
    checks: list[tuple[str, float, int, int]] = []
    async with GridSimulator("127.0.0.1", 0, seed=3, history_limit=None) as sim:
        tally, wall, user_id = await _local(sim)
        for endpoint, path in ENDPOINTS:
            row, share, worst, rejected = _endpoint_row(
                "LocalRateLimiter (1 process)",
                endpoint,
                sim.arrivals(user_id, path),
                tally[path],
                wall,
            )
            rows.append(row)
            checks.append((f"local {endpoint}", share, worst, rejected))
        start_redis, reason = redis_server()
        if start_redis is None:
            rows.append([f"RedisRateLimiter ({WORKERS} processes)", "-", f"unavailable ({reason})"])
        else:
            with start_redis() as server:
                tally, wall, user_id = await _redis(sim, server.url)
            for endpoint, path in ENDPOINTS:
                row, share, worst, rejected = _endpoint_row(
                    f"RedisRateLimiter ({WORKERS} processes)",
                    endpoint,
                    sim.arrivals(user_id, path),
                    tally[path],
                    wall,
                )
                rows.append(row)
                checks.append((f"redis {endpoint}", share, worst, rejected))
    print_table(COLUMNS, rows)
    for name, share, worst, rejected in checks:
        verdict(
            f"{name}: 0 rejections and >= {GOAL_SHARE:.0f} % of the limit",
            rejected == 0 and share >= GOAL_SHARE and worst <= GRID_MAX_RATE,
            f"{rejected} x 50011, {share:.1f} % of the limit, at most {worst} in any 2 s",
        )
    if len(checks) < 2 * len(ENDPOINTS):
        verdict("redis: 0 rejections and >= 95 % of the limit", None, reason)

    worst, wall = await _aiolimiter_worst_window()
    print(
        f"\nFor the record: aiolimiter.AsyncLimiter({GRID_MAX_RATE}, {GRID_TIME_PERIOD:g}) fed "
        f"{AIOLIMITER_CALLS} concurrent acquisitions (simulator not enforcing, arrivals counted):\n"
    )
    print_table(
        ("limiter", "calls", "max in any 2 s", "limit", "wall s"),
        [
            [
                f"AsyncLimiter({GRID_MAX_RATE}, {GRID_TIME_PERIOD:g})",
                AIOLIMITER_CALLS,
                worst,
                GRID_MAX_RATE,
                wall,
            ]
        ],
    )

    print("LocalRateLimiter: CPU per grant (acquire + release, never waiting) by max_rate:\n")
    cost_rows: list[list[object]] = []
    for max_rate, grants in GRANTS:
        cost_rows.append([max_rate, grants, await _grant_cost(max_rate, grants)])
    print_table(("max_rate", "grants", "CPU µs per grant"), cost_rows)


def main(argv: Sequence[str] = ()) -> None:
    """Run the benchmark and print its tables."""
    del argv
    asyncio.run(_run())


if __name__ == "__main__":
    main()
