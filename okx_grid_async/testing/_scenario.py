"""Scenario helpers over `GridSimulator`: the situations a bot's tests set up, in one call each.

Each helper is a thin, named step over the simulator's own methods, so a test
reads as the situation it builds: ``add_stopped_grid(sim, user_id, 35)``,
``fill_close_order(sim, algo_id)``, ``fail_next(sim, "close-position", ...)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from okx_grid_async._constants import ACCOUNT_CONFIG_PATH, GRID_ENDPOINT_PATHS, PUBLIC_TIME_PATH
from okx_grid_async.simulator import (
    CloseOrder,
    FaultKind,
    GridSimulator,
    GridState,
    SimAccount,
    SimGrid,
)

__all__ = [
    "ENDPOINTS",
    "add_running_grid",
    "add_stopped_grid",
    "add_user",
    "endpoint_path",
    "fail_next",
    "fill_close_order",
    "move_mark_price",
    "stop_grid_keeping_position",
]

ENDPOINTS: Final[Mapping[str, str]] = {
    **GRID_ENDPOINT_PATHS,  # the names GridClient.limiter_stats() takes
    "account-config": ACCOUNT_CONFIG_PATH,
    "public-time": PUBLIC_TIME_PATH,
}
"""The simulator's endpoints by short name (the last part of each path), to their path."""


def endpoint_path(endpoint: str) -> str:
    """The path of ``endpoint``: a short name from `ENDPOINTS`, or a path starting with ``/``.

    Raises:
        ValueError: If it is neither.
    """
    if endpoint.startswith("/"):
        return endpoint
    try:
        return ENDPOINTS[endpoint]
    except KeyError:
        names = ", ".join(sorted(ENDPOINTS))
        raise ValueError(f"unknown endpoint {endpoint!r}: give a path or one of {names}") from None


def add_user(sim: GridSimulator, keys: int = 1, *, user_id: str | None = None) -> list[SimAccount]:
    """A new user with ``keys`` API keys (random credentials), all sharing its rate budgets.

    Raises:
        ValueError: If ``keys`` is below 1, or ``user_id`` already has a key.
    """
    if keys < 1:
        raise ValueError(f"a user needs at least one key, got keys={keys}")
    first = sim.add_account(user_id=user_id)
    return [first, *(sim.add_api_key(first.user_id) for _ in range(keys - 1))]


def add_stopped_grid(
    sim: GridSimulator,
    user_id: str,
    contracts: Decimal | int | str = 35,
    *,
    short: bool = False,
    **options: Any,
) -> SimGrid:
    """A grid stopped with its position kept (``no_close_position``): the one a bot closes.

    ``contracts`` is the position's size (> 0); ``short`` makes it a short
    (``pos`` negative, direction ``"short"``). ``options`` go to
    `GridSimulator.add_grid()` (``inst_id``, ``avg_px``, ``mark_px``...).

    Raises:
        ValueError: If ``contracts`` is not positive, or as `GridSimulator.add_grid()`.
    """
    return _add_grid(sim, user_id, contracts, short, "no_close_position", options)


def add_running_grid(
    sim: GridSimulator,
    user_id: str,
    contracts: Decimal | int | str = 35,
    *,
    short: bool = False,
    **options: Any,
) -> SimGrid:
    """A running grid holding ``contracts`` (close-position answers 51059 until it stops).

    Arguments as in `add_stopped_grid()`.
    """
    return _add_grid(sim, user_id, contracts, short, "running", options)


def _add_grid(
    sim: GridSimulator,
    user_id: str,
    contracts: Decimal | int | str,
    short: bool,
    state: GridState,
    options: dict[str, Any],
) -> SimGrid:
    size = Decimal(contracts)
    if not size > 0:
        raise ValueError(f"contracts must be positive, got {contracts!r}")
    return sim.add_grid(
        user_id,
        state=state,
        pos=-size if short else size,
        direction="short" if short else "long",
        **options,
    )


def stop_grid_keeping_position(sim: GridSimulator, algo_id: str) -> SimGrid:
    """Stop a grid as "stop, keep the position" does: its position waits to be closed.

    Raises:
        KeyError: If there is no such grid.
    """
    return sim.set_grid_state(algo_id, "no_close_position")


def move_mark_price(sim: GridSimulator, algo_id: str, px: Decimal | int | str) -> SimGrid:
    """Move a grid's mark price to ``px``; a live close order it reaches fills.

    Raises:
        KeyError: If there is no such grid.
        ValueError: If ``px`` is not a positive number.
    """
    sim.set_mark_price(algo_id, px)
    return sim.grid(algo_id)


def fill_close_order(sim: GridSimulator, algo_id: str) -> CloseOrder:
    """Fill the grid's live close order by moving the mark to the order's price.

    Returns the filled order.

    Raises:
        KeyError: If there is no such grid.
        LookupError: If the grid has no live close order.
    """
    order = sim.grid(algo_id).pending_order
    if order is None:
        raise LookupError(f"grid {algo_id} has no live close order to fill")
    sim.set_mark_price(algo_id, order.px)
    return order


def fail_next(
    sim: GridSimulator,
    endpoint: str,
    kind: FaultKind,
    count: int = 1,
    *,
    delay: float = 0.0,
) -> None:
    """Make the next ``count`` requests to one endpoint fail as ``kind``.

    ``endpoint`` is a short name (``"close-position"``, ``"positions"``... see
    `ENDPOINTS`) or a path. ``delay`` is how long each waits first, in seconds.

    Raises:
        ValueError: On an unknown endpoint, or as `GridSimulator.inject_fault()`.
    """
    sim.inject_fault(kind, endpoint_path(endpoint), count, delay)
