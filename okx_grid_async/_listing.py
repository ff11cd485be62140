"""Listing the account's contract grids page after page, following OKX's ``after`` cursor."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from ._constants import CONTRACT_GRID, GRID_ORDERS_HISTORY_PATH, GRID_ORDERS_PENDING_PATH
from ._errors import InvalidArgumentError, MalformedResponseError
from ._limiter import check_wait_timeout
from ._models import GridOrder, grid_order_parser
from ._transport import Transport
from ._validation import check_bool

__all__ = ["grid_pages"]


async def grid_pages(
    transport: Transport,
    *,
    history: bool,
    inst_id: str | None,
    page_size: int,
    timeout: float | None,
    wait_timeout: float | None,
) -> AsyncGenerator[GridOrder, None]:
    """Every contract grid of ``orders-algo-pending`` (or ``-history``), newest first.

    Raises:
        TypeError: a non-bool history or non-int page_size.
        InvalidArgumentError: a page_size outside 1..100.
        MalformedResponseError: a page whose ``after`` cursor was followed before.
    """
    check_bool(history, "history")
    if isinstance(page_size, bool) or not isinstance(page_size, int):
        raise TypeError("page_size must be an int")
    if not 1 <= page_size <= 100:
        raise InvalidArgumentError(f"page_size must be 1..100, not {page_size}")
    path = GRID_ORDERS_HISTORY_PATH if history else GRID_ORDERS_PENDING_PATH
    params: dict[str, str] = {"algoOrdType": CONTRACT_GRID, "limit": str(page_size)}
    if inst_id is not None:
        params["instId"] = inst_id
    # Every cursor used so far: one that comes back, at once or after a cycle
    # (A, B, A, ...), would make the pages repeat for ever.
    cursors: set[str] = set()
    while True:
        rows = await transport.request(
            "GET",
            path,
            params,
            grid_order_parser,
            timeout=timeout,
            wait_timeout=check_wait_timeout(wait_timeout),
        )
        for row in rows:
            yield row
        if len(rows) < page_size:
            return
        cursor = rows[-1].algo_id
        if cursor in cursors:
            raise MalformedResponseError(
                f"pagination came back to algoId {cursor}, a cursor already followed", 200, ""
            )
        cursors.add(cursor)
        params["after"] = cursor
