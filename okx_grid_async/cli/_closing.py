"""``okx-grid close`` and ``okx-grid cancel``: the two commands that send a POST.

A POST is never sent twice: when the network fails after it left, or Ctrl-C
interrupts it in flight, the outcome is unknown (exit 4) and the advice is to
read the grid before acting again.
"""

from __future__ import annotations

import argparse
from decimal import Decimal
from typing import Final

from okx_grid_async import GridClient

from ._arguments import ALGO_ID, ORD_ID, PX, SZ
from ._command import Command
from ._environment import PROG
from ._exit import EXIT_OK
from ._output import Output
from ._render import format_decimal
from ._session import interruptible

__all__ = ["COMMANDS"]


def _contracts(sz: Decimal) -> str:
    return f"{format_decimal(sz)} {'contract' if sz == 1 else 'contracts'}"


def _close_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("algo_id", type=ALGO_ID, metavar="ALGO_ID", help="the grid to close")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--market", action="store_true", help="close the whole position at market")
    mode.add_argument(
        "--sz", type=SZ, metavar="N", help="contracts to close with a limit order (needs --px)"
    )
    parser.add_argument("--px", type=PX, metavar="P", help="the limit order's price (with --sz)")


def _check_close(args: argparse.Namespace) -> str | None:
    if args.sz is not None and args.px is None:
        return "--sz needs --px, the limit price of the close order"
    if args.px is not None and args.sz is None:
        return "--px goes with --sz (a partial close); --market closes everything at market"
    return None


def _run_close(args: argparse.Namespace, out: Output) -> int:
    algo_id: str = args.algo_id

    async def work(client: GridClient) -> int:
        if args.market:
            result = await client.close_position(algo_id, mkt_close=True)
            text = f"grid {algo_id}: position closed at market"
        else:
            result = await client.close_position(algo_id, mkt_close=False, sz=args.sz, px=args.px)
            text = (
                f"grid {algo_id}: limit close order {result.ord_id} placed for "
                f"{_contracts(args.sz)} at {format_decimal(args.px)}"
            )
        out.result(result, lambda: text)
        return EXIT_OK

    return interruptible(args, out, work, algo_id, "close")


def _cancel_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("algo_id", type=ALGO_ID, metavar="ALGO_ID", help="the grid")
    parser.add_argument(
        "ord_id", type=ORD_ID, metavar="ORD_ID", help="the close order's id ('close' printed it)"
    )


def _run_cancel(args: argparse.Namespace, out: Output) -> int:
    algo_id: str = args.algo_id
    ord_id: str = args.ord_id

    async def work(client: GridClient) -> int:
        result = await client.cancel_close_order(algo_id, ord_id)
        out.result(result, lambda: f"grid {algo_id}: close order {ord_id} cancelled")
        return EXIT_OK

    return interruptible(args, out, work, algo_id, "cancel")


COMMANDS: Final = (
    Command(
        name="close",
        summary="close a grid's position, at market or with a limit order",
        description="""\
Close the position a grid kept when it was stopped ("keep position"): its
STATE is no_close_position. A running grid cannot be closed (OKX: 51059).

  --market            closes everything at the mark price;
  --sz N --px P       places a limit order closing N contracts at price P,
                      and prints its ordId; the order waits until the price
                      is reached.

Sizes and prices are read as exact decimals ("2.5" stays 2.5). A close is never
sent twice: if the network fails after it left, the outcome is unknown (exit 4)
and you should read the grid with 'positions' before trying again.""",
        examples=f"""\
examples:
  {PROG} close 581234567890123456 --market
  {PROG} close 581234567890123456 --sz 2.5 --px 65000.1
  {PROG} close 581234567890123456 --market --json""",
        run=_run_close,
        arguments=_close_arguments,
        check=_check_close,
    ),
    Command(
        name="cancel",
        summary="cancel the limit close order a partial close placed",
        description=f"""\
Cancel the limit order that '{PROG} close ALGO_ID --sz N --px P' placed, using
the order id it printed. Until it is cancelled or filled, OKX refuses another
close of the same grid (51342).""",
        examples=f"""\
examples:
  {PROG} cancel 581234567890123456 581234567890124000
  {PROG} cancel 581234567890123456 581234567890124000 --json""",
        run=_run_cancel,
        arguments=_cancel_arguments,
    ),
)
