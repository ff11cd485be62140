"""Hostile answers for hardening a client: redirects, huge bodies, a gzip bomb, deep JSON, cycles.

Each test reads only what it needs (headers, the first kilobytes) with plain
aiohttp, so the suite stays fast and small in memory even for a 1 GiB bomb.
"""

from __future__ import annotations

import gzip
import json
import time
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from yarl import URL

from okx_grid_async._constants import (
    GRID_CLOSE_POSITION_PATH,
    GRID_ORDERS_HISTORY_PATH,
    GRID_ORDERS_PENDING_PATH,
    GRID_POSITIONS_PATH,
)
from okx_grid_async.simulator import FaultKind, GridSimulator, GridState, SimGrid

from . import test_simulator as base
from .test_simulator import Client, signed_headers

# The tiny client's fixtures, shared with test_simulator.py (pytest finds fixtures by name).
client, grid, session, no_server_errors = (
    base.client,
    base.grid,
    base.session,
    base.no_server_errors,
)

MiB = 1024 * 1024


def close_answer(grid: SimGrid) -> dict[str, Any]:
    """What a market close of ``grid`` answers without a fault."""
    row = {"algoClOrdId": "", "algoId": grid.algo_id, "ordId": "", "tag": ""}
    return {"code": "0", "msg": "", "data": [row]}


def positions_path(grid: SimGrid) -> str:
    return f"{GRID_POSITIONS_PATH}?algoOrdType=contract_grid&algoId={grid.algo_id}"


@pytest.fixture
async def raw_session() -> AsyncIterator[aiohttp.ClientSession]:
    """A session that leaves bodies compressed, to look at a gzip bomb without opening it."""
    async with aiohttp.ClientSession(auto_decompress=False) as raw:
        yield raw


async def open_raw(
    raw: aiohttp.ClientSession, client: Client, method: str, request_path: str, body: str = ""
) -> aiohttp.ClientResponse:
    """Send a signed request and return the response unread (the caller releases it)."""
    return await raw.request(
        method,
        URL(client.sim.url + request_path, encoded=True),
        data=body.encode() or None,
        headers=signed_headers(client.account, method, request_path, body),
        allow_redirects=False,
    )


# -- REDIRECT ------------------------------------------------------------------------------


async def test_redirect_defaults_to_the_same_url_and_does_not_execute(
    client: Client, grid: SimGrid, raw_session: aiohttp.ClientSession
) -> None:
    client.sim.inject_fault(FaultKind.REDIRECT, GRID_POSITIONS_PATH)
    resp = await open_raw(raw_session, client, "GET", positions_path(grid))
    async with resp:
        assert resp.status == 307
        assert resp.headers["Location"] == client.sim.url + positions_path(grid)
    client.sim.inject_fault(FaultKind.REDIRECT, GRID_CLOSE_POSITION_PATH)
    body = json.dumps({"algoId": grid.algo_id, "mktClose": True})
    resp = await open_raw(raw_session, client, "POST", GRID_CLOSE_POSITION_PATH, body)
    async with resp:
        assert resp.status == 307
    assert client.sim.close_calls(grid.algo_id) == 0
    assert [(a.http_status, a.code) for a in client.sim.arrivals()] == [(307, ""), (307, "")]


async def test_a_client_that_follows_the_default_redirect_loops(
    client: Client, grid: SimGrid
) -> None:
    client.sim.inject_fault(FaultKind.REDIRECT, count=50)
    path = positions_path(grid)
    with pytest.raises(aiohttp.TooManyRedirects):
        async with client.session.get(
            URL(client.sim.url + path, encoded=True),
            headers=signed_headers(client.account, "GET", path, ""),
            max_redirects=5,
        ):
            pass
    followed = [r.path for r in client.sim.requests]
    assert len(followed) >= 5
    assert set(followed) == {GRID_POSITIONS_PATH}


async def test_redirect_to_a_given_location(
    client: Client, grid: SimGrid, raw_session: aiohttp.ClientSession
) -> None:
    elsewhere = "https://attacker.example/api/v5/tradingBot/grid/positions"
    client.sim.inject_fault(FaultKind.REDIRECT, location=elsewhere)
    resp = await open_raw(raw_session, client, "GET", positions_path(grid))
    async with resp:
        assert (resp.status, resp.headers["Location"]) == (307, elsewhere)


