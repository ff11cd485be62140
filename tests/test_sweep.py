"""sweep_positions and iter_grids: results as they complete, errors as items, bounded work."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import pytest

from okx_grid_async import GridNotFoundError, GridOrder, GridPosition, InvalidArgumentError
from okx_grid_async._constants import GRID_POSITIONS_PATH
from okx_grid_async._sweep import SweepResult, sweep
from okx_grid_async.simulator import FaultKind, GridSimulator, RecordedRequest, SimAccount

from .conftest import ClientFactory


def _sweep_workers() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if "sweep.<locals>.worker" in repr(t.get_coro())]


async def test_sweep_yields_every_grid_and_failures_as_items(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grids = [sim.add_grid(account.user_id, pos=Decimal(i + 1)) for i in range(12)]
    empty = sim.add_grid(account.user_id, pos=Decimal(0))
    ids = [g.algo_id for g in grids] + ["999999", empty.algo_id, "not-an-id"]
    async with make_client() as client:
        results = [r async for r in client.sweep_positions(ids, concurrency=5)]
    by_id = {r.algo_id: r for r in results}
    assert len(results) == 15
    for i, grid in enumerate(grids):
        result = by_id[grid.algo_id]
        assert result.error is None
        assert result.positions is not None
        assert result.positions[0].pos == Decimal(i + 1)
    assert isinstance(by_id["999999"].error, GridNotFoundError)
    assert by_id["999999"].positions is None
    assert isinstance(by_id["not-an-id"].error, InvalidArgumentError)
    assert by_id[empty.algo_id].error is None
    assert by_id[empty.algo_id].is_empty
    assert not by_id[grids[0].algo_id].is_empty


async def test_sweep_takes_an_async_iterable_and_discovery_directly(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grids = {sim.add_grid(account.user_id).algo_id for _ in range(7)}
    sim.add_grid(account.user_id, state="stopped", pos=Decimal(0))  # history only
    async with make_client() as client:
        swept = {r.algo_id async for r in client.sweep_positions(client.iter_grids())}

        async def ids() -> AsyncIterator[str]:
            for algo_id in sorted(grids):
                yield algo_id

        again = {r.algo_id async for r in client.sweep_positions(ids(), concurrency=3)}
    assert swept == grids
    assert again == grids


async def test_iter_grids_follows_the_after_cursor_through_every_page(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    made = [sim.add_grid(account.user_id).algo_id for _ in range(23)]
    stopped = sim.add_grid(account.user_id, state="stopped", pos=Decimal(0)).algo_id
    async with make_client() as client:
        pending = [g async for g in client.iter_grids(page_size=10)]
        history = [g async for g in client.iter_grids(history=True)]
    assert [g.algo_id for g in pending] == sorted(made, key=int, reverse=True)
    assert all(isinstance(g, GridOrder) and g.algo_ord_type == "contract_grid" for g in pending)
    assert {g.state for g in pending} == {"no_close_position"}
    assert [g.algo_id for g in history] == [stopped]
    queries = [r.query_string for r in sim.requests if "orders-algo-pending" in r.path]
    assert len(queries) == 3  # 10 + 10 + 3
    assert "after=" not in queries[0]
    assert f"after={pending[9].algo_id}" in queries[1]


async def test_iter_grids_refuses_a_bad_page_size(make_client: ClientFactory) -> None:
    async with make_client() as client:
        with pytest.raises(InvalidArgumentError, match="page_size"):
            await anext(client.iter_grids(page_size=101))


async def test_leaving_a_sweep_early_cancels_work_in_flight(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grids = [sim.add_grid(account.user_id).algo_id for _ in range(10)]
    async with make_client() as client:
        sim.inject_fault(FaultKind.LATENCY, GRID_POSITIONS_PATH, count=9, delay=5.0)
        sweeper = client.sweep_positions(grids, concurrency=10)
        first = await anext(sweeper)  # the one request without latency
        assert first.error is None
        assert len(_sweep_workers()) == 9  # the tenth found no id left and ended
        await sweeper.aclose()
        assert _sweep_workers() == []
        sim.clear_faults()
        assert await client.get_positions(grids[0])  # the client is still usable


async def test_a_hundred_thousand_ids_never_make_more_tasks_than_concurrency() -> None:
    pulled = 0

    def ids() -> Iterator[str]:
        nonlocal pulled
        for i in range(100_000):
            pulled += 1
            yield str(i + 1)

    peak = 0

    async def fetch(algo_id: str) -> list[GridPosition]:
        nonlocal peak
        peak = max(peak, len(asyncio.all_tasks()))
        await asyncio.sleep(0)
        return []

    count = 0
    async with contextlib.aclosing(sweep(ids(), fetch, 50)) as results:
        async for result in results:
            assert result.is_empty
            count += 1
            if count == 1_000:
                break
    assert peak <= 50 + 2  # workers + the test's own task
    assert pulled <= 1_000 + 2 * 50  # ids are read lazily: in flight + queued, no more
    assert _sweep_workers() == []


async def test_a_plain_break_also_cancels_the_workers_once_the_sweep_is_finalised() -> None:
    async def fetch(algo_id: str) -> list[GridPosition]:
        if algo_id != "1":
            await asyncio.sleep(10)
        return []

    async for _ in sweep(map(str, range(1, 100)), fetch, 8):
        break
    for _ in range(10):  # the event loop's async-generator finaliser closes it as a task
        if not _sweep_workers():
            break
        await asyncio.sleep(0)
    assert _sweep_workers() == []


async def test_a_failing_id_source_ends_the_sweep_with_its_error() -> None:
    def ids() -> Iterator[str]:
        yield "1"
        raise RuntimeError("source broke")

    async def fetch(algo_id: str) -> list[GridPosition]:
        return []

    with pytest.raises(RuntimeError, match="source broke"):
        async for _ in sweep(ids(), fetch, 4):
            pass
    assert len(asyncio.all_tasks()) == 1


@pytest.mark.parametrize("concurrency", [0, -1, 1.5, True])
async def test_sweep_refuses_bad_concurrency(concurrency: object) -> None:
    async def fetch(algo_id: str) -> list[GridPosition]:
        return []

    with pytest.raises(ValueError, match="concurrency"):
        await anext(sweep(["1"], fetch, concurrency))  # type: ignore[arg-type]


def _received(sim: GridSimulator) -> list[RecordedRequest]:
    """Position reads the simulator received (answered or not yet)."""
    return [r for r in sim.requests if r.path == GRID_POSITIONS_PATH]


async def test_closing_the_client_stops_a_sweep_still_referenced_after_a_break(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grids = [sim.add_grid(account.user_id).algo_id for _ in range(60)]
    async with make_client() as client:
        sweeper = client.sweep_positions(grids, concurrency=20)
        async for _ in sweeper:
            break  # `sweeper` still refers to the generator: nothing finalises it
        await asyncio.sleep(0.05)
        assert _sweep_workers()  # suspended, its workers still read and wait
    assert _sweep_workers() == []  # closing the client cancelled and awaited them
    received, arrived = len(_received(sim)), len(sim.arrivals(path=GRID_POSITIONS_PATH))
    assert received < len(grids)
    await asyncio.sleep(0.3)
    assert len(_received(sim)) == received
    assert len(sim.arrivals(path=GRID_POSITIONS_PATH)) == arrived
    with pytest.raises(RuntimeError, match="GridClient was closed"):
        await anext(sweeper)
    await sweeper.aclose()


async def test_closing_the_client_stops_a_sweep_read_by_another_task(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grids = [sim.add_grid(account.user_id).algo_id for _ in range(10)]
    client = make_client()
    async with client:
        sim.inject_fault(FaultKind.LATENCY, GRID_POSITIONS_PATH, count=10, delay=5.0)
        read: list[SweepResult] = []

        async def consume() -> None:
            async for result in client.sweep_positions(grids, concurrency=10):
                read.append(result)

        consumer = asyncio.create_task(consume())
        await asyncio.sleep(0.3)
        assert len(_received(sim)) == 10  # each answered only in 5 s
        await client.aclose()  # while all ten reads are in flight
        assert _sweep_workers() == []
        with pytest.raises(RuntimeError, match="GridClient was closed"):
            await consumer
    assert read == []


async def test_a_closed_client_starts_no_sweep(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id).algo_id
    client = make_client()
    async with client:
        pass
    with pytest.raises(RuntimeError, match="closed client starts no sweep"):
        await anext(client.sweep_positions([grid]))
    assert sim.arrivals(path=GRID_POSITIONS_PATH) == []
