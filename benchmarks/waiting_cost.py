"""waiting_cost (issue 7): CPU per request while calls queue behind the client's own limiter.

All calls start at once and each client paces them itself: this client with its
default LocalRateLimiter (20 per 2 s: about 30 s for 300 calls), ccxt with
``enableRateLimit=True`` and okx's default ``rateLimit``. The simulator runs in
another process and does not enforce limits (so neither client is slowed by
50011s); its arrival log shows how each client actually paced. The figure is
``time.process_time()`` of this process over the whole batch, divided by the calls.

Goal: this client at most 1/5 of ccxt's CPU per request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from okx_grid_async._constants import GRID_MAX_RATE, GRID_POSITIONS_PATH, GRID_TIME_PERIOD
from okx_grid_async.simulator import Arrival, max_in_window

from .peers import CcxtClient, OurClient, PeerUnavailableError
from .report import print_table, print_title, verdict
from .simulator_process import SimulatorConfig, SimulatorProcess

__all__ = ["main"]

OUR_CALLS: Final = 300
CCXT_CALLS: Final = 300
GOAL_FRACTION: Final = 1 / 5


def _pacing(arrivals: Sequence[Arrival]) -> tuple[int, float]:
    """The most arrivals in any 2 s window, and the sustained rate past the first burst."""
    times = [a.t for a in arrivals]
    worst = max_in_window(times, GRID_TIME_PERIOD)
    span = times[-1] - times[0] if len(times) > GRID_MAX_RATE else 0.0
    return worst, (len(times) - GRID_MAX_RATE) / span if span > 0 else 0.0


async def _measure(run: Callable[[int], Awaitable[None]], calls: int) -> tuple[float, float]:
    """CPU microseconds per call and wall seconds of ``await run(calls)``."""
    cpu = time.process_time()
    wall = time.perf_counter()
    await run(calls)
    return (time.process_time() - cpu) / calls * 1e6, time.perf_counter() - wall


async def _run() -> None:
    print_title(
        "waiting_cost",
        "CPU per request while all calls wait on the client's own limiter; simulator in "
        "another process, limits not enforced",
    )
    rows: list[list[object]] = []
    config = SimulatorConfig(grids=1, enforce_limits=False)
    async with SimulatorProcess(config) as sim:
        url, account, algo_id = sim.url, sim.account, str(sim.algo_ids[0])
        ours = OurClient(url, account, algo_id)
        await ours.open(None)  # the process-wide default LocalRateLimiter, 20 per 2 s
        try:
            our_cpu, wall = await _measure(ours.concurrent, OUR_CALLS)
        finally:
            await ours.aclose()
        seen = await sim.arrivals(GRID_POSITIONS_PATH)
        worst, rate = _pacing(seen)
        rows.append(
            [
                f"{OurClient.name} {ours.version} (default LocalRateLimiter, 20 per 2 s)",
                OUR_CALLS,
                our_cpu,
                wall,
                worst,
                rate,
                "1.00x",
            ]
        )
        ccxt_cpu: float | None = None
        try:
            ccxt = CcxtClient(url, account, algo_id, paced=True)
        except PeerUnavailableError as exc:
            rows.append([CcxtClient.name, f"unavailable ({exc})"])
        except Exception as exc:  # a peer that fails is reported, not fatal
            rows.append([CcxtClient.name, f"unavailable (failed: {type(exc).__name__}: {exc})"])
        else:
            try:
                ccxt_cpu, wall = await _measure(ccxt.concurrent, CCXT_CALLS)
            except Exception as exc:  # a peer that fails is reported, not fatal
                rows.append([CcxtClient.name, f"unavailable (failed: {type(exc).__name__}: {exc})"])
            else:
                arrivals = await sim.arrivals(GRID_POSITIONS_PATH)
                worst, rate = _pacing(arrivals[len(seen) :])
                rows.append(
                    [
                        f"{CcxtClient.name} {ccxt.version} (rateLimit {ccxt.rate_limit_ms:g} ms)",
                        CCXT_CALLS,
                        ccxt_cpu,
                        wall,
                        worst,
                        rate,
                        f"{ccxt_cpu / our_cpu:.2f}x",
                    ]
                )
            finally:
                await ccxt.aclose()
    print_table(
        (
            "client",
            "calls",
            "CPU µs/request",
            "wall s",
            "max in any 2 s",
            "sustained req/s",
            "CPU vs ours",
        ),
        rows,
    )
    if ccxt_cpu is None:
        verdict("ours <= 1/5 of ccxt's CPU per request", None, "ccxt unavailable")
    else:
        verdict(
            "ours <= 1/5 of ccxt's CPU per request",
            our_cpu <= ccxt_cpu * GOAL_FRACTION,
            f"{our_cpu:.0f} µs vs {ccxt_cpu:.0f} µs: {our_cpu / ccxt_cpu:.3f} of ccxt's",
        )


def main(argv: Sequence[str] = ()) -> None:
    """Run the benchmark and print its table."""
    del argv
    asyncio.run(_run())


if __name__ == "__main__":
    main()
