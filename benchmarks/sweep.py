"""sweep (issue 6): ``sweep_positions`` over 10,000 grids with bounded tasks and memory.

The simulator runs in another process with its limit raised out of the way, so
every task and every byte counted here is the client's. The client is paced by
:func:`benchmarks.peers.unpaced_limiter` (never waits; see its note on why not
``max_rate=10**6``). While the sweep runs, a sampler task counts
``asyncio.all_tasks()`` every few milliseconds; memory is read from
``/proc/self/status`` (VmRSS before and after, VmHWM for the peak, reset just
before the sweep where the kernel allows).

Goal: RSS growth under 30 MB; tasks at most ``concurrency`` plus a small constant.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from okx_grid_async import Credentials, GridClient

from .peers import CALL_TIMEOUT, unpaced_limiter
from .report import print_table, print_title, verdict
from .simulator_process import SimulatorConfig, SimulatorProcess

__all__ = ["main"]

IDS: Final = 10_000
CONCURRENCY: Final = 50
SAMPLE_INTERVAL: Final = 0.002
GOAL_RSS_MB: Final = 30.0
# The benchmark's own tasks (this one and the sampler) and a few of aiohttp's.
TASK_ALLOWANCE: Final = 5
_STATUS: Final = Path("/proc/self/status")
_CLEAR_REFS: Final = Path("/proc/self/clear_refs")


def _status_mb(field: str) -> float:
    """A ``kB`` field of /proc/self/status (VmRSS, VmHWM), in MB (10**6 bytes)."""
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError(f"{field} not in {_STATUS}")


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to clear_refs); False if not allowed."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


class _TaskSampler:
    """Counts the event loop's tasks every SAMPLE_INTERVAL seconds; keeps the peak."""

    def __init__(self) -> None:
        self.peak = 0
        self.samples = 0

    async def run(self) -> None:
        while True:
            self.peak = max(self.peak, len(asyncio.all_tasks()))
            self.samples += 1
            await asyncio.sleep(SAMPLE_INTERVAL)


async def _run() -> None:
    print_title(
        "sweep",
        f"sweep_positions of {IDS:,} grids, concurrency {CONCURRENCY}, simulator in another "
        "process with its limit raised",
    )
    config = SimulatorConfig(
        grids=IDS, max_rate=10**9, time_period=1.0, enforce_limits=True, history_limit=1000
    )
    async with SimulatorProcess(config) as sim:
        a = sim.account
        async with GridClient(
            Credentials(a.api_key, a.secret_key, a.passphrase),
            base_url=sim.url,
            user_id=a.user_id,
            rate_limiter=unpaced_limiter(CONCURRENCY * 2),
            timeout=CALL_TIMEOUT,
        ) as client:
            ok = errors = 0
            ids = (str(algo_id) for algo_id in sim.algo_ids)
            tasks_before = len(asyncio.all_tasks())
            rss_before = _status_mb("VmRSS")
            peak_reset = _reset_peak()
            hwm_before = _status_mb("VmHWM")
            sampler = _TaskSampler()
            sampling = asyncio.create_task(sampler.run())
            cpu = time.process_time()
            started = time.perf_counter()
            async with contextlib.aclosing(
                client.sweep_positions(ids, concurrency=CONCURRENCY)
            ) as results:
                async for result in results:
                    if result.error is None:
                        ok += 1
                    else:
                        errors += 1
            wall = time.perf_counter() - started
            cpu = time.process_time() - cpu
            sampling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampling
            rss_after = _status_mb("VmRSS")
            hwm_after = _status_mb("VmHWM")
    growth = rss_after - rss_before
    peak_growth = hwm_after - rss_before
    own_tasks = 2  # the benchmark's main task and the sampler
    client_tasks = sampler.peak - own_tasks
    print_table(
        ("figure", "value"),
        [
            ("grids swept (ok / errors)", f"{ok:,} / {errors:,}"),
            ("concurrency", CONCURRENCY),
            ("tasks before the sweep (main task)", tasks_before),
            (f"peak asyncio.all_tasks() ({sampler.samples:,} samples)", sampler.peak),
            ("peak tasks without the benchmark's main and sampler tasks", client_tasks),
            ("VmRSS before (MB)", rss_before),
            ("VmRSS after (MB)", rss_after),
            ("RSS growth, after - before (MB)", growth),
            (
                "VmHWM before / after (MB)"
                + ("" if peak_reset else " (peak not resettable: since start)"),
                f"{hwm_before:.1f} / {hwm_after:.1f}",
            ),
            ("peak RSS growth, VmHWM after - VmRSS before (MB)", peak_growth),
            ("wall time (s)", wall),
            ("requests per second", (ok + errors) / wall),
            ("client CPU per request (µs)", cpu / (ok + errors) * 1e6),
        ],
    )
    verdict(
        f"RSS growth < {GOAL_RSS_MB:.0f} MB",
        max(growth, peak_growth) < GOAL_RSS_MB and errors == 0,
        f"{growth:.1f} MB after, {peak_growth:.1f} MB at the peak, {errors} errors",
    )
    verdict(
        f"tasks <= concurrency + {TASK_ALLOWANCE}",
        sampler.peak <= CONCURRENCY + TASK_ALLOWANCE,
        f"peak {sampler.peak} tasks in all, {client_tasks} without the benchmark's 2, "
        f"for concurrency {CONCURRENCY}",
    )


def main(argv: Sequence[str] = ()) -> None:
    """Run the benchmark and print its table."""
    del argv
    asyncio.run(_run())


if __name__ == "__main__":
    main()
