"""The account side of the simulator: account/config, a user's several keys, live and demo keys."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from okx_grid_async._constants import (
    ACCOUNT_CONFIG_MAX_RATE,
    ACCOUNT_CONFIG_PATH,
    ACCOUNT_CONFIG_TIME_PERIOD,
    GRID_POSITIONS_PATH,
)
from okx_grid_async.simulator import GridSimulator, max_in_window

from . import test_simulator as base
from .test_simulator import Client, FakeClock, Reply

# The tiny client's fixtures, shared with test_simulator.py (pytest finds fixtures by name).
client, session = base.client, base.session


async def config_burst(client: Client, n: int) -> list[Reply]:
    return list(await asyncio.gather(*(client.get(ACCOUNT_CONFIG_PATH) for _ in range(n))))


# -- GET /api/v5/account/config ----------------------------------------------------------


async def test_account_config_answers_the_keys_user(
    sim: GridSimulator, session: aiohttp.ClientSession
) -> None:
    account = sim.add_account(label="sweeper")
    reply = await Client(session, sim, account).get(ACCOUNT_CONFIG_PATH)
    assert (reply.status, reply.code, reply.json()["msg"]) == (200, "0", "")
    (row,) = reply.data
    assert (row["uid"], row["mainUid"]) == (account.user_id, account.user_id)
    assert (row["acctLv"], row["posMode"]) == ("2", "long_short_mode")
    assert (row["label"], row["perm"]) == ("sweeper", "read_only,trade")
    assert reply.json()["data"][0]["autoLoan"] is False  # OKX's flags are JSON booleans


async def test_account_config_is_private_and_get_only(client: Client) -> None:
    unsigned = {"Content-Type": "application/json"}
    reply = await client.send("GET", ACCOUNT_CONFIG_PATH, headers=unsigned)
    assert (reply.status, reply.code) == (401, "50103")
    assert (await client.send("POST", ACCOUNT_CONFIG_PATH, "{}")).status == 405
    assert [(a.path, a.user_id, a.code) for a in client.sim.arrivals()] == [
        (ACCOUNT_CONFIG_PATH, None, "50103")
    ]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def timed(clock: FakeClock, session: aiohttp.ClientSession) -> AsyncIterator[Client]:
    async with GridSimulator(max_rate=3, time_period=1.0, clock=clock) as sim:
        yield Client(session, sim, sim.add_account())


async def test_account_config_has_its_own_limit_of_5_per_2_s(
    timed: Client, clock: FakeClock
) -> None:
    sim = timed.sim
    assert sim.rate_limit(ACCOUNT_CONFIG_PATH) == (5, 2.0)
    assert (ACCOUNT_CONFIG_MAX_RATE, ACCOUNT_CONFIG_TIME_PERIOD) == (5, 2.0)
    assert sim.rate_limit(GRID_POSITIONS_PATH) == (sim.max_rate, sim.time_period) == (3, 1.0)
    replies = await config_burst(timed, 6)
    assert sorted(r.code for r in replies) == ["0"] * 5 + ["50011"]
    clock.now += 1.5  # past the grid endpoints' 1 s window, inside account/config's 2 s
    assert [r.code for r in await config_burst(timed, 2)] == ["50011"] * 2
    clock.now += 0.5
    assert sorted(r.code for r in await config_burst(timed, 6)) == ["0"] * 5 + ["50011"]
    arrivals = sim.arrivals(path=ACCOUNT_CONFIG_PATH)
    assert len(arrivals) == 14
    assert max_in_window([a.t for a in arrivals if a.code == "0"], 2.0) == 5


async def test_account_config_budget_is_apart_from_the_grid_endpoints(timed: Client) -> None:
    grid = timed.sim.add_grid(timed.account.user_id)
    assert {r.code for r in await config_burst(timed, 5)} == {"0"}
    positions = await asyncio.gather(*(timed.positions(grid.algo_id) for _ in range(3)))
    assert {r.code for r in positions} == {"0"}
    assert (await timed.get(ACCOUNT_CONFIG_PATH)).code == "50011"
    assert (await timed.positions(grid.algo_id)).code == "50011"


# -- several keys of one user ------------------------------------------------------------


async def test_a_users_keys_share_its_budget(
    sim: GridSimulator, session: aiohttp.ClientSession
) -> None:
    first = sim.add_account()
    second = sim.add_api_key(first.user_id, label="second")
    assert second.user_id == first.user_id
    assert second.api_key != first.api_key
    assert second.secret_key != first.secret_key
    grid = sim.add_grid(first.user_id)
    clients = [Client(session, sim, key) for key in (first, second)]
    replies = await asyncio.gather(*(c.positions(grid.algo_id) for c in clients for _ in range(15)))
    assert sorted(r.code for r in replies) == ["0"] * 20 + ["50011"] * 10
    arrivals = sim.arrivals(user_id=first.user_id)
    assert len(arrivals) == 30
    assert max_in_window([a.t for a in arrivals if a.code == "0"], 2.0) == 20
    (row,) = (await clients[1].get(ACCOUNT_CONFIG_PATH)).data
    assert (row["uid"], row["label"]) == (first.user_id, "second")


def test_add_api_key_needs_a_known_user(sim: GridSimulator) -> None:
    with pytest.raises(ValueError, match="unknown user_id"):
        sim.add_api_key("123")


# -- live and demo keys --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key_demo", "header", "status", "code"),
    [
        (True, "1", 200, "0"),
        (True, None, 401, "50101"),
        (True, "0", 401, "50101"),  # only "1" asks for demo trading
        (False, None, 200, "0"),
        (False, "1", 401, "50101"),
        (None, "1", 200, "0"),  # a key of no stated environment takes both
        (None, None, 200, "0"),
    ],
)
async def test_a_key_answers_50101_in_the_other_environment(
    sim: GridSimulator,
    session: aiohttp.ClientSession,
    key_demo: bool | None,
    header: str | None,
    status: int,
    code: str,
) -> None:
    account = sim.add_account(demo=key_demo)
    assert account.demo is key_demo
    grid = sim.add_grid(account.user_id)
    client = Client(session, sim, account)
    path = f"{GRID_POSITIONS_PATH}?algoOrdType=contract_grid&algoId={grid.algo_id}"
    headers = client.headers("GET", path, "")
    if header is not None:
        headers["x-simulated-trading"] = header
    reply = await client.send("GET", path, headers=headers)
    assert (reply.status, reply.code) == (status, code)
    (arrival,) = sim.arrivals()
    assert arrival.user_id == (None if code == "50101" else account.user_id)


async def test_environment_is_checked_before_the_signature(
    sim: GridSimulator, session: aiohttp.ClientSession
) -> None:
    live = sim.add_api_key(sim.add_account().user_id, demo=False)
    client = Client(session, sim, live)
    headers = {**client.headers("GET", ACCOUNT_CONFIG_PATH, ""), "x-simulated-trading": "1"}
    headers["OK-ACCESS-SIGN"] = "bm90IGEgc2lnbmF0dXJl"
    reply = await client.send("GET", ACCOUNT_CONFIG_PATH, headers=headers)
    assert (reply.status, reply.code) == (401, "50101")
    assert reply.json()["msg"] == "APIKey does not match current environment."
