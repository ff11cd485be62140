"""Network faults that no real server produces on demand, injected with aioresponses.

Whether a fault struck before or after the request left decides whether a
close may be sent again; these pin down that mapping for aiohttp's exceptions.
aioresponses raises the fault for the first matching request only; every other
request passes through to the real simulator.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import aiohttp
import pytest
from aioresponses import aioresponses

from okx_grid_async import OutcomeUnknownError, TransportError
from okx_grid_async._constants import GRID_CLOSE_POSITION_PATH, GRID_POSITIONS_PATH
from okx_grid_async.simulator import GridSimulator, SimAccount

from .conftest import ClientFactory


@pytest.fixture
def faults() -> Iterator[aioresponses]:
    with aioresponses(passthrough_unmatched=True) as m:
        yield m


async def test_close_is_resent_when_the_connection_never_opened(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory, faults: aioresponses
) -> None:
    grid = sim.add_grid(account.user_id)
    faults.post(
        sim.url + GRID_CLOSE_POSITION_PATH,
        exception=aiohttp.ConnectionTimeoutError("connect timed out"),
    )
    async with make_client() as client:
        result = await client.close_position(grid.algo_id, mkt_close=True)
    assert result.algo_id == grid.algo_id
    assert sim.close_calls(grid.algo_id) == 1


@pytest.mark.parametrize(
    "exc",
    [
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientPayloadError("truncated body"),
        aiohttp.SocketTimeoutError("read timed out"),
        aiohttp.ClientOSError(104, "Connection reset by peer"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_close_failing_after_it_left_is_unknown_and_not_resent(
    sim: GridSimulator,
    account: SimAccount,
    make_client: ClientFactory,
    faults: aioresponses,
    exc: Exception,
) -> None:
    grid = sim.add_grid(account.user_id)
    faults.post(sim.url + GRID_CLOSE_POSITION_PATH, exception=exc)
    async with make_client() as client:
        with pytest.raises(OutcomeUnknownError) as info:
            await client.close_position(grid.algo_id, mkt_close=True)
    cause = info.value.__cause__
    assert isinstance(cause, TransportError)
    assert cause.sent is True
    assert sim.arrivals(path=GRID_CLOSE_POSITION_PATH) == []  # and nothing went after it


async def test_get_is_retried_after_a_reset(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory, faults: aioresponses
) -> None:
    grid = sim.add_grid(account.user_id)
    faults.get(
        re.compile(re.escape(sim.url + GRID_POSITIONS_PATH) + r"\?.*"),
        exception=aiohttp.ClientOSError(104, "Connection reset by peer"),
    )
    async with make_client() as client:
        (position,) = await client.get_positions(grid.algo_id)
    assert position.algo_id == grid.algo_id
    assert len(sim.arrivals(path=GRID_POSITIONS_PATH)) == 1
