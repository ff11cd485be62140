"""``okx-grid positions`` and ``okx-grid sweep``: read grids, one row per position.

Both read the positions concurrently through the rate limiter and each grid's
STATE from OKX's pending-grids list, and show every grid, a failed one with its
error. ``positions`` is for a few ids and exits with the first failure's code;
``sweep`` goes through many (or every pending grid), with a progress bar, and
exits 1 when some failed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Final

from okx_grid_async import GridClient

from ._arguments import ALGO_ID, CONCURRENCY
from ._command import Command
from ._environment import PROG
from ._exit import EXIT_OK, EXIT_SOME_FAILED, exit_code_for
from ._grids import GridRow, StatesUnknown, read_grids, summarize
from ._output import Output
from ._render import SweepProgress, grids_table, sweep_report
from ._session import with_client

__all__ = ["COMMANDS"]

_DEFAULT_CONCURRENCY: Final = 20


def _unique(algo_ids: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(algo_ids))


def _note_states(out: Output, rows: Sequence[GridRow], unknown: StatesUnknown | None) -> None:
    """Say why STATE shows ?, unless every grid failed too (its error says it)."""
    if unknown is not None and any(row.error is None for row in rows):
        out.note(f"the grids' states could not be read (STATE shows ?): {unknown.error}")


def _positions_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "algo_ids", nargs="+", type=ALGO_ID, metavar="ALGO_ID", help="grid (algo order) ids"
    )


def _run_positions(args: argparse.Namespace, out: Output) -> int:
    async def work(client: GridClient) -> int:
        rows, unknown = await read_grids(
            client, _unique(args.algo_ids), concurrency=_DEFAULT_CONCURRENCY
        )
        out.result({"grids": rows}, lambda: grids_table(rows, redact=out.redact))
        _note_states(out, rows, unknown)
        codes = [_report_failure(out, row) for row in rows if row.error is not None]
        return codes[0] if codes else EXIT_OK

    return with_client(args, out, work)


def _report_failure(out: Output, row: GridRow) -> int:
    """Name the failed grid on stderr, with its error; returns the error's exit code."""
    assert row.error is not None
    out.report(row.error, algo_id=row.algo_id, prefix=f"grid {row.algo_id}: ")
    return exit_code_for(row.error)


def _sweep_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "algo_ids", nargs="*", type=ALGO_ID, metavar="ALGO_ID", help="grid (algo order) ids"
    )
    parser.add_argument(
        "--pending",
        action="store_true",
        help="discover the grids: every running or stopped-with-position grid of the account",
    )
    parser.add_argument(
        "--concurrency",
        type=CONCURRENCY,
        default=_DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"requests in flight at once (default: {_DEFAULT_CONCURRENCY}); more than OKX's "
        "20 per 2 s only queue at the rate limiter, which fails nothing",
    )


def _check_sweep(args: argparse.Namespace) -> str | None:
    if args.pending and args.algo_ids:
        return "give ALGO_IDs or --pending, not both"
    if not args.pending and not args.algo_ids:
        return "give the ALGO_IDs to read, or --pending for every grid of the account"
    return None


def _run_sweep(args: argparse.Namespace, out: Output) -> int:
    async def work(client: GridClient) -> int:
        ids = None if args.pending else _unique(args.algo_ids)
        rows, unknown = await read_grids(
            client, ids, concurrency=args.concurrency, progress=SweepProgress(sys.stderr)
        )
        summary = summarize(rows)
        out.result(summary, lambda: sweep_report(summary, redact=out.redact))
        _note_states(out, rows, unknown)
        return EXIT_SOME_FAILED if summary.failed else EXIT_OK

    return with_client(args, out, work)


COMMANDS: Final = (
    Command(
        name="positions",
        summary="show the positions of some grids",
        description="""\
Show each grid's state and position: OKX's STATE (no_close_position: stopped
with its position kept, which 'close' acts on; running; ...), instrument,
contracts (pos, negative for a short), average and mark price, unrealised
profit and loss (upl). Every grid is shown; one that fails shows its error,
is named on stderr, and sets the exit code.""",
        examples=f"""\
examples:
  {PROG} positions 581234567890123456
  {PROG} positions 581234567890123456 581234567890123999 --json
  {PROG} --base-url https://us.okx.com positions 581234567890123456""",
        run=_run_positions,
        arguments=_positions_arguments,
    ),
    Command(
        name="sweep",
        summary="read many grids' positions concurrently",
        description="""\
Read the positions of many grids at once, one row per grid: its state and
position, or that it is empty, or the error it got. A grid that fails does not
stop the sweep; the exit code is then 1. With --pending, the grids are those
OKX lists as pending: running, or stopped with their position kept.

A progress bar is drawn on stderr when it is a terminal.""",
        examples=f"""\
examples:
  {PROG} sweep --pending
  {PROG} sweep --pending --json > positions.json
  {PROG} sweep 581234567890123456 581234567890123999""",
        run=_run_sweep,
        arguments=_sweep_arguments,
        check=_check_sweep,
    ),
)
