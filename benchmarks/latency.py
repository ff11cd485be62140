"""latency (issue 12): the whole budget at real round trips, against ccxt in the same run.

A :class:`~okx_grid_async.simulator._proxy.LatencyProxy` sits between each client
and the simulator and delays each direction by half the round trip, times a
factor within 1 ± 0.2 per chunk; so the simulator records each arrival after the
way-there delay, as OKX's gateway would. For each round trip of 0, 50, 100, 200
and 400 ms, against a fresh simulator (in its own process) at OKX's strict 20 per
2 s each time:

- this library: a ``GridClient`` with a fresh ``LocalRateLimiter()`` (the default
  settings) and the default ``timeout``, 220 polls gathered;
- ccxt: its async okx, REST URL pointed at the proxy, paced by its own
  ``rateLimit`` (``enableRateLimit``), 220 polls gathered.

From the arrival log: the steady rate (accepted arrivals per second after the
first 2-second window, as a share of 10 per second; see :mod:`benchmarks.outcomes`),
the most arrivals in any 2 s, and the 50011 answers.

Then mixed hosts through Redis: two OS processes of one user sharing a
``RedisRateLimiter``, one behind a 300 ms round trip and one next to the
simulator, 150 polls each at once; at the simulator, the 50011s and the most
arrivals in any 2 s.

Goals: at 200 ms, ours at least 95 % with no 50011; at 50 ms, at least 96 %; ours
ahead of ccxt at every round trip; ours never a 50011 nor more than 20 in any 2 s;
the mixed hosts neither.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Final

import msgspec

from okx_grid_async import GridClient, LocalRateLimiter
from okx_grid_async._constants import GRID_MAX_RATE, GRID_POSITIONS_PATH
from okx_grid_async.simulator._proxy import LatencyProxy

from .limiter_worker import WorkerConfig, redis_server, run_workers
from .outcomes import Pacing, describe_failures, pacing, tally
from .peers import CcxtClient, PeerUnavailableError, version_of
from .report import print_table, print_title, verdict
from .simulator_process import SimulatorConfig, SimulatorProcess

__all__ = ["main"]

ROUND_TRIPS_MS: Final = (0, 50, 100, 200, 400)
JITTER: Final = 0.2
POLLS: Final = 220
MIXED_POLLS: Final = 150
MIXED_FAR_MS: Final = 300
GOALS: Final = ((200, 95.0), (50, 96.0))  # (round trip in ms, least steady % of ours)
# 300 polls at 10 per second take about 31 s; give up well after.
_MIXED_TIMEOUT: Final = 120.0

COLUMNS: Final = (
    "round trip ms",
    "ours steady %",
    "ours max in 2 s",
    "ours 50011",
    "ours ok",
    "ccxt steady %",
    "ccxt max in 2 s",
    "ccxt 50011",
    "ccxt ok",
    "ratio ours/ccxt",
)


class _Run(msgspec.Struct, frozen=True, kw_only=True):
    """One client's polls at one round trip: the callers' results and the server's figures."""

    client: str
    ok: int
    errors: dict[str, int]
    pacing: Pacing

    @classmethod
    def of(cls, client: str, results: Sequence[object], arrivals: Pacing) -> _Run:
        ok, errors = tally(results)
        return cls(client=client, ok=ok, errors=dict(errors), pacing=arrivals)

    def ok_cell(self) -> str:
        failed = describe_failures(self.errors)
        return f"{self.ok}/{POLLS}" if failed == "0" else f"{self.ok}/{POLLS} ({failed})"


@asynccontextmanager
async def _far(sim_url: str, round_trip: float, seed: int) -> AsyncIterator[str]:
    """A LatencyProxy in front of the simulator, half of ``round_trip`` s each way; its URL."""
    port = int(sim_url.rsplit(":", 1)[1])
    half = round_trip / 2
    async with LatencyProxy(
        "127.0.0.1", port, up=half, down=half, jitter=JITTER, seed=seed
    ) as proxy:
        yield f"http://127.0.0.1:{proxy.port}"
        # Let the proxy carry the clients' closing of their connections through, so
        # that closing it cancels none (CPython 3.11's asyncio logs each such
        # cancellation as an error in a callback).
        await asyncio.sleep(half * (1 + JITTER) + 0.05)


