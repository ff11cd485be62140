"""watching (issue 13): 1,000 grids watched over one WebSocket, beside a polling loop.

The simulator runs in its own process at OKX's limit (20 position reads per 2 s per
user), with every grid's mark price moving every ``TICK`` seconds. Four phases:

1. **push**: ``watch_positions`` of the 1,000 grids. Once each grid's first state
   (the snapshot on subscribing) has come, for ``PUSH_SECONDS``: every pushed update's
   latency, from the change in the simulator (the row's ``uTime``, ms) to the update
   in the bot (``time.time()`` when the loop gets it), and the client's CPU time per
   update (``time.process_time()``: every thread of this process, so aiohttp's and
   the event loop's work is in it). REST requests spent: the simulator's arrival log.
2. **reconnect**: every connection dropped by the simulator; the stream connects
   again, subscribes, and resyncs: REST requests spent, and how long the resync takes
   at the budget's pace, while pushes go on.
3. **poll**: the same grids read by ``sweep_positions`` (concurrency 20), one round
   of 1,000: its requests, its wall time, CPU per row. A change to a grid is seen at
   the grid's next read, one round after the last: with changes at any time, the
   delay from a change to the bot is uniform over one round, so its p50 and p99 are
   half and 99 % of the round's measured wall time.
4. **single changes**: in a second simulator without ticking, 200 changes of one grid
   at a time (``set_mark_price``), each timed as in phase 1: the latency without
   a burst in front of it.

Every tick changes all 1,000 grids at once, so the simulator sends 1,000 pushes in a
burst: a change's latency includes its wait behind the others of its tick, on both
sides of the socket. Phase 1 also times each update from its push (the row's
``pTime``, when the simulator queued the frame); phase 4 shows the latency with no
burst in front.

Clock note: ``uTime`` and ``pTime`` have millisecond resolution and are read on the
simulator process's clock, ``time.time()`` on this one's: the same machine clock, so
latencies are exact to about 1 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Final

from okx_grid_async import (
    GridClient,
    GridPosition,
    LocalRateLimiter,
    WatchFailure,
    WatchStream,
)
from okx_grid_async._constants import GRID_POSITIONS_PATH

from .report import print_table, print_title, verdict
from .simulator_process import SimulatorConfig, SimulatorProcess

__all__ = ["main"]

GRIDS: Final = 1_000
TICK: Final = 1.0
PUSH_SECONDS: Final = 30.0
CONCURRENCY: Final = 20
# How long the first state of every grid, and the resync, may take at most.
SNAPSHOT_TIMEOUT: Final = 30.0
# Changes of one grid at a time, this far apart (s), for the latency without a burst.
SINGLE_CHANGES: Final = 200
SINGLE_SPACING: Final = 0.02
RESYNC_TIMEOUT: Final = 150.0


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _push(sim: SimulatorProcess, client: GridClient) -> list[tuple[str, object]]:
    ids = [str(algo_id) for algo_id in sim.algo_ids]
    requests_before = len(await sim.arrivals(GRID_POSITIONS_PATH))
    first: set[str] = set()
    failures = 0
    latencies: list[float] = []  # change (uTime) -> bot, ms
    in_flight: list[float] = []  # push (pTime) -> bot, ms
    async with client.watch_positions(ids) as stream:
        started = time.perf_counter()
        async with asyncio.timeout(SNAPSHOT_TIMEOUT):
            async for item in stream:
                if isinstance(item, WatchFailure):
                    failures += 1
                else:
                    first.add(item.algo_id)
                if len(first) + failures >= GRIDS:
                    break
        snapshot = time.perf_counter() - started
        cpu = time.process_time()
        stats_before = stream.stats
        end = time.perf_counter() + PUSH_SECONDS
        async for item in stream:
            received = time.time()
            if isinstance(item, WatchFailure):
                failures += 1
            elif item.p_time is not None and item.u_time is not None:
                latencies.append(received * 1000 - item.u_time.timestamp() * 1000)
                in_flight.append(received * 1000 - item.p_time.timestamp() * 1000)
            if time.perf_counter() >= end:
                break
        cpu = time.process_time() - cpu
        stats_after = stream.stats
        requests_push = len(await sim.arrivals(GRID_POSITIONS_PATH)) - requests_before

        # Phase 2: a drop, and the resync through the limiter.
        await sim.command("ws_drop_all")
        dropped_at = time.perf_counter()
        resync = _drain(stream)
        try:
            async with asyncio.timeout(RESYNC_TIMEOUT):
                while True:
                    await asyncio.sleep(1.0)
                    spent = len(await sim.arrivals(GRID_POSITIONS_PATH)) - requests_before
                    if spent - requests_push >= GRIDS:
                        break
        finally:
            resync.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await resync
        resync_wall = time.perf_counter() - dropped_at
        requests_resync = spent - requests_push
        reconnects = stream.stats.reconnects
    updates = stats_after.updates - stats_before.updates
    return [
        ("grids watched (first states / failures)", f"{len(first):,} / {failures}"),
        ("first state of all grids after (s)", snapshot),
        ("REST requests while watching", requests_push),
        (f"pushed updates in {PUSH_SECONDS:.0f} s", updates),
        ("pushes conflated (a newer one came before the loop read it)", stats_after.conflated),
        ("latency p50, change -> bot (ms)", _percentile(latencies, 0.5)),
        ("latency p99, change -> bot (ms)", _percentile(latencies, 0.99)),
        ("latency max (ms)", max(latencies)),
        ("of which push -> bot, p50 (ms)", _percentile(in_flight, 0.5)),
        ("of which push -> bot, p99 (ms)", _percentile(in_flight, 0.99)),
        ("client CPU per update (µs)", cpu / max(updates, 1) * 1e6),
        ("after a drop: reconnects", reconnects),
        ("after a drop: REST requests (resync)", requests_resync),
        ("after a drop: resync done after (s)", resync_wall),
    ]


def _drain(stream: WatchStream[GridPosition]) -> asyncio.Task[None]:
    """Keep reading the stream (pushes go on during the resync)."""

    async def drain() -> None:
        async for _ in stream:
            pass

    return asyncio.create_task(drain())


async def _poll(sim: SimulatorProcess, client: GridClient) -> list[tuple[str, object]]:
    ids = [str(algo_id) for algo_id in sim.algo_ids]
    requests_before = len(await sim.arrivals(GRID_POSITIONS_PATH))
    ok = errors = 0
    cpu = time.process_time()
    started = time.perf_counter()
    async with contextlib.aclosing(client.sweep_positions(ids, concurrency=CONCURRENCY)) as rows:
        async for result in rows:
            if result.error is None:
                ok += 1
            else:
                errors += 1
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    requests = len(await sim.arrivals(GRID_POSITIONS_PATH)) - requests_before
    return [
        ("grids read (ok / errors)", f"{ok:,} / {errors}"),
        ("REST requests per round", requests),
        ("round wall time (s)", wall),
        ("latency p50, change -> bot (ms): half a round", wall / 2 * 1000),
        ("latency p99, change -> bot (ms): 99 % of a round", wall * 0.99 * 1000),
        ("client CPU per row read (µs)", cpu / max(ok + errors, 1) * 1e6),
    ]


async def _single_changes(sim: SimulatorProcess, client: GridClient) -> list[tuple[str, object]]:
    """Latency of one change at a time (no ticking), as the bot sees it."""
    ids = [str(algo_id) for algo_id in sim.algo_ids]
    latencies: list[float] = []
    async with client.watch_positions(ids) as stream:
        async with asyncio.timeout(SNAPSHOT_TIMEOUT):
            for _ in ids:
                await anext(stream)
        for i in range(SINGLE_CHANGES):
            algo_id = ids[i * 7919 % len(ids)]
            price = f"{30_000 + i}.5"
            await sim.command("set_mark_price", algo_id, price)
            async with asyncio.timeout(5.0):
                async for item in stream:
                    if isinstance(item, GridPosition) and item.mark_px == Decimal(price):
                        received = time.time()
                        assert item.u_time is not None
                        latencies.append(received * 1000 - item.u_time.timestamp() * 1000)
                        break
            await asyncio.sleep(SINGLE_SPACING)
    return [
        ("single changes (one grid at a time, no ticking)", len(latencies)),
        ("latency p50, change -> bot (ms)", _percentile(latencies, 0.5)),
        ("latency p99, change -> bot (ms)", _percentile(latencies, 0.99)),
    ]


async def _run() -> None:
    print_title(
        "watching",
        f"{GRIDS:,} grids, marks moving every {TICK:g} s: watch_positions over one "
        "WebSocket vs sweep_positions polling, simulator in another process at OKX's limit",
    )
    config = SimulatorConfig(grids=GRIDS, price_tick_interval=TICK, history_limit=None)
    async with SimulatorProcess(config) as sim:
        a = sim.account
        async with GridClient(
            a.credentials(),
            base_url=sim.url,
            user_id=a.user_id,
            rate_limiter=LocalRateLimiter(),
            timeout=30.0,
        ) as client:
            pushed = await _push(sim, client)
            polled = await _poll(sim, client)
    async with SimulatorProcess(SimulatorConfig(grids=GRIDS)) as sim:
        a = sim.account
        async with GridClient(a.credentials(), base_url=sim.url, user_id=a.user_id) as client:
            single = await _single_changes(sim, client)
    print("Pushing (watch_positions):\n")
    print_table(("figure", "value"), pushed)
    print("Pushing, one change at a time (another simulator, no ticking):\n")
    print_table(("figure", "value"), single)
    print("Polling (sweep_positions, one round):\n")
    print_table(("figure", "value"), polled)
    resync = dict(pushed)["after a drop: REST requests (resync)"]
    per_round = dict(polled)["REST requests per round"]
    verdict(
        "watching spends no REST request but the resync, 1 per grid per reconnect",
        dict(pushed)["REST requests while watching"] == 0 and resync == GRIDS,
        f"{resync} requests for one reconnect, against {per_round} for every polling round",
    )


def main(argv: Sequence[str] = ()) -> None:
    """Run the benchmark and print its tables."""
    del argv
    asyncio.run(_run())


if __name__ == "__main__":
    main()
