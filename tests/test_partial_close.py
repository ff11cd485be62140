"""A partial close is checked against the grid's position and its instrument before it is sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from okx_grid_async import InvalidArgumentError, MalformedResponseError
from okx_grid_async._constants import (
    GRID_CLOSE_POSITION_PATH,
    GRID_POSITIONS_PATH,
    PUBLIC_INSTRUMENTS_PATH,
)
from okx_grid_async._instruments import instrument_cache
from okx_grid_async.simulator import FaultKind, GridSimulator, SimAccount

from .conftest import ClientFactory

CLOSE = GRID_CLOSE_POSITION_PATH


def instrument_reads(sim: GridSimulator) -> int:
    return sum(r.path == PUBLIC_INSTRUMENTS_PATH for r in sim.requests)


@pytest.fixture(autouse=True)
def fresh_shared_cache() -> Iterator[None]:
    # The process-wide cache outlives a test; a new simulator may reuse an old port.
    instrument_cache(None).clear()
    yield
    instrument_cache(None).clear()


@pytest.mark.parametrize(
    ("grid_kw", "sz", "px", "message"),
    [
        ({}, "2.555", "29500.5", r"sz 2\.555 is not a multiple of BTC-USDT-SWAP's lot size "
         r"lotSz 0\.01 \(Instrument\.round_size\(\) gives 2\.55\)"),
        ({}, "0.005", "29500.5", r"sz 0\.005 is below BTC-USDT-SWAP's minimum size minSz 0\.01"),
        ({}, "2", "29500.55", r"px 29500\.55 is not a multiple of BTC-USDT-SWAP's tick size "
         r"tickSz 0\.1 \(Instrument\.round_price\(side='sell'\) gives 29500\.6\)"),
        ({"pos": -8}, "2", "29500.55", r"round_price\(side='buy'\) gives 29500\.5\)"),
        ({"inst_id": "SOL-USDT-SWAP"}, "1", "150.068", r"tickSz 0\.01 .* gives 150\.07\)"),
        ({"inst_id": "XRP-USDT-SWAP"}, "1.5", "0.5", r"sz 1\.5 .* lotSz 1 "),
    ],
)  # fmt: skip
async def test_off_grid_size_or_price_is_refused_before_sending(
    sim: GridSimulator,
    account: SimAccount,
    make_client: ClientFactory,
    grid_kw: dict[str, Any],
    sz: str,
    px: str,
    message: str,
) -> None:
    grid = sim.add_grid(account.user_id, **grid_kw)
    async with make_client() as client:
        with pytest.raises(InvalidArgumentError, match=message):
            await client.close_position(grid.algo_id, mkt_close=False, sz=sz, px=px)
        assert client.limiter_stats("close-position").granted == 0
    assert sim.arrivals(path=CLOSE) == []
    assert len(sim.arrivals(path=GRID_POSITIONS_PATH)) == 1
    assert sim.close_calls(grid.algo_id) == 0


@pytest.mark.parametrize(("pos", "sz"), [(35, "35.01"), (35, "36"), (-8, "8.5"), (0, "1")])
async def test_a_size_above_the_position_is_refused_without_reading_the_instrument(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory, pos: int, sz: str
) -> None:
    grid = sim.add_grid(account.user_id, pos=pos)
    async with make_client() as client:
        with pytest.raises(InvalidArgumentError, match=rf"sz {sz} is above the grid's position "):
            await client.close_position(grid.algo_id, mkt_close=False, sz=sz, px="29500")
    assert sim.arrivals(path=CLOSE) == []
    assert instrument_reads(sim) == 0


async def test_an_on_grid_close_is_sent_as_given_after_one_positions_read(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id, pos=Decimal(35))
    other = sim.add_grid(account.user_id, pos=Decimal(-35))
    async with make_client() as client:
        placed = await client.close_position(grid.algo_id, mkt_close=False, sz="2.50", px="29500.5")
        await client.close_position(other.algo_id, mkt_close=False, sz="35", px=Decimal("2.9E+4"))
        # The check's read is the positions budget's; the close budget's is the close alone.
        assert client.limiter_stats("positions").granted == 2
        assert client.limiter_stats("close-position").granted == 2
    assert placed.ord_id == grid.orders[0].ord_id
    bodies = [json.loads(r.body) for r in sim.requests if r.path == CLOSE]
    assert [(b["sz"], b["px"]) for b in bodies] == [("2.50", "29500.5"), ("35", "29000")]
    assert [a.path for a in sim.arrivals()] == [GRID_POSITIONS_PATH, CLOSE] * 2
    assert instrument_reads(sim) == 1  # both grids trade BTC-USDT-SWAP: read once


async def test_a_market_close_reads_nothing_first(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id)
    async with make_client() as client:
        await client.close_position(grid.algo_id, mkt_close=True)
    assert [a.path for a in sim.arrivals()] == [CLOSE]
    assert instrument_reads(sim) == 0


async def test_a_failed_positions_read_sends_no_close(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id)
    sim.inject_fault(FaultKind.EMPTY_DATA, GRID_POSITIONS_PATH)
    async with make_client() as client:
        with pytest.raises(InvalidArgumentError, match="position of 0 contracts"):
            await client.close_position(grid.algo_id, mkt_close=False, sz="1", px="29500")
        grid_row_without_inst = sim.add_grid(account.user_id, inst_id="")
        with pytest.raises(MalformedResponseError, match="names no instId"):
            await client.close_position(
                grid_row_without_inst.algo_id, mkt_close=False, sz="1", px="29500"
            )
    assert sim.arrivals(path=CLOSE) == []
