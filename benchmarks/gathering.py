"""gathering (issue 11): many callers, one budget: waiting your turn never fails a call.

1. One ``GridClient(creds, base_url=sim.url)`` with every default (``timeout`` 10 s,
   the process-wide default limiter, the User ID read at opening):
   ``asyncio.gather`` of 1,000 ``get_positions``.
2. Three OS processes, each with its own ``GridClient`` of the same user (default
   ``timeout``), sharing one ``RedisRateLimiter`` on a real redis-server: 334, 333
   and 333 polls, all started together.

Each part runs against a fresh simulator in its own process at OKX's strict limit
(20 per 2 s per user and endpoint, a sliding window). The queue does not count
against ``timeout``, so every call should succeed, about 100 s after the gather
starts (the ideal: 1,000 ÷ 10 per second). From the simulator's arrival log: the
50011 answers, the most arrivals in any 2 s, and the steady rate (see
:mod:`benchmarks.outcomes`). For the processes, when each one's first and last
call finished: a process passed over by the others would finish far apart from them.

Goal: 1,000/1,000 successes, no 50011, at most 20 in any 2 s.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from collections.abc import Sequence
from typing import Final

import msgspec

from okx_grid_async import GridClient
from okx_grid_async._constants import GRID_MAX_RATE, GRID_POSITIONS_PATH

from .limiter_worker import WorkerConfig, WorkerOutcome, redis_server, run_workers
from .outcomes import LIMIT_PER_S, Pacing, describe_failures, pacing, tally
from .report import print_table, print_title, verdict
from .simulator_process import SimulatorConfig, SimulatorProcess

__all__ = ["main"]

POLLS: Final = 1_000
WORKERS: Final = 3
IDEAL_S: Final = POLLS / LIMIT_PER_S
# The workers' gather should take about IDEAL_S; give up well after.
_WORKERS_TIMEOUT: Final = 3 * IDEAL_S

COLUMNS: Final = (
    "run",
    "polls",
    "ok",
    "failures",
    "50011",
    "max in any 2 s",
    "steady % of limit",
    "wall s",
    "ideal s",
    "wall / ideal",
)


class _Part(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    ok: int
    errors: dict[str, int]
    wall: float
    pacing: Pacing

    def row(self) -> list[object]:
        return [
            self.name,
            POLLS,
            self.ok,
            describe_failures(self.errors),
            self.pacing.rejected,
            self.pacing.worst,
            self.pacing.share,
            self.wall,
            IDEAL_S,
            f"{self.wall / IDEAL_S:.3f}",
        ]

    def check(self) -> None:
        met = (
            self.ok == POLLS
            and self.pacing.rejected == 0
            and self.pacing.worst <= GRID_MAX_RATE
            and self.pacing.arrivals == POLLS
        )
        verdict(
            f"{self.name}: {POLLS:,}/{POLLS:,} successes, 0 x 50011, <= {GRID_MAX_RATE} in any 2 s",
            met,
            f"{self.ok:,} successes ({describe_failures(self.errors)} failed), "
            f"{self.pacing.rejected} x 50011, at most {self.pacing.worst} in any 2 s, "
            f"{self.pacing.arrivals:,} arrivals",
        )


async def _one_client() -> _Part:
    """1,000 polls gathered on one GridClient with every default."""
    async with SimulatorProcess(SimulatorConfig(grids=POLLS, seed=11)) as sim:
        async with GridClient(sim.account.credentials(), base_url=sim.url) as client:
            calls = [client.get_positions(str(algo_id)) for algo_id in sim.algo_ids]
            started = time.perf_counter()
            results = await asyncio.gather(*calls, return_exceptions=True)
            wall = time.perf_counter() - started
        arrivals = await sim.arrivals(GRID_POSITIONS_PATH)
    ok, errors = tally(results)
    return _Part(
        name="1 GridClient, all defaults (1 process)",
        ok=ok,
        errors=dict(errors),
        wall=wall,
        pacing=pacing(arrivals),
    )


async def _three_processes(redis_url: str) -> tuple[_Part, list[WorkerOutcome], float]:
    """1,000 polls from three processes sharing a RedisRateLimiter; the outcomes, and go."""
    async with SimulatorProcess(SimulatorConfig(grids=POLLS, seed=12)) as sim:
        account = sim.account
        ids = [str(algo_id) for algo_id in sim.algo_ids]
        key_prefix = f"okx-grid-bench-{secrets.token_hex(4)}"
        configs = [
            WorkerConfig(
                sim_url=sim.url,
                redis_url=redis_url,
                key_prefix=key_prefix,
                api_key=account.api_key,
                secret_key=account.secret_key,
                passphrase=account.passphrase,
                user_id=account.user_id,
                poll_ids=ids[i::WORKERS],  # 334, 333, 333
                close_ids=[],
            )
            for i in range(WORKERS)
        ]
        outcomes, go = await run_workers(configs, timeout=_WORKERS_TIMEOUT)
        arrivals = await sim.arrivals(GRID_POSITIONS_PATH)
    errors: Counter[str] = Counter()
    for outcome in outcomes:
        errors.update(outcome.errors.get(GRID_POSITIONS_PATH, {}))
    part = _Part(
        name=f"{WORKERS} processes, 1 RedisRateLimiter",
        ok=sum(outcome.ok.get(GRID_POSITIONS_PATH, 0) for outcome in outcomes),
        errors=dict(errors),
        wall=max(outcome.last_done for outcome in outcomes) - go,
        pacing=pacing(arrivals),
    )
    return part, outcomes, go


def _print_processes(outcomes: Sequence[WorkerOutcome], go: float) -> None:
    rows: list[list[object]] = []
    for number, outcome in enumerate(outcomes, 1):
        ok = outcome.ok.get(GRID_POSITIONS_PATH, 0)
        errors = outcome.errors.get(GRID_POSITIONS_PATH, {})
        rows.append(
            [
                f"process {number}",
                ok + sum(errors.values()),
                ok,
                describe_failures(errors),
                outcome.first_done - go,
                outcome.last_done - go,
            ]
        )
    print(f"Per process (times in seconds after all {WORKERS} were told to go):\n")
    print_table(("process", "polls", "ok", "failures", "first done s", "last done s"), rows)
    last = [outcome.last_done for outcome in outcomes]
    print(
        f"Spread of the processes' last completions: {max(last) - min(last):.2f} s "
        f"(one window is 2.05 s).\n",
        flush=True,
    )


async def _run() -> None:
    print_title(
        "gathering",
        f"asyncio.gather of {POLLS:,} polls, default timeout (10 s), simulator at 20 per 2 s "
        "per user and endpoint (strict sliding window)",
    )
    parts = [await _one_client()]
    start_redis, reason = redis_server()
    processes: tuple[list[WorkerOutcome], float] | None = None
    if start_redis is not None:
        with start_redis() as server:
            part, outcomes, go = await _three_processes(server.url)
        parts.append(part)
        processes = outcomes, go
    rows = [part.row() for part in parts]
    if processes is None:
        rows.append([f"{WORKERS} processes, 1 RedisRateLimiter", "-", f"unavailable ({reason})"])
    print_table(COLUMNS, rows)
    if processes is not None:
        _print_processes(*processes)
    for part in parts:
        part.check()
    if processes is None:
        verdict(f"{WORKERS} processes, 1 RedisRateLimiter", None, reason)


def main(argv: Sequence[str] = ()) -> None:
    """Run the benchmark and print its tables."""
    del argv
    asyncio.run(_run())


if __name__ == "__main__":
    main()
