"""OKX's grid codes, each answered by the simulator from a trigger that reads naturally.

OKX does not say which request answers 51288, 51289, 51291, 51341 or 51345; the
simulator gives each one cause (see docs/simulator.md), so that a client's mapping
of every code can be tested end to end.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from okx_grid_async._constants import GRID_CANCEL_CLOSE_ORDER_PATH, GRID_ORDERS_PENDING_PATH
from okx_grid_async.simulator import GridSimulator, SimGrid

from . import test_simulator as base
from .test_simulator import Client, Reply

# The tiny client's fixtures, shared with test_simulator.py (pytest finds fixtures by name).
client, grid, session = base.client, base.grid, base.session


Request = Callable[[Client, str], Awaitable[Reply]]


async def positions(client: Client, algo_id: str) -> Reply:
    return await client.positions(algo_id)


async def market_close(client: Client, algo_id: str) -> Reply:
    return await client.close(algo_id, mktClose=True)


async def limit_close(client: Client, algo_id: str) -> Reply:
    return await client.close(algo_id, mktClose=False, sz="1", px="40000")


async def cancel(client: Client, algo_id: str) -> Reply:
    return await client.post(GRID_CANCEL_CLOSE_ORDER_PATH, {"algoId": algo_id, "ordId": "1"})


ALL_REQUESTS = [positions, market_close, limit_close, cancel]
CLOSES = [market_close, limit_close]


async def pending_ids(client: Client) -> list[str]:
    reply = await client.get(GRID_ORDERS_PENDING_PATH, "algoOrdType=contract_grid")
    return [row["algoId"] for row in reply.data]


@pytest.mark.parametrize("request_", ALL_REQUESTS)
async def test_51289_a_starting_grid_has_no_configuration_yet(
    client: Client, grid: SimGrid, request_: Request
) -> None:
    assert client.sim.set_grid_state(grid.algo_id, "starting") is grid
    reply = await request_(client, grid.algo_id)
    assert (reply.status, reply.code) == (200, "51289")
    assert reply.json()["msg"] == "Bot configuration does not exist. Please try again later"
    assert await pending_ids(client) == [grid.algo_id]  # listed, as OKX lists a starting bot
    assert client.sim.close_calls(grid.algo_id) == 0


@pytest.mark.parametrize("request_", ALL_REQUESTS)
async def test_51291_a_removed_grid_does_not_exist_or_has_been_stopped(
    client: Client, grid: SimGrid, request_: Request
) -> None:
    assert client.sim.remove_grid(grid.algo_id) is grid
    reply = await request_(client, grid.algo_id)
    assert (reply.status, reply.code) == (200, "51291")
    assert reply.json()["msg"] == "This Bot does not exist or has been stopped"
    assert await pending_ids(client) == []
    stranger = Client(client.session, client.sim, client.sim.add_account())
    assert (await request_(stranger, grid.algo_id)).code == "51293"


@pytest.mark.parametrize("request_", ALL_REQUESTS)
async def test_51345_an_algo_order_that_is_not_a_grid(client: Client, request_: Request) -> None:
    algo_id = client.sim.add_non_grid_algo(client.account.user_id)
    reply = await request_(client, algo_id)
    assert (reply.status, reply.code) == (200, "51345")
    assert reply.json()["msg"] == "Policy type is not grid policy"
    assert await pending_ids(client) == []
    stranger = Client(client.session, client.sim, client.sim.add_account())
    assert (await request_(stranger, algo_id)).code == "51293"


@pytest.mark.parametrize("request_", CLOSES)
async def test_51288_closing_a_stopping_grid(
    client: Client, grid: SimGrid, request_: Request
) -> None:
    client.sim.set_grid_state(grid.algo_id, "stopping")
    reply = await request_(client, grid.algo_id)
    assert (reply.status, reply.code) == (200, "51288")
    assert reply.json()["msg"].startswith("We are stopping the Bot.")
    assert (await client.positions(grid.algo_id)).code == "0"  # it can still be read
    client.sim.set_grid_state(grid.algo_id, "no_close_position")
    assert (await request_(client, grid.algo_id)).code == "0"


@pytest.mark.parametrize("request_", CLOSES)
async def test_51341_position_closing_not_allowed(client: Client, request_: Request) -> None:
    grid = client.sim.add_grid(client.account.user_id, close_allowed=False)
    reply = await request_(client, grid.algo_id)
    assert (reply.status, reply.code, reply.json()["msg"]) == (
        200,
        "51341",
        "Position closing not allowed",
    )
    assert (await client.positions(grid.algo_id)).code == "0"
    assert client.sim.close_calls(grid.algo_id) == 0
    grid.close_allowed = True
    assert (await request_(client, grid.algo_id)).code == "0"


async def test_51059_still_answers_a_running_or_stopped_grid(client: Client, grid: SimGrid) -> None:
    for state in ("running", "stopped"):
        client.sim.set_grid_state(grid.algo_id, state)
        assert (await market_close(client, grid.algo_id)).code == "51059"


def test_grid_triggers_refuse_bad_arguments(sim: GridSimulator) -> None:
    user_id = sim.add_account().user_id
    grid = sim.add_grid(user_id)
    with pytest.raises(ValueError, match="state must be one of"):
        sim.set_grid_state(grid.algo_id, "paused")  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        sim.set_grid_state("1", "running")
    sim.remove_grid(grid.algo_id)
    with pytest.raises(KeyError):
        sim.remove_grid(grid.algo_id)
    with pytest.raises(KeyError):
        sim.grid(grid.algo_id)
    with pytest.raises(ValueError, match="already exists"):
        sim.add_grid(user_id, algo_id=grid.algo_id)  # a removed grid's id is never reused
    other = sim.add_non_grid_algo(user_id, "700000000000000001")
    with pytest.raises(ValueError, match="already exists"):
        sim.add_non_grid_algo(user_id, other)
    with pytest.raises(ValueError, match="numeric"):
        sim.add_non_grid_algo(user_id, "\uff11")
    with pytest.raises(ValueError, match="unknown user_id"):
        sim.add_non_grid_algo("nobody")
    assert int(sim.add_grid(user_id).algo_id) > int(other)
