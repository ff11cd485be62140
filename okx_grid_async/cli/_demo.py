"""``okx-grid demo``: the whole library at work against a simulator in this process.

It starts a `GridSimulator` with the demo account and about 50 grids, then, as
any program would, through a `GridClient`: discovers the grids, sweeps every
position concurrently through the rate limiter, closes a few (at market and
with limit orders), reads those grids again to show what changed, and reports
the limiter's figures next to what the simulator saw arrive, which proves the
point: no request rejected for rate. Drawing the report is `_render`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine, Sequence
from decimal import Decimal
from typing import Any, Final

import msgspec

from okx_grid_async import (
    Credentials,
    GridClient,
    GridOrder,
    GridPosition,
    Instrument,
    OKXError,
    OutcomeUnknownError,
    SweepResult,
)
from okx_grid_async._constants import (
    GRID_ENDPOINT_PATHS,
    GRID_MAX_RATE,
    GRID_TIME_PERIOD,
    GridEndpoint,
)
from okx_grid_async.simulator import (
    DEMO_API_KEY,
    DEMO_PASSPHRASE,
    DEMO_SECRET_KEY,
    DEMO_USER_ID,
    GridSimulator,
    max_in_window,
)

from ._grids import CLOSABLE_STATE, SweepObserver, sweep_with_progress

__all__ = ["DemoGrid", "DemoSummary", "EndpointFigures", "run_demo"]

DEMO_GRIDS: Final = 50
# Grids stopped with their position kept but with nothing left in it: shown as empty.
EMPTY_GRIDS: Final = 2
MARKET_CLOSES: Final = 3
LIMIT_CLOSES: Final = 2
CONCURRENCY: Final = 20
SEED: Final = 2024
# A limit close 2 % away from the mark on the profitable side waits for the price
# instead of filling at once, so the demo shows the order id it gets.
_LIMIT_OFFSET: Final = Decimal("0.02")
_CLOSED_AT_MARKET: Final = "closed at market"
# A closable grid the demo leaves alone (the report says so under its table).
LEFT_ALONE: Final = "-"
_ENDPOINTS: Final[tuple[GridEndpoint, ...]] = (
    "orders-algo-pending",
    "positions",
    "close-position",
    "orders-algo-history",
)


class DemoGrid(msgspec.Struct, kw_only=True):
    """One swept grid: its state and position before the demo acted and after, and the act.

    ``state_after`` and ``pos_after`` are read again for the grids the demo closed,
    and the same as before for the others.
    """

    algo_id: str
    inst_id: str
    state: str
    state_after: str
    pos: Decimal | None
    pos_after: Decimal | None
    upl: Decimal | None
    action: str
    ord_id: str = ""


class EndpointFigures(msgspec.Struct, kw_only=True):
    """The limiter's figures for one endpoint, and what the simulator saw arrive.

    ``waited_s`` is the time all requests spent waiting for a slot, summed, in
    seconds (waits overlap: the sum can exceed the run); ``mean_wait_s`` the mean
    per request; ``max_in_window`` the most arrivals in any window of the rate
    limit's period.
    """

    endpoint: str
    granted: int
    waited_s: float
    mean_wait_s: float
    arrivals: int
    max_in_window: int
    rejections_50011: int


class DemoSummary(msgspec.Struct, kw_only=True):
    """What ``okx-grid demo`` did (``--json`` prints this)."""

    simulator_url: str
    user_id: str
    grids_created: int
    grids: list[DemoGrid]
    market_closes: int
    limit_closes: int
    rate_limit: str
    limiter: list[EndpointFigures]
    rejections: int
    sweep_s: float
    wall_time_s: float


async def run_demo(
    progress: SweepObserver | None = None, *, grids: int = DEMO_GRIDS
) -> DemoSummary:
    """Run the demo (about five seconds for 50 grids) and return what it did.

    Raises:
        OKXError: if the client fails in a way the demo does not expect.
    """
    started = time.monotonic()
    async with GridSimulator(seed=SEED) as sim:
        sim.add_account(DEMO_API_KEY, DEMO_SECRET_KEY, DEMO_PASSPHRASE, DEMO_USER_ID)
        sim.add_demo_grids(DEMO_USER_ID, grids - EMPTY_GRIDS)
        for _ in range(EMPTY_GRIDS):
            sim.add_grid(DEMO_USER_ID, pos=Decimal(0))
        credentials = Credentials(DEMO_API_KEY, DEMO_SECRET_KEY, DEMO_PASSPHRASE)
        async with GridClient(credentials, base_url=sim.url, user_id=DEMO_USER_ID) as client:
            found = [grid async for grid in client.iter_grids()]
            sweep_started = time.monotonic()
            results = await sweep_with_progress(
                client,
                [grid.algo_id for grid in found],
                concurrency=CONCURRENCY,
                progress=progress,
            )
            sweep_s = time.monotonic() - sweep_started
            rows, acted = await _close_some(client, found, results)
            await _read_again(client, acted)
            figures = [_figures(client, sim, endpoint) for endpoint in _ENDPOINTS]
        url = sim.url
    return DemoSummary(
        simulator_url=url,
        user_id=DEMO_USER_ID,
        grids_created=grids,
        grids=rows,
        market_closes=sum(row.action == _CLOSED_AT_MARKET for row in rows),
        limit_closes=sum(bool(row.ord_id) for row in rows),
        rate_limit=f"{GRID_MAX_RATE} requests per {GRID_TIME_PERIOD:g} s per endpoint",
        limiter=figures,
        rejections=sum(f.rejections_50011 for f in figures),
        sweep_s=round(sweep_s, 3),
        wall_time_s=round(time.monotonic() - started, 3),
    )


async def _close_some(
    client: GridClient, found: list[GridOrder], results: list[SweepResult]
) -> tuple[list[DemoGrid], list[DemoGrid]]:
    """Close the first grids that can be: some at market, some with a limit order.

    Returns every grid's row, and the rows of those it tried to close.
    """
    states = {grid.algo_id: grid.state for grid in found}
    rows: list[DemoGrid] = []
    closes: list[tuple[DemoGrid, Coroutine[Any, Any, tuple[str, str]]]] = []
    for result in results:
        state = states.get(result.algo_id, "")
        position = result.positions[0] if result.positions else None
        pos = position.pos if position else None
        rows.append(
            DemoGrid(
                algo_id=result.algo_id,
                inst_id=position.inst_id if position else "",
                state=state,
                state_after=state,
                pos=pos,
                pos_after=pos,
                upl=position.upl if position else None,
                action=_no_action(result, state),
            )
        )
        if len(closes) == MARKET_CLOSES + LIMIT_CLOSES or state != CLOSABLE_STATE:
            continue
        if position is not None and not position.is_empty:
            market = len(closes) < MARKET_CLOSES
            closes.append((rows[-1], _close(client, position, market=market)))
    async with asyncio.TaskGroup() as group:
        tasks = [(row, group.create_task(close)) for row, close in closes]
    for row, task in tasks:
        row.action, row.ord_id = task.result()
    return rows, [row for row, _ in closes]


def _no_action(result: SweepResult, state: str) -> str:
    if result.error is not None:
        return f"read failed: {result.error}"
    if result.is_empty:
        return "empty: nothing to close"
    if state == "running":
        return "running: left alone"
    return LEFT_ALONE


async def _close(client: GridClient, position: GridPosition, *, market: bool) -> tuple[str, str]:
    """Close one grid: (what happened, the limit order's id or "")."""
    algo_id = position.algo_id
    try:
        if market:
            await client.close_position(algo_id, mkt_close=True)
            return _CLOSED_AT_MARKET, ""
        instrument = await client.get_instrument(position.inst_id)
        sz, px = _limit_close(position, instrument)
        ack = await client.close_position(algo_id, mkt_close=False, sz=sz, px=px)
        return f"limit close {sz:f} @ {px:f}, waiting", ack.ord_id
    except OutcomeUnknownError:
        return await _reconcile(client, algo_id), ""
    except OKXError as exc:
        return f"close failed: {exc}", ""


async def _reconcile(client: GridClient, algo_id: str) -> str:
    """After an unknown outcome, read the grid instead of sending the close again."""
    try:
        found = await client.reconcile_close(algo_id)
    except OKXError as exc:
        return f"close outcome unknown; reading the grid failed: {exc}"
    return f"close outcome unknown; the grid is now {'closed' if found.is_closed else 'open'}"


def _limit_close(position: GridPosition, instrument: Instrument) -> tuple[Decimal, Decimal]:
    """Half the position (at least the minimum), at a price 2 % beyond the mark on the
    profitable side, both rounded onto the instrument's grid."""
    pos = position.pos or Decimal(0)
    mark = position.mark_px or position.avg_px or Decimal(1)
    sz = instrument.round_size(max(abs(pos) / 2, instrument.min_sz))
    factor = 1 + _LIMIT_OFFSET if pos > 0 else 1 - _LIMIT_OFFSET
    return sz, instrument.round_price(mark * factor, side="sell" if pos > 0 else "buy")


async def _read_again(client: GridClient, rows: Sequence[DemoGrid]) -> None:
    """Set the state and position after the demo acted, as OKX now tells them.

    A grid closed at market leaves the pending list for the history, as ``stopped``.
    """
    wanted = {row.algo_id: row for row in rows}
    if not wanted:
        return
    results = await sweep_with_progress(client, list(wanted), concurrency=CONCURRENCY)
    for result in results:
        row = wanted[result.algo_id]
        if result.positions is not None:
            row.pos_after = sum((p.pos or Decimal(0) for p in result.positions), Decimal(0))
    missing = set(wanted)
    for history in (False, True):
        async with contextlib.aclosing(client.iter_grids(history=history)) as grids:
            async for grid in grids:
                if grid.algo_id in missing:
                    wanted[grid.algo_id].state_after = grid.state
                    missing.discard(grid.algo_id)
                    if not missing:
                        return


def _figures(client: GridClient, sim: GridSimulator, endpoint: GridEndpoint) -> EndpointFigures:
    path = GRID_ENDPOINT_PATHS[endpoint]
    stats = client.limiter_stats(endpoint)
    arrivals = sim.arrivals(DEMO_USER_ID, path)
    return EndpointFigures(
        endpoint=path,
        granted=stats.granted,
        waited_s=round(stats.waited, 3),
        mean_wait_s=round(stats.waited / stats.granted, 3) if stats.granted else 0.0,
        arrivals=len(arrivals),
        max_in_window=max_in_window([a.t for a in arrivals], GRID_TIME_PERIOD),
        rejections_50011=sum(a.code == "50011" for a in arrivals),
    )