async def _ours(round_trip: float, seed: int) -> _Run:
    async with (
        SimulatorProcess(SimulatorConfig(seed=seed)) as sim,
        _far(sim.url, round_trip, seed) as url,
    ):
        algo_id = str(sim.algo_ids[0])
        async with GridClient(
            sim.account.credentials(), base_url=url, rate_limiter=LocalRateLimiter()
        ) as client:
            results = await asyncio.gather(
                *(client.get_positions(algo_id) for _ in range(POLLS)), return_exceptions=True
            )
        name = f"okx-grid-async {version_of('okx-grid-async')} (LocalRateLimiter())"
        return _Run.of(name, results, pacing(await sim.arrivals(GRID_POSITIONS_PATH)))


async def _ccxt(round_trip: float, seed: int) -> _Run | str:
    """ccxt's run, or why it could not run."""
    async with (
        SimulatorProcess(SimulatorConfig(seed=seed)) as sim,
        _far(sim.url, round_trip, seed) as url,
    ):
        try:
            ccxt = CcxtClient(url, sim.account, str(sim.algo_ids[0]), paced=True)
        except PeerUnavailableError as exc:
            return f"unavailable ({exc})"
        except Exception as exc:  # a peer that fails is reported, not fatal
            return f"unavailable (failed: {type(exc).__name__}: {exc})"
        try:
            results = await ccxt.gather(POLLS)
        finally:
            await ccxt.aclose()
        name = f"ccxt {ccxt.version} (enableRateLimit, rateLimit {ccxt.rate_limit_ms:g} ms)"
        return _Run.of(name, results, pacing(await sim.arrivals(GRID_POSITIONS_PATH)))


def _row(round_trip_ms: int, ours: _Run, ccxt: _Run | str) -> list[object]:
    row: list[object] = [
        round_trip_ms,
        ours.pacing.share,
        ours.pacing.worst,
        ours.pacing.rejected,
        ours.ok_cell(),
    ]
    if isinstance(ccxt, str):
        return [*row, ccxt]
    ratio = ours.pacing.steady / ccxt.pacing.steady if ccxt.pacing.steady else float("inf")
    return [
        *row,
        ccxt.pacing.share,
        ccxt.pacing.worst,
        ccxt.pacing.rejected,
        ccxt.ok_cell(),
        f"{ratio:.3f}",
    ]


async def _mixed_hosts(redis_url: str) -> tuple[list[list[object]], Pacing]:
    """Two processes of one user, one far and one near, sharing a RedisRateLimiter."""
    async with (
        SimulatorProcess(SimulatorConfig(seed=len(ROUND_TRIPS_MS) + 1)) as sim,
        _far(sim.url, MIXED_FAR_MS / 1000, seed=0) as far_url,
    ):
        account = sim.account
        key_prefix = f"okx-grid-bench-{secrets.token_hex(4)}"
        hosts = ((f"{MIXED_FAR_MS} ms round trip", far_url), ("direct", sim.url))
        configs = [
            WorkerConfig(
                sim_url=url,
                redis_url=redis_url,
                key_prefix=key_prefix,
                api_key=account.api_key,
                secret_key=account.secret_key,
                passphrase=account.passphrase,
                user_id=account.user_id,
                poll_ids=[str(sim.algo_ids[0])] * MIXED_POLLS,
                close_ids=[],
            )
            for _, url in hosts
        ]
        outcomes, go = await run_workers(configs, timeout=_MIXED_TIMEOUT)
        arrivals = pacing(await sim.arrivals(GRID_POSITIONS_PATH))
    rows: list[list[object]] = []
    for (host, _), outcome in zip(hosts, outcomes, strict=True):
        ok = outcome.ok.get(GRID_POSITIONS_PATH, 0)
        errors = outcome.errors.get(GRID_POSITIONS_PATH, {})
        rows.append([host, MIXED_POLLS, ok, describe_failures(errors), outcome.last_done - go])
    return rows, arrivals


