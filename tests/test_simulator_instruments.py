"""The simulator's instruments: GET /api/v5/public/instruments and closes off the grid (51000)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from okx_grid_async._constants import GRID_CLOSE_POSITION_PATH, PUBLIC_INSTRUMENTS_PATH
from okx_grid_async.simulator import GridSimulator, SimAccount
from okx_grid_async.simulator._instruments import instrument_spec
from okx_grid_async.simulator._rows import position_row

from .test_simulator import Client, Reply

# The fields of an OKX instruments row that the simulator fills (OKX sends more).
ROW_FIELDS = {
    "alias", "baseCcy", "ctMult", "ctType", "ctVal", "ctValCcy", "expTime", "instFamily",
    "instId", "instType", "lever", "listTime", "lotSz", "maxLmtSz", "maxMktSz", "minSz",
    "optType", "quoteCcy", "ruleType", "settleCcy", "state", "stk", "tickSz", "uly",
}  # fmt: skip


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
def client(sim: GridSimulator, account: SimAccount, session: aiohttp.ClientSession) -> Client:
    return Client(session, sim, account)


async def instruments(session: aiohttp.ClientSession, sim: GridSimulator, query: str) -> Reply:
    """An unsigned GET, as any program may send to a public endpoint."""
    async with session.get(f"{sim.url}{PUBLIC_INSTRUMENTS_PATH}?{query}") as resp:
        return Reply(resp.status, await resp.read(), resp.content_type)


# -- GET /api/v5/public/instruments ------------------------------------------------


async def test_lists_the_swaps_unsigned_and_logs_no_arrival(
    session: aiohttp.ClientSession, sim: GridSimulator
) -> None:
    reply = await instruments(session, sim, "instType=SWAP")
    assert (reply.status, reply.code) == (200, "0")
    assert [row["instId"] for row in reply.data] == [
        "BTC-USDT-SWAP",
        "ETH-USDT-SWAP",
        "SOL-USDT-SWAP",
    ]
    assert all(set(row) == ROW_FIELDS for row in reply.data)
    assert all(isinstance(value, str) for row in reply.data for value in row.values())
    assert sim.arrivals() == []  # public: not an arrival at a private endpoint


@pytest.mark.parametrize(
    ("inst_id", "ct_val", "lot_sz", "min_sz", "tick_sz", "ct_val_ccy"),
    [
        ("BTC-USDT-SWAP", "0.01", "0.01", "0.01", "0.1", "BTC"),
        ("ETH-USDT-SWAP", "0.1", "0.01", "0.01", "0.01", "ETH"),
        ("SOL-USDT-SWAP", "1", "0.01", "0.01", "0.01", "SOL"),
    ],
)
async def test_one_instrument_by_id(
    session: aiohttp.ClientSession,
    sim: GridSimulator,
    inst_id: str,
    ct_val: str,
    lot_sz: str,
    min_sz: str,
    tick_sz: str,
    ct_val_ccy: str,
) -> None:
    reply = await instruments(session, sim, f"instType=SWAP&instId={inst_id}")
    (row,) = reply.data
    assert (row["ctVal"], row["lotSz"], row["minSz"], row["tickSz"]) == (
        ct_val,
        lot_sz,
        min_sz,
        tick_sz,
    )
    assert (row["instType"], row["ctValCcy"], row["settleCcy"], row["state"]) == (
        "SWAP",
        ct_val_ccy,
        "USDT",
        "live",
    )
    assert row["uly"] == row["instFamily"] == inst_id.removesuffix("-SWAP")


async def test_every_traded_instrument_is_listed_with_the_ct_val_positions_use(
    session: aiohttp.ClientSession, sim: GridSimulator, account: SimAccount
) -> None:
    doge = sim.add_grid(account.user_id, inst_id="DOGE-USDT-SWAP", avg_px="0.15", mark_px="0.15")
    future = sim.add_grid(account.user_id, inst_id="BTC-USDT-250328")
    swaps = (await instruments(session, sim, "instType=SWAP")).data
    (listed_future,) = (await instruments(session, sim, "instType=FUTURES")).data
    assert "DOGE-USDT-SWAP" in [row["instId"] for row in swaps]
    assert (listed_future["instId"], listed_future["instType"]) == ("BTC-USDT-250328", "FUTURES")
    rows = {row["instId"]: row for row in [*swaps, listed_future]}
    for grid in (doge, future, sim.add_grid(account.user_id)):
        row = rows[grid.inst_id]
        assert Decimal(row["ctVal"]) == grid.ct_val
        position = position_row(grid)
        assert Decimal(position["notionalUsd"]) == abs(grid.pos) * grid.ct_val * grid.mark_px
    assert (rows["DOGE-USDT-SWAP"]["lotSz"], rows["DOGE-USDT-SWAP"]["tickSz"]) == ("1", "0.0001")


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("", 400, "50014"),
        ("instType=", 400, "50014"),
        ("instType=PERPETUAL", 400, "51000"),
        ("instType=SWAP&instId=XYZ-USDT-SWAP", 200, "51001"),
        ("instType=FUTURES&instId=BTC-USDT-SWAP", 200, "51001"),
        ("instType=SPOT&instId=BTC-USDT", 200, "51001"),
    ],
)
async def test_instrument_errors(
    session: aiohttp.ClientSession, sim: GridSimulator, query: str, status: int, code: str
) -> None:
    reply = await instruments(session, sim, query)
    assert (reply.status, reply.code, reply.data) == (status, code, [])


async def test_spot_lists_nothing_the_simulator_has_contracts_only(
    session: aiohttp.ClientSession, sim: GridSimulator
) -> None:
    reply = await instruments(session, sim, "instType=SPOT")
    assert (reply.code, reply.data) == ("0", [])


# -- close-position on the instrument's grid -------------------------------------


@pytest.mark.parametrize(
    ("grid_kw", "sz", "px", "code"),
    [
        ({}, "2.55", "29500.5", "0"),
        ({}, "0.01", "29500", "0"),
        ({}, "35", "29500.5", "0"),
        ({}, "2.555", "29500.5", "51000"),  # off the 0.01 lot
        ({}, "0.001", "29500.5", "51000"),  # below the 0.01 minimum
        ({}, "2.55", "29500.55", "51000"),  # off the 0.1 tick
        ({"inst_id": "SOL-USDT-SWAP", "avg_px": 150, "mark_px": 150}, "3.5", "150.07", "0"),
        ({"inst_id": "SOL-USDT-SWAP", "avg_px": 150, "mark_px": 150}, "3.5", "150.075", "51000"),
        ({"inst_id": "DOGE-USDT-SWAP", "avg_px": 1, "mark_px": 1}, "3", "1.0001", "0"),
        ({"inst_id": "DOGE-USDT-SWAP", "avg_px": 1, "mark_px": 1}, "0.5", "1.0001", "51000"),
        ({}, "2.55", "1E+100", "51000"),  # too large to divide by the tick: refused, no 500
    ],
)
async def test_a_partial_close_must_fit_the_instrument_grid(
    client: Client, grid_kw: dict[str, Any], sz: str, px: str, code: str
) -> None:
    grid = client.sim.add_grid(client.account.user_id, **grid_kw)
    reply = await client.post(
        GRID_CLOSE_POSITION_PATH, {"algoId": grid.algo_id, "mktClose": False, "sz": sz, "px": px}
    )
    assert reply.code == code
    assert reply.status == (400 if code == "51000" else 200)
    assert client.sim.close_calls(grid.algo_id) == (code == "0")


@pytest.mark.parametrize(
    ("inst_id", "sz", "px", "off"),
    [
        ("BTC-USDT-SWAP", "0.01", "0.1", None),
        ("BTC-USDT-SWAP", "0.015", "1", "sz"),
        ("BTC-USDT-SWAP", "0.005", "1", "sz"),
        ("BTC-USDT-SWAP", "1", "1.05", "px"),
        ("BTC-USDT-SWAP", "1E+40", "1", "sz"),
        ("ETH-USDT-250627", "0.02", "3000.01", None),
        ("XRP-USDT-SWAP", "1.5", "0.5", "sz"),
        ("XRP-USDT-SWAP", "2", "0.50001", "px"),
    ],
)
def test_off_grid_names_the_first_value_refused(
    inst_id: str, sz: str, px: str, off: str | None
) -> None:
    assert instrument_spec(inst_id).off_grid(Decimal(sz), Decimal(px)) == off
