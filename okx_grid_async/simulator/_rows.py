"""OKX's rows for a grid and an account, every number a string, as REST and the WebSocket send them.

One simple model keeps the position fields consistent with each other:

- ``ctVal`` (contract size in the base currency): the instrument's (see
  ``_instruments``): BTC 0.01, ETH 0.1, others 1.
- ``pos`` is signed, in contracts: negative is short (OKX's ``net`` mode).
- ``notionalUsd = |pos| * ctVal * markPx``; ``imr = notionalUsd / lever``;
  ``mmr = notionalUsd * 0.004``.
- ``upl = (markPx - avgPx) * pos * ctVal``; ``uplRatio = upl / imr``;
  ``mgnRatio = (imr + upl) / mmr``.
- ``liqPx = avgPx * (1 - 1/lever + 0.004)`` for a long,
  ``avgPx * (1 + 1/lever - 0.004)`` for a short.
- A grid without a position answers ``pos`` "0" and "" for every number that
  needs one (avgPx, liqPx, imr, mmr, upl, uplRatio, mgnRatio, notionalUsd, adl).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from okx_grid_async.simulator._model import SimAccount, SimGrid, fmt

__all__ = ["MMR_RATE", "account_config_row", "algo_order_row", "position_row"]

MMR_RATE: Final = Decimal("0.004")


def position_row(grid: SimGrid) -> dict[str, str]:
    """The grid's row for ``GET /api/v5/tradingBot/grid/positions``, every field as a string."""
    has_pos = grid.pos != 0
    notional = abs(grid.pos) * grid.ct_val * grid.mark_px
    imr = notional / grid.lever
    mmr = notional * MMR_RATE
    upl = grid.upl
    if grid.pos > 0:
        liq_px = grid.avg_px * (1 - 1 / grid.lever + MMR_RATE)
    else:
        liq_px = grid.avg_px * (1 + 1 / grid.lever - MMR_RATE)

    def num(value: Decimal) -> str:
        return fmt(value) if has_pos else ""

    return {
        "adl": "1" if has_pos else "",
        "algoClOrdId": grid.algo_cl_ord_id,
        "algoId": grid.algo_id,
        "avgPx": num(grid.avg_px),
        "cTime": str(grid.c_time),
        "ccy": grid.ccy,
        "imr": num(imr),
        "instId": grid.inst_id,
        "instType": grid.inst_type,
        "last": fmt(grid.mark_px),
        "lever": fmt(grid.lever),
        "liqPx": num(max(liq_px, Decimal(0))),
        "markPx": fmt(grid.mark_px),
        "mgnMode": "cross",
        "mgnRatio": num((imr + upl) / mmr) if has_pos else "",
        "mmr": num(mmr),
        "notionalUsd": num(notional),
        "pos": fmt(grid.pos),
        "posSide": "net",
        "uTime": str(grid.u_time),
        "upl": num(upl),
        "uplRatio": num(upl / imr) if has_pos else "",
    }


def algo_order_row(grid: SimGrid) -> dict[str, str]:
    """The grid's row for ``orders-algo-pending`` / ``orders-algo-history`` (a subset of OKX's)."""
    total_pnl = grid.realized_pnl + grid.upl
    return {
        "algoClOrdId": grid.algo_cl_ord_id,
        "algoId": grid.algo_id,
        "algoOrdType": "contract_grid",
        "cTime": str(grid.c_time),
        "direction": grid.direction,
        "gridNum": str(grid.grid_num),
        "instId": grid.inst_id,
        "instType": grid.inst_type,
        "investment": fmt(grid.investment),
        "lever": fmt(grid.lever),
        "maxPx": fmt(grid.max_px),
        "minPx": fmt(grid.min_px),
        "pnlRatio": fmt(total_pnl / grid.investment) if grid.investment else "",
        "state": grid.state,
        # A running grid has no stop type; every other state here came from "stop, keep position".
        "stopType": "" if grid.state == "running" else "2",
        "sz": fmt(grid.investment),
        "tag": "",
        "totalPnl": fmt(total_pnl),
        "uTime": str(grid.u_time),
    }


def account_config_row(account: SimAccount) -> dict[str, object]:
    """The row of ``GET /api/v5/account/config`` for the key ``account``.

    A main account (``mainUid`` is ``uid``) in single-currency margin mode
    (``acctLv`` 2), with the key's ``label`` and trade permission. Numbers and
    codes are strings as OKX sends them; its flags and lists keep their JSON
    types, so a decoder meets OKX's mix.
    """
    return {
        "acctLv": "2",
        "autoLoan": False,
        "ctIsoMode": "automatic",
        "enableSpotBorrow": False,
        "greeksType": "PA",
        "ip": "",
        "kycLv": "2",
        "label": account.label,
        "level": "Lv1",
        "levelTmp": "",
        "liquidationGear": "-1",
        "mainUid": account.user_id,
        "mgnIsoMode": "automatic",
        "opAuth": "0",
        "perm": "read_only,trade",
        "posMode": "long_short_mode",
        "roleType": "0",
        "spotBorrowAutoRepay": False,
        "spotOffsetType": "",
        "spotRoleType": "0",
        "spotTraderInsts": [],
        "traderInsts": [],
        "type": "0",
        "uid": account.user_id,
    }