# -- HUGE_BODY -----------------------------------------------------------------------------


async def test_huge_body_is_the_real_answer_padded_to_8_mib(client: Client, grid: SimGrid) -> None:
    client.sim.inject_fault(FaultKind.HUGE_BODY)
    reply = await client.close(grid.algo_id, mktClose=True)
    assert reply.status == 200
    assert len(reply.body) == 8 * MiB
    assert reply.json() == close_answer(grid)
    assert client.sim.close_calls(grid.algo_id) == 1  # executed before the body was sent
    assert [(a.http_status, a.code) for a in client.sim.arrivals()] == [(200, "0")]


async def test_huge_body_no_larger_than_the_answer_leaves_it_alone(
    client: Client, grid: SimGrid
) -> None:
    client.sim.inject_fault(FaultKind.HUGE_BODY, size=10)
    reply = await client.close(grid.algo_id, mktClose=True)
    assert reply.body == json.dumps(close_answer(grid), separators=(",", ":")).encode()


@pytest.mark.usefixtures("no_server_errors")
async def test_a_client_may_hang_up_in_the_middle_of_a_huge_body(
    client: Client, grid: SimGrid, raw_session: aiohttp.ClientSession
) -> None:
    client.sim.inject_fault(FaultKind.HUGE_BODY, size=512 * MiB)
    resp = await open_raw(raw_session, client, "GET", positions_path(grid))
    async with resp:
        assert resp.content_length == 512 * MiB
        first = await resp.content.readexactly(64 * 1024)
        assert first.startswith(b"{   ")
        resp.close()  # hang up: the server stops writing
    assert (await client.positions(grid.algo_id)).code == "0"


@pytest.mark.usefixtures("no_server_errors")
async def test_closing_the_simulator_ends_a_body_the_client_stopped_reading(
    session: aiohttp.ClientSession,
) -> None:
    sim = GridSimulator()
    await sim.start()
    client = Client(session, sim, sim.add_account())
    grid = sim.add_grid(client.account.user_id)
    sim.inject_fault(FaultKind.HUGE_BODY, size=512 * MiB)
    path = positions_path(grid)
    async with session.get(
        URL(sim.url + path, encoded=True), headers=signed_headers(client.account, "GET", path, "")
    ) as resp:
        await resp.content.readexactly(1024)  # then stop reading: the server's writes block
        started = time.monotonic()
        await sim.close()
        # A body still blocked on its writes would hold close() for as long as the
        # client does not read: minutes. A loaded machine has been seen taking 2 s.
        assert time.monotonic() - started < 5.0
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()


# -- GZIP_BOMB -----------------------------------------------------------------------------


@pytest.mark.usefixtures("no_server_errors")
async def test_gzip_bomb_is_about_1_mb_expanding_to_1_gib(
    client: Client, grid: SimGrid, raw_session: aiohttp.ClientSession
) -> None:
    client.sim.inject_fault(FaultKind.GZIP_BOMB)
    body = json.dumps({"algoId": grid.algo_id, "mktClose": True})
    resp = await open_raw(raw_session, client, "POST", GRID_CLOSE_POSITION_PATH, body)
    async with resp:
        assert (resp.status, resp.headers["Content-Encoding"]) == (200, "gzip")
        assert resp.content_type == "application/json"
        assert resp.content_length is not None
        assert 0.5 * MiB < resp.content_length < 2 * MiB
        start = await resp.content.readexactly(16 * 1024)
        resp.close()
    inflater = zlib.decompressobj(wbits=31)
    opened = inflater.decompress(start, 64 * MiB)
    assert opened.startswith(b"{   ")
    assert len(opened) > 1000 * len(start) // 2  # about 1000:1
    assert opened[1:] == b" " * (len(opened) - 1)
    assert client.sim.close_calls(grid.algo_id) == 1
    assert [(a.http_status, a.code) for a in client.sim.arrivals()] == [(200, "0")]


