"""Closing a grid's position: the checks made before a close is sent, and reconciling after.

`GridClient.close_position()` builds its request with `close_params()`: a market
close takes no size or price; a partial (limit) close needs both, as positive
Decimals, and is checked against the grid's position and its instrument's size
and price grid before anything is sent. `reconciliation()` tells, from a grid's
position read after an `OutcomeUnknownError`, whether the close took effect.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal

import msgspec

from ._errors import InvalidArgumentError, MalformedResponseError
from ._instruments import Instrument, check_on_grid, check_within_position
from ._models import GridPosition
from ._validation import check_bool, check_id, check_positive_decimal, wire_decimal

__all__ = ["CloseReconciliation", "close_params", "reconciliation"]

# What a partial close reads before it is sent: the grid's position, an instrument.
ReadPositions = Callable[[str], Awaitable[list[GridPosition]]]
ReadInstrument = Callable[[str], Awaitable[Instrument]]


class CloseReconciliation(msgspec.Struct, frozen=True, kw_only=True):
    """What a grid's position says after a close whose outcome was unknown.

    ``is_closed`` is True when the grid holds no position any more.
    """

    algo_id: str
    positions: list[GridPosition]
    is_closed: bool


def reconciliation(algo_id: str, positions: list[GridPosition]) -> CloseReconciliation:
    """The verdict on a grid whose position now reads ``positions`` (none: closed)."""
    return CloseReconciliation(
        algo_id=algo_id,
        positions=positions,
        is_closed=all(p.is_empty for p in positions),
    )


async def close_params(
    algo_id: str,
    mkt_close: bool,
    sz: Decimal | int | str | None,
    px: Decimal | int | str | None,
    read_positions: ReadPositions,
    read_instrument: ReadInstrument,
) -> dict[str, object]:
    """The body of a close-position request, every check passed.

    Raises:
        TypeError: an argument of the wrong type, a float among them.
        InvalidArgumentError: an invalid id, size or price; sz or px with a market
            close or missing from a partial one; a partial close above the
            position or off the instrument's grid.
        MalformedResponseError: the grid's position names no instrument.
    """
    check_id(algo_id, "algo_id")
    check_bool(mkt_close, "mkt_close")
    params: dict[str, object] = {"algoId": algo_id, "mktClose": mkt_close}
    if mkt_close:
        if sz is not None or px is not None:
            raise InvalidArgumentError(
                "sz and px are for a partial close: leave them out with mkt_close=True"
            )
        return params
    if sz is None or px is None:
        missing = " and ".join(n for n, v in (("sz", sz), ("px", px)) if v is None)
        raise InvalidArgumentError(f"{missing} required when mkt_close=False")
    size = check_positive_decimal(sz, "sz")
    price = check_positive_decimal(px, "px")
    await _check_partial_close(algo_id, size, price, read_positions, read_instrument)
    params["sz"] = wire_decimal(size)
    params["px"] = wire_decimal(price)
    return params


async def _check_partial_close(
    algo_id: str,
    sz: Decimal,
    px: Decimal,
    read_positions: ReadPositions,
    read_instrument: ReadInstrument,
) -> None:
    """Refuse a limit close above the grid's position or off its instrument's grid."""
    positions = await read_positions(algo_id)
    position = sum((p.pos for p in positions if p.pos), Decimal(0))
    check_within_position(sz, position)
    inst_id = next((p.inst_id for p in positions if p.inst_id), "")
    if not inst_id:
        raise MalformedResponseError(
            f"grid {algo_id}'s position names no instId: its size grid is unknown", 200, ""
        )
    instrument = await read_instrument(inst_id)
    check_on_grid(instrument, sz, px, side="sell" if position > 0 else "buy")
