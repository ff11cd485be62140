"""The log of close-position requests the simulated exchange processed, and their duplicates.

A bot must never send one close twice: the second may close what the first
already closed, or what a new position holds. The simulator cannot read a
bot's intent, so it uses one rule, the same for every test:

A **duplicate close** is a close-position request for a grid that repeats a
close of that grid the exchange already *executed* — a market close after an
executed market close, or a partial close with the same ``sz`` and ``px`` as
an executed partial close — when, between the two, the grid was given no new
position (its ``|pos|`` did not grow) and the earlier close order was not
cancelled.

It counts whatever the exchange answered the repeat (executed again, or
refused: 51059 once a market close has stopped the grid, 51342 while the first
order is live): sending it was the mistake. Typical causes: a close resent after
`OutcomeUnknownError` without `GridClient.reconcile_close()`; closes gathered
and the whole batch retried after one of them failed.

Only requests the exchange processed are logged: a request refused for rate,
failing authentication or answered by a fault that does not execute never
reached a grid. A close naming another user's grid, or no grid, is not logged.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Decimal

from okx_grid_async.simulator._model import SimError, SimGrid
from okx_grid_async.simulator._state import SimExchange

__all__ = ["CloseLog", "CloseRecord"]


@dataclass(frozen=True, slots=True)
class CloseRecord:
    """One close-position request the simulated exchange processed, for one user's grid.

    Attributes:
        t: When it was processed, in seconds on the simulator's clock.
        user_id: The user whose key signed it (the grid's owner).
        algo_id: The grid.
        mkt_close: ``True`` a market close, ``False`` a partial (limit) close.
        sz: The partial close's size in contracts (``None`` for a market close).
        px: The partial close's price (``None`` for a market close).
        code: ``"0"`` if it was executed, else OKX's code refusing it (51059, 51342...).
        ord_id: The close order a partial close placed (``""`` otherwise).
        pos_before: The grid's ``pos`` (contracts, signed) when it arrived.
        pos_after: The grid's ``pos`` right after it (a placed order fills later).
        duplicate_of: The executed close it repeats (see the module's rule), or ``None``.
    """

    t: float
    user_id: str
    algo_id: str
    mkt_close: bool
    sz: Decimal | None
    px: Decimal | None
    code: str
    ord_id: str
    pos_before: Decimal
    pos_after: Decimal
    duplicate_of: CloseRecord | None = None

    @property
    def executed(self) -> bool:
        """Whether the exchange carried it out (closed at market, or placed the order)."""
        return self.code == "0"

    def describe(self) -> str:
        """One line for a failure message: what was asked, when, and how it ended."""
        what = "market close" if self.mkt_close else f"partial close sz={self.sz} px={self.px}"
        ended = "executed" if self.executed else f"refused {self.code}"
        return f"{what} at t={self.t:.3f} ({ended}, pos {self.pos_before} -> {self.pos_after})"


class CloseLog:
    """Executes close-position against a `SimExchange` and logs each processed request.

    ``limit`` bounds memory for long-running simulators: only the newest
    ``limit`` records are kept (and compared for duplicates).
    """

    __slots__ = ("_records",)

    def __init__(self, limit: int | None = None) -> None:
        self._records: deque[CloseRecord] = deque(maxlen=limit)

    def execute(
        self,
        exchange: SimExchange,
        user_id: str,
        algo_id: str,
        sz: Decimal | None,
        px: Decimal | None,
        t: float,
    ) -> tuple[SimGrid, str]:
        """Close at market (``sz`` and ``px`` ``None``) or place a close order; log it.

        Returns the grid and the placed order's id (``""`` for a market close).

        Raises:
            SimError: As `SimExchange.market_close()` or
                `SimExchange.place_close_order()`; the refusal is logged.
        """
        try:
            grid = exchange.grid(algo_id)
        except KeyError:
            grid = None
        if grid is None or grid.user_id != user_id:
            return _close(exchange, user_id, algo_id, sz, px)  # refused, never logged
        pos_before = grid.pos
        duplicate_of = self._repeated(grid, sz, px)

        def record(code: str, ord_id: str) -> None:
            self._records.append(
                CloseRecord(
                    t=t,
                    user_id=user_id,
                    algo_id=algo_id,
                    mkt_close=sz is None,
                    sz=sz,
                    px=px,
                    code=code,
                    ord_id=ord_id,
                    pos_before=pos_before,
                    pos_after=grid.pos,
                    duplicate_of=duplicate_of,
                )
            )

        try:
            _, ord_id = _close(exchange, user_id, algo_id, sz, px)
        except SimError as err:
            record(err.code, "")
            raise
        record("0", ord_id)
        return grid, ord_id

    def _repeated(
        self, grid: SimGrid, sz: Decimal | None, px: Decimal | None
    ) -> CloseRecord | None:
        """The executed close of ``grid`` that a close of ``sz`` at ``px`` would repeat, if any."""
        for earlier in reversed(self._records):
            if earlier.algo_id != grid.algo_id or not earlier.executed:
                continue
            if abs(grid.pos) > abs(earlier.pos_after):
                return None  # a new position since: what came before is settled
            if (earlier.sz, earlier.px) != (sz, px):
                continue
            order = grid.order(earlier.ord_id) if earlier.ord_id else None
            if order is not None and order.state == "canceled":
                continue
            return earlier
        return None

    def records(self, algo_id: str | None = None) -> list[CloseRecord]:
        """The logged closes, oldest first, optionally of one grid only."""
        return [r for r in self._records if algo_id is None or r.algo_id == algo_id]


def _close(
    exchange: SimExchange, user_id: str, algo_id: str, sz: Decimal | None, px: Decimal | None
) -> tuple[SimGrid, str]:
    if sz is None or px is None:
        return exchange.market_close(user_id, algo_id), ""
    order = exchange.place_close_order(user_id, algo_id, sz, px)
    return exchange.grid(algo_id), order.ord_id
