"""End to end: every code and hostile answer the simulator can produce, as GridClient raises it."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from okx_grid_async import (
    AuthenticationError,
    ClosingNotAllowedError,
    Credentials,
    GridClient,
    GridNotFoundError,
    GridStoppingError,
    HTTPStatusError,
    MalformedResponseError,
    NotGridPolicyError,
    OKXAPIError,
    OutcomeUnknownError,
    ResponseTooLargeError,
    ServiceUnavailableError,
)
from okx_grid_async._constants import (
    GRID_CLOSE_POSITION_PATH,
    GRID_ORDERS_PENDING_PATH,
    GRID_POSITIONS_PATH,
)
from okx_grid_async.simulator import FaultKind, GridSimulator, SimAccount

from .conftest import ClientFactory

POS, CLOSE = GRID_POSITIONS_PATH, GRID_CLOSE_POSITION_PATH

# How each grid code is triggered in the simulator: a function of (sim, user id) -> algo id.
Trigger = Callable[[GridSimulator, str], str]


def _grid_in_state(state: str) -> Trigger:
    def make(sim: GridSimulator, user_id: str) -> str:
        grid = sim.add_grid(user_id)
        sim.set_grid_state(grid.algo_id, state)  # type: ignore[arg-type]
        return grid.algo_id

    return make


def _removed(sim: GridSimulator, user_id: str) -> str:
    grid = sim.add_grid(user_id)
    sim.remove_grid(grid.algo_id)
    return grid.algo_id


def _close_not_allowed(sim: GridSimulator, user_id: str) -> str:
    return sim.add_grid(user_id, close_allowed=False).algo_id


def _not_a_grid(sim: GridSimulator, user_id: str) -> str:
    return sim.add_non_grid_algo(user_id)


@pytest.mark.parametrize(
    ("code", "trigger", "error"),
    [
        ("51288", _grid_in_state("stopping"), GridStoppingError),
        ("51289", _grid_in_state("starting"), GridNotFoundError),
        ("51291", _removed, GridNotFoundError),
        ("51341", _close_not_allowed, ClosingNotAllowedError),
        ("51345", _not_a_grid, NotGridPolicyError),
    ],
)
async def test_a_refused_close_raises_the_class_of_its_code(
    sim: GridSimulator,
    account: SimAccount,
    make_client: ClientFactory,
    code: str,
    trigger: Trigger,
    error: type[OKXAPIError],
) -> None:
    algo_id = trigger(sim, account.user_id)
    async with make_client() as client:
        with pytest.raises(error) as caught:
            await client.close_position(algo_id, mkt_close=True)
    assert caught.value.code == code
    assert [a.code for a in sim.arrivals(path=CLOSE)] == [code]  # refused: never resent


async def test_a_key_of_the_other_environment_is_refused_at_opening(sim: GridSimulator) -> None:
    demo_key = sim.add_account(demo=True)
    creds = Credentials(demo_key.api_key, demo_key.secret_key, demo_key.passphrase)
    with pytest.raises(AuthenticationError) as caught:
        async with GridClient(creds, base_url=sim.url, demo=False):
            pass
    assert caught.value.code == "50101"
    async with GridClient(creds, base_url=sim.url, demo=True) as client:
        assert client.user_id == demo_key.user_id


async def test_50026_is_retried_for_a_read_and_unknown_for_a_close(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id, pos=Decimal(3))
    sim.inject_fault(FaultKind.SYSTEM_ERROR_50026, POS)
    async with make_client() as client:
        assert await client.get_positions(grid.algo_id)
        sim.inject_fault(FaultKind.SYSTEM_ERROR_50026, CLOSE)
        with pytest.raises(OutcomeUnknownError) as caught:
            await client.close_position(grid.algo_id, mkt_close=True)
    assert isinstance(caught.value.__cause__, ServiceUnavailableError)
    assert [a.code for a in sim.arrivals(path=POS)] == ["50026", "0"]


async def test_a_redirect_from_the_simulator_is_not_followed(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id)
    sim.inject_fault(FaultKind.REDIRECT, CLOSE, count=50)  # a loop, if it were followed
    async with make_client() as client:
        with pytest.raises(HTTPStatusError) as caught:
            await client.close_position(grid.algo_id, mkt_close=True)
    assert caught.value.http_status == 307
    assert len(sim.arrivals(path=CLOSE)) == 1
    assert sim.close_calls(grid.algo_id) == 0


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (FaultKind.HUGE_BODY, ResponseTooLargeError),
        (FaultKind.GZIP_BOMB, ResponseTooLargeError),
        (FaultKind.DEEP_JSON, MalformedResponseError),
    ],
)
async def test_hostile_answers_are_typed_errors(
    sim: GridSimulator,
    account: SimAccount,
    make_client: ClientFactory,
    fault: FaultKind,
    error: type[MalformedResponseError],
) -> None:
    grid = sim.add_grid(account.user_id, pos=Decimal(3))
    async with make_client() as client:
        sim.inject_fault(fault, POS)
        with pytest.raises(error):
            await client.get_positions(grid.algo_id)
        sim.inject_fault(fault, CLOSE)
        with pytest.raises(OutcomeUnknownError):  # it was executed before the answer
            await client.close_position(grid.algo_id, mkt_close=True)
        state = await client.reconcile_close(grid.algo_id)
    assert state.is_closed
    assert sim.close_calls(grid.algo_id) == 1


async def test_a_cursor_cycle_from_the_simulator_ends_discovery(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    sim.add_demo_grids(account.user_id, 12)
    sim.inject_fault(FaultKind.CURSOR_CYCLE, GRID_ORDERS_PENDING_PATH, count=100)
    async with make_client() as client:
        with pytest.raises(MalformedResponseError, match="cursor"):
            async for _ in client.iter_grids(page_size=3):
                pass
    assert len(sim.arrivals(path=GRID_ORDERS_PENDING_PATH)) < 10
