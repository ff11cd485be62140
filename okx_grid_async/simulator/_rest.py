"""The REST endpoints: each takes the caller and the request's parameters and answers rows.

A handler is ``(caller, params) -> rows``: it checks its parameters (``_params``),
asks the exchange, and returns the rows of OKX's ``data``, or raises `SimError`,
which the router answers in OKX's envelope. It does no I/O; authentication,
limits and faults happened before it (``_routing``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from okx_grid_async._constants import (
    ACCOUNT_CONFIG_PATH,
    CONTRACT_GRID,
    GRID_CANCEL_CLOSE_ORDER_PATH,
    GRID_CLOSE_POSITION_PATH,
    GRID_ORDERS_HISTORY_PATH,
    GRID_ORDERS_PENDING_PATH,
    GRID_POSITIONS_PATH,
    PUBLIC_INSTRUMENTS_PATH,
    PUBLIC_TIME_PATH,
)
from okx_grid_async.simulator._answers import Rows
from okx_grid_async.simulator._closes import CloseLog
from okx_grid_async.simulator._model import SimAccount, SimError, param_empty, param_error
from okx_grid_async.simulator._params import (
    Params,
    algo_id_cursor,
    optional,
    page_limit,
    positive_decimal,
    required,
)
from okx_grid_async.simulator._rows import account_config_row, algo_order_row, position_row
from okx_grid_async.simulator._state import SimExchange

__all__ = ["RestEndpoints", "Route"]

# instType values OKX's public instruments endpoint takes; the simulator lists contracts only.
_INST_TYPES: Final = frozenset({"SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION"})


@dataclass(frozen=True, slots=True)
class Route:
    """An endpoint: its method, whether it is private, and its handler."""

    method: str
    private: bool
    handler: Callable[[SimAccount, Params], Rows]
    # The handler under the CURSOR_CYCLE fault, for the listings.
    cycled: Callable[[SimAccount, Params], Rows] | None = None


class RestEndpoints:
    """The simulator's REST endpoints over one exchange; `routes()` maps each path to its route.

    Args:
        exchange: The exchange the endpoints act on.
        closes: Where close-position requests are executed and logged.
        clock: Monotonic seconds, for the close log.
        now_ms: The simulator's wall clock in Unix ms (the public time).
    """

    __slots__ = ("_clock", "_closes", "_exchange", "_now_ms")

    def __init__(
        self,
        exchange: SimExchange,
        closes: CloseLog,
        *,
        clock: Callable[[], float],
        now_ms: Callable[[], int],
    ) -> None:
        self._exchange = exchange
        self._closes = closes
        self._clock = clock
        self._now_ms = now_ms

    def routes(self) -> Mapping[str, Route]:
        """Every path the simulator serves over REST, to its route."""
        return {
            PUBLIC_TIME_PATH: Route("GET", False, self.public_time),
            PUBLIC_INSTRUMENTS_PATH: Route("GET", False, self.public_instruments),
            GRID_POSITIONS_PATH: Route("GET", True, self.positions),
            GRID_CLOSE_POSITION_PATH: Route("POST", True, self.close_position),
            GRID_ORDERS_PENDING_PATH: self._listing(history=False),
            GRID_ORDERS_HISTORY_PATH: self._listing(history=True),
            GRID_CANCEL_CLOSE_ORDER_PATH: Route("POST", True, self.cancel_close_order),
            ACCOUNT_CONFIG_PATH: Route("GET", True, self.account_config),
        }

    def public_time(self, caller: SimAccount, params: Params) -> Rows:
        return [{"ts": str(self._now_ms())}]

    def public_instruments(self, caller: SimAccount, params: Params) -> Rows:
        inst_type = required(params, "instType")
        if inst_type not in _INST_TYPES:
            raise param_error("instType")
        inst_id = optional(params, "instId")
        specs = [
            spec
            for spec in self._exchange.instruments()
            if spec.inst_type == inst_type and inst_id in (None, spec.inst_id)
        ]
        if inst_id is not None and not specs:
            raise SimError("51001", "Instrument ID does not exist")
        return [spec.row() for spec in specs]

    def account_config(self, caller: SimAccount, params: Params) -> Rows:
        return [account_config_row(caller)]

    def positions(self, caller: SimAccount, params: Params) -> Rows:
        user_id = caller.user_id
        algo_ord_type = required(params, "algoOrdType")
        algo_id = required(params, "algoId")
        if algo_ord_type != CONTRACT_GRID:
            raise param_error("algoOrdType")
        return [position_row(self._exchange.owned_grid(user_id, algo_id))]

    def close_position(self, caller: SimAccount, params: Params) -> Rows:
        user_id = caller.user_id
        algo_id = required(params, "algoId")
        mkt_close = params.get("mktClose")
        if mkt_close is None:
            raise param_empty("mktClose")
        if not isinstance(mkt_close, bool):
            raise param_error("mktClose")
        sz = px = None
        if not mkt_close:
            sz = positive_decimal(params, "sz")
            px = positive_decimal(params, "px")
        grid, ord_id = self._closes.execute(self._exchange, user_id, algo_id, sz, px, self._clock())
        return [{"algoClOrdId": grid.algo_cl_ord_id, "algoId": algo_id, "ordId": ord_id, "tag": ""}]

    def cancel_close_order(self, caller: SimAccount, params: Params) -> Rows:
        user_id = caller.user_id
        algo_id = required(params, "algoId")
        ord_id = required(params, "ordId")
        self._exchange.cancel_close_order(user_id, algo_id, ord_id)
        grid = self._exchange.grid(algo_id)
        return [{"algoClOrdId": grid.algo_cl_ord_id, "algoId": algo_id, "ordId": ord_id, "tag": ""}]

    def _listing(self, *, history: bool) -> Route:
        """The route of orders-algo-history (``history``) or orders-algo-pending."""
        return Route(
            "GET",
            True,
            functools.partial(self._list_grids, history=history),
            cycled=functools.partial(self._list_grids, history=history, cursor_cycle=True),
        )

    def _list_grids(
        self, caller: SimAccount, params: Params, *, history: bool, cursor_cycle: bool = False
    ) -> Rows:
        algo_ord_type = required(params, "algoOrdType")
        if algo_ord_type not in ("grid", CONTRACT_GRID, "moon_grid"):
            raise param_error("algoOrdType")
        limit = page_limit(params)
        after = algo_id_cursor(params, "after")
        before = algo_id_cursor(params, "before")
        if algo_ord_type != CONTRACT_GRID:
            return []  # the simulator only has contract grids
        grids = self._exchange.list_grids(
            caller.user_id,
            history=history,
            algo_id=optional(params, "algoId"),
            inst_id=optional(params, "instId"),
            inst_type=optional(params, "instType"),
            after=after,
            before=before,
            limit=limit,
            cursor_cycle=cursor_cycle,
        )
        return [algo_order_row(g) for g in grids]
