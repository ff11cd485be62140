"""The simulator's instruments: each contract's value, lot, minimum size and tick, as at OKX.

Specs go by base currency and are OKX's for the USDT-margined swaps the demo
trades; any other instId (a future such as ``BTC-USDT-250328`` included) gets its
base currency's, or the default:

====  =====  =====  =====  ======  =====
base  ctVal  lotSz  minSz  tickSz  lever
====  =====  =====  =====  ======  =====
BTC   0.01   0.01   0.01   0.1     100
ETH   0.1    0.01   0.01   0.01    100
SOL   1      0.01   0.01   0.01    50
else  1      1      1      0.0001  20
====  =====  =====  =====  ======  =====

``ctVal`` is the contract size, in the base currency, that the position model
uses (``notionalUsd = |pos| * ctVal * markPx``); sizes are in contracts, the
tick in the quote currency. No imports from the rest of the simulator: the
exchange's state builds on this module.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

__all__ = ["LISTED_INST_IDS", "InstrumentSpec", "inst_type_of", "instrument_spec"]

# (ctVal, lotSz, minSz, tickSz, lever) by base currency.
_SPECS: Final = {
    "BTC": (Decimal("0.01"), Decimal("0.01"), Decimal("0.01"), Decimal("0.1"), Decimal(100)),
    "ETH": (Decimal("0.1"), Decimal("0.01"), Decimal("0.01"), Decimal("0.01"), Decimal(100)),
    "SOL": (Decimal(1), Decimal("0.01"), Decimal("0.01"), Decimal("0.01"), Decimal(50)),
}
_DEFAULT_SPEC: Final = (Decimal(1), Decimal(1), Decimal(1), Decimal("0.0001"), Decimal(20))
# Listed by GET /api/v5/public/instruments even before any grid trades them.
LISTED_INST_IDS: Final = ("BTC-USDT-SWAP", "ETH-USDT-SWAP", "SOL-USDT-SWAP")
# 2019-12-05T08:00:00Z, a listing time in OKX's Unix-ms format.
_LIST_TIME: Final = "1575532800000"
_MAX_LMT_SZ: Final = "100000000"
_MAX_MKT_SZ: Final = "10000"


def inst_type_of(inst_id: str) -> str:
    """``SWAP`` for a perpetual (``...-SWAP``), ``FUTURES`` otherwise."""
    return "SWAP" if inst_id.endswith("-SWAP") else "FUTURES"


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """One contract's grid: ``lot_sz`` and ``min_sz`` in contracts, ``tick_sz`` in the quote
    currency, ``ct_val`` in the base currency."""

    inst_id: str
    ct_val: Decimal
    lot_sz: Decimal
    min_sz: Decimal
    tick_sz: Decimal
    lever: Decimal

    @property
    def inst_type(self) -> str:
        """``SWAP`` or ``FUTURES``."""
        return inst_type_of(self.inst_id)

    def off_grid(self, sz: Decimal, px: Decimal) -> str | None:
        """The name of the first of ``sz`` and ``px`` OKX would refuse with 51000, or ``None``.

        ``sz`` must be at least ``min_sz`` and a multiple of ``lot_sz``; ``px`` a
        multiple of ``tick_sz``. A number too large to divide exactly is refused.
        """
        if sz < self.min_sz or not _is_multiple(sz, self.lot_sz):
            return "sz"
        if not _is_multiple(px, self.tick_sz):
            return "px"
        return None

    def row(self) -> dict[str, str]:
        """The instrument's row for ``GET /api/v5/public/instruments``, every field a string."""
        parts = self.inst_id.split("-")
        base = parts[0]
        quote = parts[1] if len(parts) > 1 else base
        family = f"{base}-{quote}"
        return {
            "alias": "",
            "baseCcy": "",
            "ctMult": "1",
            "ctType": "linear",
            "ctVal": str(self.ct_val),
            "ctValCcy": base,
            "expTime": "",
            "instFamily": family,
            "instId": self.inst_id,
            "instType": self.inst_type,
            "lever": str(self.lever),
            "listTime": _LIST_TIME,
            "lotSz": str(self.lot_sz),
            "maxLmtSz": _MAX_LMT_SZ,
            "maxMktSz": _MAX_MKT_SZ,
            "minSz": str(self.min_sz),
            "optType": "",
            "quoteCcy": "",
            "ruleType": "normal",
            "settleCcy": quote,
            "state": "live",
            "stk": "",
            "tickSz": str(self.tick_sz),
            "uly": family,
        }


@functools.cache
def instrument_spec(inst_id: str) -> InstrumentSpec:
    """The spec of ``inst_id``, by its base currency (the table in the module docstring)."""
    ct_val, lot_sz, min_sz, tick_sz, lever = _SPECS.get(inst_id.split("-")[0], _DEFAULT_SPEC)
    return InstrumentSpec(inst_id, ct_val, lot_sz, min_sz, tick_sz, lever)


def _is_multiple(value: Decimal, step: Decimal) -> bool:
    try:
        return value % step == 0  # Decimal's remainder is exact, or raises
    except InvalidOperation:
        return False
