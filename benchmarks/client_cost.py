"""client_cost (issue 7): the client's own CPU per request, against ccxt, python-okx and the floor.

Grid-positions reads one after another against the simulator in another process
(limits not enforced), so ``time.process_time()`` here is the client's alone.
Every peer is warmed up first; then the peers take turns, run after run, in an
order reversed every other run, so that any drift of the machine falls on all
of them alike. The figures are the median over the runs of CPU microseconds per
request and, since the machine's speed drifts from run to run, the median of
each run's ratio to the floor measured in that same run (raw aiohttp with
hand-written signing, see :mod:`benchmarks.peers`).

Goal: this client at most 1.10 x the floor.

``python -m benchmarks client_cost --profile`` then profiles this client alone
(cProfile on CPU time, sorted by own time) to show where its time goes.
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import io
import pstats
import time
from collections.abc import Sequence
from typing import Final

from .peers import (
    CcxtClient,
    OurClient,
    Peer,
    PeerUnavailableError,
    PythonOkxClient,
    RawAiohttp,
    unpaced_limiter,
)
from .report import median, print_table, print_title, verdict
from .simulator_process import SimulatorConfig, SimulatorProcess

__all__ = ["main"]

RUNS: Final = 40
CALLS: Final = 150
WARMUP: Final = 200
GOAL_RATIO: Final = 1.10
PROFILE_CALLS: Final = 5_000
PROFILE_LINES: Final = 30


def _open_peers(sim: SimulatorProcess) -> tuple[list[Peer], dict[str, str]]:
    """Every peer that can be built here, and why the others cannot."""
    url, account, algo_id = sim.url, sim.account, str(sim.algo_ids[0])
    # Ours first (the verdict's): as installed here, with the API's no-op global
    # providers when opentelemetry-api is; then without it, and with an SDK, side by side.
    peers: list[Peer] = [
        OurClient(url, account, algo_id),
        OurClient(url, account, algo_id, telemetry="off"),
        OurClient(url, account, algo_id, telemetry="sdk"),
    ]
    unavailable: dict[str, str] = {}
    for name, build in (
        (CcxtClient.name, lambda: CcxtClient(url, account, algo_id, paced=False)),
        (PythonOkxClient.name, lambda: PythonOkxClient(url, account, algo_id)),
    ):
        try:
            peers.append(build())
        except PeerUnavailableError as exc:
            unavailable[name] = str(exc)
        except Exception as exc:  # a peer that fails is reported, not fatal
            unavailable[name] = f"failed: {type(exc).__name__}: {exc}"
    peers.append(RawAiohttp(url, account, algo_id))
    return peers, unavailable


async def _measure_or_drop(
    peer: Peer, calls: int, peers: list[Peer], unavailable: dict[str, str]
) -> tuple[float, float] | None:
    """:func:`_measure`; a failing peer (not ours, not the floor) is closed and reported."""
    try:
        return await _measure(peer, calls)
    except Exception as exc:
        if isinstance(peer, OurClient | RawAiohttp):
            raise
        unavailable[peer.name] = f"failed: {type(exc).__name__}: {exc}"
        peers.remove(peer)
        await peer.aclose()
        return None


async def _measure(peer: Peer, calls: int) -> tuple[float, float]:
    """CPU and wall microseconds per request over ``calls`` sequential reads."""
    gc.collect()
    cpu = time.process_time()
    wall = time.perf_counter()
    await peer.sequential(calls)
    return (
        (time.process_time() - cpu) / calls * 1e6,
        (time.perf_counter() - wall) / calls * 1e6,
    )


async def _run(profile: bool) -> None:
    print_title(
        "client_cost",
        f"CPU per grid-positions request, {RUNS} runs x {CALLS:,} sequential calls per client "
        f"after {WARMUP} warm-up calls; simulator in another process, limits off",
    )
    config = SimulatorConfig(grids=1, max_rate=10**9, time_period=1.0, enforce_limits=False)
    async with SimulatorProcess(config) as sim:
        peers, unavailable = _open_peers(sim)
        cpu: dict[str, list[float]] = {p.name: [] for p in peers}
        wall: dict[str, list[float]] = {p.name: [] for p in peers}
        try:
            ours = peers[0]
            assert isinstance(ours, OurClient)
            for peer in peers:
                if isinstance(peer, OurClient):
                    await peer.open(unpaced_limiter())
            for peer in list(peers):
                await _measure_or_drop(peer, WARMUP, peers, unavailable)
            for run in range(RUNS):
                for peer in list(peers) if run % 2 == 0 else list(reversed(peers)):
                    measured = await _measure_or_drop(peer, CALLS, peers, unavailable)
                    if measured is not None:
                        cpu[peer.name].append(measured[0])
                        wall[peer.name].append(measured[1])
            profiled = await _profile(ours) if profile else ""
        finally:
            for peer in peers:
                await peer.aclose()
    floor_runs = cpu[RawAiohttp.name]
    rows: list[list[object]] = []
    ratios: dict[str, float] = {}
    for peer in peers:
        runs = cpu[peer.name]
        # Paired: each run's figure against the floor's in the same run.
        ratios[peer.name] = median([c / f for c, f in zip(runs, floor_runs, strict=False)])
        rows.append(
            [
                f"{peer.name} {peer.version}",
                median(runs),
                min(runs),
                max(runs),
                f"{ratios[peer.name]:.2f}x",
                median(wall[peer.name]),
            ]
        )
    for name, reason in unavailable.items():
        rows.append([name, f"unavailable ({reason})", "", "", "", ""])
    print_table(
        (
            "client",
            "CPU µs/request (median)",
            "min",
            "max",
            "vs floor (median of runs)",
            "wall µs/request (median)",
        ),
        rows,
    )
    for peer in peers:
        if isinstance(peer, OurClient) and peer is not ours:
            print(
                f"{peer.name}: {ratios[peer.name] / ratios[ours.name]:.3f} x "
                f"{ours.name}'s CPU per request (median of runs' ratios to the floor)"
            )
    ratio = ratios[OurClient.name]
    verdict(
        f"okx-grid-async <= {GOAL_RATIO:.2f} x the floor",
        ratio <= GOAL_RATIO,
        f"{ratio:.2f}x: {median(cpu[OurClient.name]):.0f} µs vs "
        f"{median(floor_runs):.0f} µs per request",
    )
    if profiled:
        print(f"\ncProfile of okx-grid-async, {PROFILE_CALLS:,} sequential calls:\n{profiled}")


async def _profile(ours: OurClient) -> str:
    """Profile this client's sequential reads: the top functions by own CPU time.

    The profiler's timer is ``time.process_time``, so time spent waiting for the
    simulator's answers is not counted (cProfile's own overhead inflates small
    functions, so read the order, not the absolute figures).
    """
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    try:
        await ours.sequential(PROFILE_CALLS)
    finally:
        profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(PROFILE_LINES)
    return out.getvalue()


def main(argv: Sequence[str] = ()) -> None:
    """Run the benchmark (``--profile``: also profile this client) and print its table."""
    asyncio.run(_run(profile="--profile" in argv))


if __name__ == "__main__":
    main()