async def _run() -> None:
    print_title(
        "latency",
        f"{POLLS} polls gathered per client and round trip, through a proxy delaying each "
        f"way by half the round trip ±{JITTER:.0%}; simulator at 20 per 2 s per user and "
        "endpoint (strict sliding window)",
    )
    rows: list[list[object]] = []
    runs: list[tuple[int, _Run, _Run | str]] = []
    for seed, round_trip_ms in enumerate(ROUND_TRIPS_MS, 1):
        ours = await _ours(round_trip_ms / 1000, seed)
        ccxt = await _ccxt(round_trip_ms / 1000, seed)
        runs.append((round_trip_ms, ours, ccxt))
        rows.append(_row(round_trip_ms, ours, ccxt))
    print_table(COLUMNS, rows)
    clients = dict.fromkeys(
        run.client for _, *pair in runs for run in pair if not isinstance(run, str)
    )
    print(f"Clients: {'; '.join(clients)}.\n", flush=True)
    _check_runs(runs)

    print(
        f"\nMixed hosts: 2 processes of one user sharing a RedisRateLimiter, one behind a "
        f"{MIXED_FAR_MS} ms round trip (±{JITTER:.0%}), one direct; {MIXED_POLLS} polls "
        "each, at once:\n",
        flush=True,
    )
    start_redis, reason = redis_server()
    if start_redis is None:
        print(f"unavailable ({reason})\n", flush=True)
        verdict("mixed hosts: 0 x 50011, <= 20 in any 2 s", None, reason)
        return
    with start_redis() as server:
        process_rows, server_side = await _mixed_hosts(server.url)
    print_table(("process", "polls", "ok", "failures", "last done s"), process_rows)
    print_table(
        ("at the simulator", "arrivals", "50011", "max in any 2 s", "steady % of limit"),
        [
            [
                "both processes",
                server_side.arrivals,
                server_side.rejected,
                server_side.worst,
                server_side.share,
            ]
        ],
    )
    verdict(
        f"mixed hosts: 0 x 50011, <= {GRID_MAX_RATE} in any 2 s",
        server_side.rejected == 0 and server_side.worst <= GRID_MAX_RATE,
        f"{server_side.rejected} x 50011, at most {server_side.worst} in any 2 s",
    )


def _check_runs(runs: Sequence[tuple[int, _Run, _Run | str]]) -> None:
    by_round_trip = {round_trip_ms: ours for round_trip_ms, ours, _ in runs}
    for round_trip_ms, least in GOALS:
        ours = by_round_trip[round_trip_ms]
        verdict(
            f"ours at {round_trip_ms} ms: >= {least:.0f} % of the limit, 0 x 50011",
            ours.pacing.share >= least and ours.pacing.rejected == 0,
            f"{ours.pacing.share:.1f} %, {ours.pacing.rejected} x 50011",
        )
    safe = [ours.pacing.rejected == 0 and ours.pacing.worst <= GRID_MAX_RATE for _, ours, _ in runs]
    verdict(
        f"ours at every round trip: 0 x 50011, <= {GRID_MAX_RATE} in any 2 s",
        all(safe),
        ", ".join(
            f"{ms} ms: {ours.pacing.rejected} x 50011, max {ours.pacing.worst}"
            for ms, ours, _ in runs
        ),
    )
    compared: list[tuple[int, _Run, _Run]] = []
    for ms, ours, ccxt in runs:
        if not isinstance(ccxt, str):
            compared.append((ms, ours, ccxt))
    if len(compared) < len(runs):
        verdict("ours ahead of ccxt at every round trip", None, "ccxt unavailable")
        return
    verdict(
        "ours ahead of ccxt at every round trip",
        all(ours.pacing.steady > ccxt.pacing.steady for _, ours, ccxt in compared),
        ", ".join(
            f"{ms} ms: {ours.pacing.share:.1f} % vs {ccxt.pacing.share:.1f} %"
            for ms, ours, ccxt in compared
        ),
    )


def main(argv: Sequence[str] = ()) -> None:
    """Run the benchmark and print its tables."""
    del argv
    asyncio.run(_run())


if __name__ == "__main__":
    main()
