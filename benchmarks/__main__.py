"""``python -m benchmarks`` runs every benchmark, each in a fresh process; ``NAME`` runs one.

Usage::

    python -m benchmarks              # all, in sequence (what `make bench` runs)
    python -m benchmarks NAME [ARGS]  # one, in this process (e.g. client_cost --profile)
    python -m benchmarks --list

Each benchmark runs in its own process so that one's memory high-water mark,
garbage and imports do not colour the next one's figures; each is stopped if it
runs past its time limit.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Final

__all__ = ["BENCHMARKS", "main"]

# name -> (what it measures, seconds after which it is stopped)
BENCHMARKS: Final = {
    "limiter": ("issue 3: throughput at OKX's limit, no 50011, local and Redis", 150),
    "sweep": ("issue 6: sweeping 10,000 grids: tasks, memory, speed", 120),
    "client_cost": ("issue 7: CPU per request vs ccxt, python-okx, raw aiohttp", 300),
    "waiting_cost": ("issue 7: CPU per request while paced by the limiter, vs ccxt", 200),
    "decoding": ("issue 7: msgspec decoding vs json.loads and Decimal by hand", 120),
    # About 210 s: 1,000 polls at 10 per second, twice.
    "gathering": ("issue 11: a gather of 1,000 polls with defaults, 1 process and 3", 330),
    # About 280 s: 220 polls per client at 5 round trips, then 300 polls through Redis.
    "latency": ("issue 12: the whole budget at 0-400 ms round trips, vs ccxt", 420),
    # About 250 s: 30 s of pushes, a resync of 1,000 and a polling round of 1,000 at 10/s.
    "watching": ("issue 13: 1,000 grids pushed over a WebSocket vs polled", 420),
}


def _run_all() -> int:
    started = time.perf_counter()
    failed: list[str] = []
    for name, (_, limit) in BENCHMARKS.items():
        try:
            code = subprocess.run(
                [sys.executable, "-m", "benchmarks", name], check=False, timeout=limit
            ).returncode
        except subprocess.TimeoutExpired:
            print(f"\n{name}: stopped after its limit of {limit} s", flush=True)
            code = -1
        if code != 0:
            failed.append(name)
    total = time.perf_counter() - started
    print(f"\nAll benchmarks: {total:.0f} s in total.", flush=True)
    if failed:
        print(f"Failed: {', '.join(failed)}", flush=True)
        return 1
    return 0


def main(argv: Sequence[str]) -> int:
    """Run all benchmarks, or the one named first in ``argv``; the exit status."""
    if not argv:
        return _run_all()
    name, *rest = argv
    if name in ("-l", "--list"):
        for known, (what, _) in BENCHMARKS.items():
            print(f"{known:14} {what}")
        return 0
    if name not in BENCHMARKS:
        print(f"unknown benchmark {name!r}; one of: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"benchmarks.{name}")
    module.main(rest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
