"""What the client does with answers the simulator does not give, served by a scripted OKX."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

import pytest
from aiohttp import web

from okx_grid_async import MalformedResponseError, OutcomeUnknownError
from okx_grid_async._constants import (
    GRID_CLOSE_POSITION_PATH,
    GRID_ORDERS_PENDING_PATH,
    GRID_POSITIONS_PATH,
)

from .scripted_okx import envelope, scripted_okx

PENDING: Final = GRID_ORDERS_PENDING_PATH

# Well-formed JSON, nested far deeper than the interpreter's recursion limit.
DEEP_BODY: Final = b'{"code":"0","msg":"","data":' + b"[" * 100_000 + b"]" * 100_000 + b"}"


async def deep(request: web.Request) -> web.Response:
    return web.Response(body=DEEP_BODY, content_type="application/json")


async def test_a_deep_answer_to_a_close_is_an_unknown_outcome_not_sent_again() -> None:
    async with scripted_okx({GRID_CLOSE_POSITION_PATH: deep}) as okx, okx.client() as client:
        with pytest.raises(OutcomeUnknownError) as info:
            await client.close_position("1", mkt_close=True)
    assert isinstance(info.value.__cause__, MalformedResponseError)
    assert okx.count(GRID_CLOSE_POSITION_PATH) == 1


async def test_a_deep_answer_to_a_read_is_malformed_and_the_sweep_goes_on() -> None:
    async def positions(request: web.Request) -> web.Response:
        algo_id = request.query["algoId"]
        if algo_id == "2":
            return await deep(request)
        return envelope([{"algoId": algo_id, "pos": "1"}])

    async with scripted_okx({GRID_POSITIONS_PATH: positions}) as okx, okx.client() as client:
        with pytest.raises(MalformedResponseError):
            await client.get_positions("2")
        results = {r.algo_id: r async for r in client.sweep_positions(["1", "2", "3"])}
    assert sorted(results) == ["1", "2", "3"]
    assert isinstance(results["2"].error, MalformedResponseError)
    assert results["1"].positions is not None
    assert results["3"].positions is not None


@pytest.mark.parametrize(
    "cycle",
    [["5", "5"], ["5", "3", "5"], ["9", "7", "5", "7"]],
    ids=["stuck", "A-B-A", "longer"],
)
async def test_iter_grids_stops_at_a_cursor_it_has_followed_before(cycle: list[str]) -> None:
    # Each page's last algoId is the next cursor: pages end with cycle[0], cycle[1], ...
    # and the last one returns to an earlier cursor.
    next_last: dict[str | None, str] = dict(zip([None, *cycle], cycle, strict=False))

    async def pending(request: web.Request) -> web.Response:
        last = next_last[request.query.get("after")]
        return envelope([{"algoId": "100"}, {"algoId": last}])

    async with scripted_okx({PENDING: pending}) as okx, okx.client() as client:
        yielded: list[str] = []

        async def read_every_page() -> None:
            grids = client.iter_grids(page_size=2)
            async with asyncio.timeout(5), contextlib.aclosing(grids):
                async for grid in grids:
                    yielded.append(grid.algo_id)
                    assert len(yielded) < 30, "the pages never ended"  # 15 pages

        with pytest.raises(MalformedResponseError, match=f"algoId {cycle[-1]}"):
            await read_every_page()
    assert len(yielded) == 2 * len(cycle)  # every page's grids, then the error
    cursors = [query.get("after") for _, path, query in okx.requests if path == PENDING]
    assert cursors == [None, *cycle[:-1]]