async def test_a_small_gzip_bomb_is_valid_gzip_of_the_padded_answer(
    client: Client, grid: SimGrid, raw_session: aiohttp.ClientSession
) -> None:
    size = 3 * MiB + 5  # whole blocks of spaces and a remainder
    client.sim.inject_fault(FaultKind.GZIP_BOMB, size=size, count=2)
    resp = await open_raw(raw_session, client, "GET", positions_path(grid))
    async with resp:
        compressed = await resp.read()
    opened = gzip.decompress(compressed)  # checks the trailer's CRC and length
    assert len(opened) == size
    expected = (await client.positions(grid.algo_id)).json()  # aiohttp decompresses this one
    assert json.loads(opened) == expected
    assert expected["data"][0]["algoId"] == grid.algo_id


# -- DEEP_JSON -----------------------------------------------------------------------------


async def test_deep_json_nests_data_100000_deep(client: Client, grid: SimGrid) -> None:
    client.sim.inject_fault(FaultKind.DEEP_JSON)
    reply = await client.close(grid.algo_id, mktClose=True)
    assert reply.status == 200
    assert reply.body.startswith(b'{"code":"0","msg":"","data":[[[[')
    assert reply.body.count(b"[") == reply.body.count(b"]") == 100_000
    with pytest.raises(RecursionError):
        reply.json()
    assert client.sim.close_calls(grid.algo_id) == 1


# -- CURSOR_CYCLE --------------------------------------------------------------------------


async def follow_after(client: Client, path: str, pages: int) -> list[list[str]]:
    """Page ``path`` three rows at a time, following ``after`` cursors like a naive client."""
    seen: list[list[str]] = []
    cursor = ""
    for _ in range(pages):
        reply = await client.get(path, f"algoOrdType=contract_grid&limit=3{cursor}")
        assert reply.code == "0"
        ids = [row["algoId"] for row in reply.data]
        seen.append(ids)
        if len(ids) < 3:
            break
        cursor = f"&after={ids[-1]}"
    return seen


@pytest.mark.parametrize(
    ("path", "state"),
    [(GRID_ORDERS_PENDING_PATH, "no_close_position"), (GRID_ORDERS_HISTORY_PATH, "stopped")],
)
async def test_cursor_cycle_leads_after_cursors_round_a_loop(
    client: Client, path: str, state: GridState
) -> None:
    sim = client.sim
    ids = [sim.add_grid(client.account.user_id, state=state).algo_id for _ in range(7)]
    newest = ids[::-1]
    assert await follow_after(client, path, 10) == [newest[:3], newest[3:6], newest[6:]]
    sim.inject_fault(FaultKind.CURSOR_CYCLE, path, count=5)
    pages = await follow_after(client, path, 10)
    a, b = newest[2], newest[5]
    # Five pages under the fault, then the usual pages from where the client stands.
    assert [page[-1] for page in pages] == [a, b, a, b, a, b, newest[6]]
    assert pages[:2] == [newest[:3], newest[3:6]]
    assert {(x.http_status, x.code) for x in sim.arrivals(path=path)} == {(200, "0")}


async def test_cursor_cycle_needs_a_second_page(client: Client) -> None:
    for _ in range(3):
        client.sim.add_grid(client.account.user_id)
    client.sim.inject_fault(FaultKind.CURSOR_CYCLE, GRID_ORDERS_PENDING_PATH, count=5)
    assert [len(page) for page in await follow_after(client, GRID_ORDERS_PENDING_PATH, 5)] == [
        3,
        0,
    ]


# -- arguments -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "kwargs", "match"),
    [
        (FaultKind.LATENCY, {"location": "http://x/"}, "REDIRECT only"),
        (FaultKind.REDIRECT, {"location": "http://x/\r\nSet-Cookie: a=b"}, "one line"),
        (FaultKind.DEEP_JSON, {"size": 10}, "HUGE_BODY and GZIP_BOMB only"),
        (FaultKind.HUGE_BODY, {"size": 0}, "at least 1"),
        (FaultKind.CURSOR_CYCLE, {}, "listing's path"),
        (FaultKind.CURSOR_CYCLE, {"path": GRID_POSITIONS_PATH}, "listing's path"),
    ],
)
def test_fault_arguments_are_checked(
    sim: GridSimulator, kind: FaultKind, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        sim.inject_fault(kind, **kwargs)
