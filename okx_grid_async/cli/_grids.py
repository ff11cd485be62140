"""Grids as the commands show them: each one's state, its position, or the error reading it.

`read_grids` reads positions concurrently through the client's rate limiter and
OKX's state of each grid from the pending-grids list (`pending_states`); `sweep_with_progress`
is the positions part alone, reporting to a `SweepObserver` (a progress bar).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Collection, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import msgspec

from okx_grid_async import GridClient, GridOrder, GridPosition, OKXError, SweepResult

__all__ = [
    "CLOSABLE_STATE",
    "GridRow",
    "StatesUnknown",
    "SweepObserver",
    "SweepSummary",
    "pending_states",
    "read_grids",
    "summarize",
    "sweep_with_progress",
]

# OKX's state of a grid stopped with its position kept: the one a close acts on.
CLOSABLE_STATE: Final = "no_close_position"


class GridRow(msgspec.Struct, kw_only=True):
    """One grid: OKX's state, and its position rows or the error reading them.

    ``state`` is OKX's (``running``, ``no_close_position``, ...) as the pending-grids
    list gives it; ``""`` for a grid not in that list (stopped and closed, or
    unknown), ``None`` when the list could not be read.
    """

    algo_id: str
    state: str | None
    positions: list[GridPosition] | None
    error: OKXError | None

    @property
    def is_empty(self) -> bool:
        """True when the grid was read and holds no position."""
        return self.positions is not None and all(p.is_empty for p in self.positions)

    @property
    def is_closable(self) -> bool:
        """True for a grid stopped with its position kept, which holds contracts."""
        return self.state == CLOSABLE_STATE and not self.is_empty and self.error is None


class SweepSummary(msgspec.Struct, kw_only=True):
    """A sweep's grids and their counts (``okx-grid sweep --json`` prints this)."""

    grids: list[GridRow]
    with_position: int
    closable: int
    empty: int
    failed: int


def summarize(rows: list[GridRow]) -> SweepSummary:
    """``rows`` with their counts: ``closable`` is among ``with_position``."""
    failed = sum(r.error is not None for r in rows)
    empty = sum(r.is_empty for r in rows)
    return SweepSummary(
        grids=rows,
        with_position=len(rows) - failed - empty,
        closable=sum(r.is_closable for r in rows),
        empty=empty,
        failed=failed,
    )


class SweepObserver(Protocol):
    """What follows a sweep: how many ids are known so far, and each one done."""

    def expect(self, total: int, *, complete: bool = True) -> None:
        """``total`` ids are known; ``complete`` False while more may come."""

    def advance(self) -> None:
        """One more id is done."""

    def close(self) -> None:
        """The sweep ended (or failed)."""


@dataclass(frozen=True, slots=True)
class StatesUnknown:
    """The pending-grids list could not be read: the grids' states are unknown."""

    error: OKXError


async def sweep_with_progress(
    client: GridClient,
    ids: Sequence[str] | AsyncGenerator[GridOrder, None],
    *,
    concurrency: int,
    progress: SweepObserver | None = None,
) -> list[SweepResult]:
    """Every grid's `SweepResult`, in the order ``ids`` gave them.

    ``ids`` is a list, or ``client.iter_grids()``, whose grids are counted as they
    are discovered. The requests run concurrently through the client's rate limiter.
    """
    observer = progress or _Unobserved()
    order: dict[str, int] = {}
    source = ids
    if isinstance(ids, Sequence):
        order.update((algo_id, i) for i, algo_id in enumerate(ids))
        observer.expect(len(ids))
    else:
        source = _discover(ids, order, observer)
    results: list[SweepResult] = []
    try:
        sweep = client.sweep_positions(source, concurrency=concurrency)
        async with contextlib.aclosing(sweep):
            async for result in sweep:
                results.append(result)
                observer.advance()
    finally:
        observer.close()
    results.sort(key=lambda r: order.get(r.algo_id, len(order)))
    return results


async def read_grids(
    client: GridClient,
    ids: Sequence[str] | None,
    *,
    concurrency: int,
    progress: SweepObserver | None = None,
) -> tuple[list[GridRow], StatesUnknown | None]:
    """The grids ``ids`` (``None``: every pending grid of the account), in that order.

    Their states come from the pending-grids list, read alongside the positions
    and only until every id was found. A list that cannot be read leaves the
    states ``None``, and the second item says why; a failing position read is its
    row's ``error``.
    """
    states: dict[str, str] = {}
    if ids is None:
        grids = _recording_states(client.iter_grids(), states)
        results = await sweep_with_progress(
            client, grids, concurrency=concurrency, progress=progress
        )
        return [_row(r, states.get(r.algo_id, "")) for r in results], None
    async with asyncio.TaskGroup() as group:
        listing = group.create_task(pending_states(client, set(ids)))
        reading = group.create_task(
            sweep_with_progress(client, ids, concurrency=concurrency, progress=progress)
        )
    found = listing.result()
    if isinstance(found, StatesUnknown):
        return [_row(r, None) for r in reading.result()], found
    return [_row(r, found.get(r.algo_id, "")) for r in reading.result()], None


def _row(result: SweepResult, state: str | None) -> GridRow:
    return GridRow(
        algo_id=result.algo_id, state=state, positions=result.positions, error=result.error
    )


async def pending_states(
    client: GridClient, wanted: Collection[str]
) -> dict[str, str] | StatesUnknown:
    """The states of the ``wanted`` grids that are pending, reading no page past the last found."""
    states: dict[str, str] = {}
    missing = set(wanted)
    try:
        async with contextlib.aclosing(client.iter_grids()) as grids:
            async for grid in grids:
                if grid.algo_id in missing:
                    states[grid.algo_id] = grid.state
                    missing.discard(grid.algo_id)
                    if not missing:
                        break
    except OKXError as exc:
        return StatesUnknown(exc)
    return states


async def _recording_states(
    grids: AsyncGenerator[GridOrder, None], states: dict[str, str]
) -> AsyncGenerator[GridOrder, None]:
    async with contextlib.aclosing(grids):
        async for grid in grids:
            states[grid.algo_id] = grid.state
            yield grid


async def _discover(
    grids: AsyncGenerator[GridOrder, None], order: dict[str, int], progress: SweepObserver
) -> AsyncGenerator[GridOrder, None]:
    async with contextlib.aclosing(grids):
        async for grid in grids:
            order.setdefault(grid.algo_id, len(order))
            progress.expect(len(order), complete=False)
            yield grid
    progress.expect(len(order))


class _Unobserved:
    """A `SweepObserver` for a sweep nobody watches."""

    def expect(self, total: int, *, complete: bool = True) -> None:
        """Nothing to show."""

    def advance(self) -> None:
        """Nothing to show."""

    def close(self) -> None:
        """Nothing to show."""
