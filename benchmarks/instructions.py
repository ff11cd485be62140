"""Instructions per request under callgrind: the repeatable companion of client_cost.

CPU time on a shared machine moves by 10 % and more from run to run, so a change
worth 1 % cannot be seen in it. The number of instructions a request executes
moves by about 0.2 %. For each client, this runs a child process under
``valgrind --tool=callgrind`` with instrumentation off, reads grid-positions
from the simulator (in another process, not under valgrind) 300 times to warm
up, then switches instrumentation on (``callgrind_control -i on``) for
``--calls`` more reads, and divides the total by them. Each client takes about
half a minute. Requires valgrind; not part of ``python -m benchmarks``.

Usage::

    python -m benchmarks.instructions          # api, off and raw (see below)
    python -m benchmarks.instructions api raw --calls 2000

Clients: ``api`` (as installed: with opentelemetry-api, no SDK configured),
``off`` (no OpenTelemetry), ``sdk`` (an SDK configured), ``raw`` (the floor).
Kernel time is not counted, so the ratios here come out a few hundredths above
client_cost's CPU ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Final, cast, get_args

from .peers import OurClient, Peer, RawAiohttp, Telemetry, unpaced_limiter
from .report import print_table, print_title
from .simulator_process import SimulatorConfig, SimulatorProcess

__all__ = ["main"]

WARMUP: Final = 300
CALLS: Final = 1000
CLIENTS: Final = (*get_args(Telemetry), "raw")
DEFAULT_CLIENTS: Final = ("api", "off", "raw")


async def _child(client: str, calls: int) -> None:
    """Under callgrind: warm up, then count ``calls`` reads."""
    config = SimulatorConfig(grids=1, max_rate=10**9, time_period=1.0, enforce_limits=False)
    async with SimulatorProcess(config) as sim:
        algo_id = str(sim.algo_ids[0])
        peer: Peer
        if client == "raw":
            peer = RawAiohttp(sim.url, sim.account, algo_id)
        else:
            ours = OurClient(sim.url, sim.account, algo_id, telemetry=cast(Telemetry, client))
            await ours.open(unpaced_limiter())
            peer = ours
        try:
            await peer.sequential(WARMUP)
            _instrument("on")
            await peer.sequential(calls)
            _instrument("off")
        finally:
            await peer.aclose()


def _instrument(state: str) -> None:
    subprocess.run(
        [_tool("callgrind_control"), "-i", state, str(os.getpid())], check=True, capture_output=True
    )


def _tool(name: str) -> str:
    """The full path of one of valgrind's programs; exits if it is not installed."""
    path = shutil.which(name)
    if path is None:
        sys.exit(f"{name} is required (valgrind's): apt-get install valgrind")
    return path


def _count(client: str, calls: int, workdir: Path) -> int:
    """Instructions executed by ``calls`` reads of ``client``, from callgrind's totals."""
    out = workdir / f"callgrind.{client}.out"
    subprocess.run(
        [
            _tool("valgrind"),
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-m",
            "benchmarks.instructions",
            "--child",
            client,
            "--calls",
            str(calls),
        ],
        check=True,
        capture_output=True,
    )
    for line in out.read_text().splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {out}")


def main(argv: Sequence[str] = ()) -> None:
    """Count each client's instructions per request and print them against the floor's."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instructions")
    parser.add_argument("clients", nargs="*", help=f"any of {', '.join(CLIENTS)}")
    parser.add_argument("--calls", type=int, default=CALLS)
    parser.add_argument("--child", choices=CLIENTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    clients = args.clients or DEFAULT_CLIENTS
    unknown = set(clients) - set(CLIENTS)
    if unknown:
        parser.error(f"unknown client(s) {', '.join(sorted(unknown))}; any of {', '.join(CLIENTS)}")
    if args.child:
        asyncio.run(_child(args.child, args.calls))
        return
    _tool("callgrind_control")
    print_title(
        "instructions",
        f"instructions per grid-positions request under callgrind, {args.calls:,} sequential "
        f"calls after {WARMUP} warm-up calls; simulator in another process, limits off",
    )
    with tempfile.TemporaryDirectory() as workdir:
        per_call = {c: _count(c, args.calls, Path(workdir)) / args.calls for c in clients}
    floor = per_call.get("raw")
    print_table(
        ("client", "instructions per request (k)", "vs floor"),
        [
            [name, round(count / 1000, 1), f"{count / floor:.3f}x" if floor else ""]
            for name, count in per_call.items()
        ],
    )


if __name__ == "__main__":
    main(sys.argv[1:])
