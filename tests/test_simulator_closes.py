"""The simulator's log of processed closes, its duplicate rule, and its count of 50011s."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from okx_grid_async import GridError, OutcomeUnknownError
from okx_grid_async._constants import GRID_CLOSE_POSITION_PATH, GRID_POSITIONS_PATH
from okx_grid_async.simulator import FaultKind, GridSimulator, SimAccount

from .conftest import ClientFactory


async def test_a_market_close_resent_after_an_unknown_outcome_is_a_duplicate(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id, pos=35)
    sim.inject_fault(FaultKind.APPLY_THEN_DROP, GRID_CLOSE_POSITION_PATH)
    async with make_client() as client:
        with pytest.raises(OutcomeUnknownError):
            await client.close_position(grid.algo_id, mkt_close=True)
        with pytest.raises(GridError):  # 51059: the grid already stopped
            await client.close_position(grid.algo_id, mkt_close=True)
    first, second = sim.closes(grid.algo_id)
    assert (first.code, first.pos_before, first.pos_after, first.duplicate_of) == (
        "0",
        Decimal(35),
        Decimal(0),
        None,
    )
    assert (second.executed, second.code, second.duplicate_of) == (False, "51059", first)
    assert "refused 51059" in second.describe()


async def test_reconciling_instead_of_resending_leaves_no_duplicate(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id, pos=35)
    sim.inject_fault(FaultKind.APPLY_THEN_DROP, GRID_CLOSE_POSITION_PATH)
    async with make_client() as client:
        with pytest.raises(OutcomeUnknownError):
            await client.close_position(grid.algo_id, mkt_close=True)
        assert (await client.reconcile_close(grid.algo_id)).is_closed
    assert [r.duplicate_of for r in sim.closes()] == [None]


async def test_the_same_partial_close_twice_is_a_duplicate_even_when_both_execute(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id, pos=35, mark_px="29213.9")
    async with make_client() as client:
        for _ in range(2):  # a long's order at or under the mark fills at once
            await client.close_position(grid.algo_id, mkt_close=False, sz=10, px="29000")
        await client.close_position(grid.algo_id, mkt_close=False, sz=10, px="29001")
    first, second, third = sim.closes(grid.algo_id)
    assert [r.executed for r in (first, second, third)] == [True, True, True]
    assert (second.duplicate_of, third.duplicate_of) == (first, None)
    assert grid.pos == 5


async def test_a_new_position_or_a_cancelled_order_settles_earlier_closes(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id, pos=35, mark_px="29213.9")
    async with make_client() as client:
        await client.close_position(grid.algo_id, mkt_close=True)
        sim.grid(grid.algo_id).pos = Decimal(20)  # the test gives the grid a new position
        sim.set_grid_state(grid.algo_id, "no_close_position")
        placed = await client.close_position(grid.algo_id, mkt_close=False, sz=5, px="31000")
        await client.cancel_close_order(grid.algo_id, placed.ord_id)
        await client.close_position(grid.algo_id, mkt_close=False, sz=5, px="31000")
    assert [r.duplicate_of for r in sim.closes()] == [None, None, None]


async def test_closes_of_other_users_grids_are_not_logged(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    other = sim.add_account()
    theirs = sim.add_grid(other.user_id)
    async with make_client() as client:
        with pytest.raises(GridError):
            await client.close_position(theirs.algo_id, mkt_close=True)
    assert sim.closes() == []


async def test_only_the_limiters_own_50011s_are_counted_as_refusals(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id)
    sim.inject_fault(FaultKind.RATE_LIMIT_50011, GRID_POSITIONS_PATH)
    async with make_client() as client:
        await client.get_positions(grid.algo_id)  # retried after the injected 50011
    assert sim.rate_limit_refusals() == {}
    async with make_client() as a, make_client() as b:  # two limiters: 40 in one window
        await asyncio.gather(
            *(c.get_positions(grid.algo_id) for c in (a, b) for _ in range(20)),
            return_exceptions=True,
        )
    refused = sim.rate_limit_refusals()
    assert list(refused) == [(account.user_id, GRID_POSITIONS_PATH)]
    assert refused[account.user_id, GRID_POSITIONS_PATH] >= 1
