"""``okx-grid simulate`` and ``okx-grid demo``: the commands that need no OKX account.

``simulate`` serves the simulator with the demo account until Ctrl-C and prints
``export`` lines (URL included) to paste into another shell; ``demo`` runs the
tour of `_demo` in this process and draws its report with `_render`. The
simulator (aiohttp.web) is imported only when one of them runs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Final

from ._arguments import GRIDS, PORT
from ._command import Command
from ._environment import BASE_URL_VAR, PROG
from ._exit import EXIT_API_ERROR, EXIT_NETWORK, EXIT_OK, CommandError
from ._output import Output
from ._render import SweepProgress, demo_report, export_lines
from ._session import run

__all__ = ["COMMANDS"]

_HOST: Final = "127.0.0.1"
# Marks move every second, as on a live market; the history is kept for inspection.
_PRICE_TICK_INTERVAL: Final = 1.0
_HISTORY_LIMIT: Final = 10_000


def _simulate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port", type=PORT, default=8000, help="TCP port on 127.0.0.1 (default: 8000)"
    )
    parser.add_argument(
        "--grids", type=GRIDS, default=50, help="demo grids to create (default: 50)"
    )


async def _serve(port: int, grids: int, out: Output) -> None:
    from okx_grid_async.simulator import (
        DEMO_API_KEY,
        DEMO_PASSPHRASE,
        DEMO_SECRET_KEY,
        DEMO_USER_ID,
        GridSimulator,
    )

    async with GridSimulator(
        _HOST, port, seed=0, price_tick_interval=_PRICE_TICK_INTERVAL, history_limit=_HISTORY_LIMIT
    ) as sim:
        sim.add_account(DEMO_API_KEY, DEMO_SECRET_KEY, DEMO_PASSPHRASE, DEMO_USER_ID)
        sim.add_demo_grids(DEMO_USER_ID, grids)
        exports = {
            BASE_URL_VAR: sim.url,
            "OKX_API_KEY": DEMO_API_KEY,
            "OKX_SECRET_KEY": DEMO_SECRET_KEY,
            "OKX_PASSPHRASE": DEMO_PASSPHRASE,
        }
        out.note(
            f"simulator listening on {sim.url}: demo account {DEMO_USER_ID}, {grids} grids; "
            "Ctrl-C stops it"
        )
        # The demo credentials are fake and public: shown even when exported already.
        out.showing(DEMO_SECRET_KEY, DEMO_PASSPHRASE).result(exports, lambda: export_lines(exports))
        out.note(f"paste those lines into another shell, then try: {PROG} sweep --pending")
        await asyncio.Event().wait()


def _run_simulate(args: argparse.Namespace, out: Output) -> int:
    try:
        asyncio.run(_serve(args.port, args.grids, out))
    except KeyboardInterrupt:
        out.note("simulator stopped")
    except OSError as exc:
        return out.fail(
            CommandError(f"cannot serve on {_HOST}:{args.port}: {exc}", exit_code=EXIT_NETWORK)
        )
    return EXIT_OK


def _run_demo(args: argparse.Namespace, out: Output) -> int:
    from ._demo import run_demo

    async def work() -> int:
        summary = await run_demo(SweepProgress(sys.stderr))
        out.result(summary, lambda: demo_report(summary))
        if summary.rejections:
            raise CommandError(
                f"the simulator answered 50011 (rate limit) {summary.rejections} times",
                exit_code=EXIT_API_ERROR,
            )
        return EXIT_OK

    return run(out, work())


COMMANDS: Final = (
    Command(
        name="simulate",
        summary="serve an OKX look-alike simulator to try the commands on",
        description=f"""\
Serve a simulator of OKX's grid endpoints on 127.0.0.1, with one demo account
and its grids, until Ctrl-C. It prints 'export' lines to paste into another
shell: the demo account's (fake) credentials and {BASE_URL_VAR}, the
simulator's URL, so that the commands go to it and never to OKX.""",
        examples=f"""\
examples:
  {PROG} simulate --port 8000 --grids 50
  # then, in another shell, paste the export lines it printed and run:
  {PROG} sweep --pending""",
        run=_run_simulate,
        arguments=_simulate_arguments,
        connects=False,
        json=False,
    ),
    Command(
        name="demo",
        summary="a five-second tour against a built-in simulator",
        description="""\
Start a simulator in this process with about 50 grids, discover them, sweep
every position concurrently through the rate limiter, close a few (3 at
market, 2 with limit orders), read those again, and show what was done to
each grid (state and position, before -> after) with the rate limiter's
figures per endpoint: requests, mean wait for a slot, and how many the
simulator rejected for rate (50011), which is 0. Needs no credentials or
network.""",
        examples=f"""\
examples:
  {PROG} demo
  {PROG} demo --json""",
        run=_run_demo,
        connects=False,
    ),
)
