"""Findings of the adversarial review that live in the transport and the limiters.

1: an answer in hand is returned, whatever the slot's release costs.
2 and 9: redirects are never followed, and a borrowed session's settings do not
change what a status means. 3: one budget across threads. 6: bodies are capped.
7: no secret is reachable from an error.
"""

from __future__ import annotations

import asyncio
import gzip
import threading
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from okx_grid_async import (
    Credentials,
    GridClient,
    HTTPStatusError,
    LimiterStats,
    LocalRateLimiter,
    MalformedResponseError,
    OutcomeUnknownError,
    RedisRateLimiter,
    ResponseTooLargeError,
    TransportError,
)
from okx_grid_async._constants import (
    GRID_CLOSE_POSITION_PATH,
    GRID_POSITIONS_PATH,
    MAX_RESPONSE_BYTES,
)
from okx_grid_async._limiter import Slot
from okx_grid_async.simulator import FaultKind, GridSimulator, SimAccount, max_in_window
from okx_grid_async.simulator._proxy import LatencyProxy

from .conftest import ClientFactory
from .scripted_okx import CREDENTIALS, Handler, scripted_okx

POS, CLOSE = GRID_POSITIONS_PATH, GRID_CLOSE_POSITION_PATH


class SlowReleaseLimiter:
    """A user's RateLimiter whose release awaits ``delay`` seconds (a remote store)."""

    def __init__(self, delay: float) -> None:
        self.inner = LocalRateLimiter()
        self.delay = delay
        self.released = 0

    def slot(self, user_key: str, endpoint: str, *, wait_timeout: float | None = None) -> Slot:
        @asynccontextmanager
        async def hold() -> AsyncIterator[None]:
            async with self.inner.slot(user_key, endpoint, wait_timeout=wait_timeout):
                yield
                await asyncio.sleep(self.delay)
                self.released += 1

        return hold()

    async def penalize(self, user_key: str, endpoint: str) -> None:
        await self.inner.penalize(user_key, endpoint)

    def stats(self, user_key: str, endpoint: str) -> LimiterStats:
        return self.inner.stats(user_key, endpoint)


# ---------------------------------------------------------------- finding 1


async def test_an_executed_close_is_returned_though_its_release_outlasts_the_deadline(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id)
    limiter = SlowReleaseLimiter(0.3)
    async with make_client(rate_limiter=limiter) as client:
        result = await client.close_position(grid.algo_id, mkt_close=True, timeout=0.2)
    assert result.algo_id == grid.algo_id
    assert sim.close_calls(grid.algo_id) == 1
    assert limiter.released == 1


async def test_an_executed_close_is_returned_with_redis_300_ms_away(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory, redis_url: str
) -> None:
    """The review's reproduction: Redis answering in 300 ms and timeout=0.45."""
    host, port = redis_url.removeprefix("redis://").split("/")[0].split(":")
    grid = sim.add_grid(account.user_id)
    async with (
        LatencyProxy(host, int(port), up=0.15, down=0.15) as proxy,
        RedisRateLimiter(f"redis://127.0.0.1:{proxy.port}/0", key_prefix="finding-1") as limiter,
        make_client(rate_limiter=limiter) as client,
    ):
        loop = asyncio.get_running_loop()
        started = loop.time()
        result = await client.close_position(grid.algo_id, mkt_close=True, timeout=0.45)
        assert loop.time() - started >= 0.6  # a Redis round trip each to take and release
    assert result.algo_id == grid.algo_id
    assert sim.close_calls(grid.algo_id) == 1


async def test_a_release_is_finished_even_when_the_caller_is_cancelled_during_it(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id)
    limiter = SlowReleaseLimiter(0.2)
    async with make_client(rate_limiter=limiter) as client:
        call = asyncio.create_task(client.get_positions(grid.algo_id))
        await asyncio.sleep(0.1)  # answered within a few ms; the 0.2 s release is under way
        assert len(sim.arrivals(path=POS)) == 1
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert limiter.released == 0
    # Closing the client waited for the release instead of dropping it.
    assert limiter.released == 1


# ---------------------------------------------------------------- findings 2 and 9


def _everything(handler: Handler) -> dict[str, Handler]:
    return {"/api/v5/{tail:.*}": handler}


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_redirect_is_never_followed(method: str) -> None:
    elsewhere: list[web.Request] = []

    async def record(request: web.Request) -> web.Response:
        elsewhere.append(request)
        return web.json_response({"code": "0", "msg": "", "data": []})

    hits = 0

    async def redirect(request: web.Request) -> web.Response:
        nonlocal hits
        hits += 1
        raise web.HTTPTemporaryRedirect(target.url + request.path_qs)

    async with (
        scripted_okx(_everything(record)) as target,
        scripted_okx(_everything(redirect)) as origin,
        origin.client() as client,
    ):
        call = (
            client.get_positions("1")
            if method == "GET"
            else client.close_position("1", mkt_close=True)
        )
        with pytest.raises(HTTPStatusError) as caught:
            await call
    assert caught.value.http_status == 307
    assert not isinstance(caught.value, OutcomeUnknownError)  # a redirect executes nothing
    assert hits == 1  # neither followed nor retried
    assert elsewhere == []


async def test_a_borrowed_session_raising_for_status_does_not_turn_50011_into_unknown(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id)
    sim.inject_fault(FaultKind.RATE_LIMIT_50011, CLOSE)  # HTTP 429
    async with (
        aiohttp.ClientSession(raise_for_status=True) as session,
        make_client(session=session) as client,
    ):
        result = await client.close_position(grid.algo_id, mkt_close=True)
    assert result.algo_id == grid.algo_id
    assert [a.code for a in sim.arrivals(path=CLOSE)] == ["50011", "0"]


# ---------------------------------------------------------------- finding 3


async def test_plain_clients_on_two_threads_share_one_budget_and_nobody_stalls(
    sim: GridSimulator, account: SimAccount
) -> None:
    grid = sim.add_grid(account.user_id)
    creds = Credentials(account.api_key, account.secret_key, account.passphrase)
    barrier = threading.Barrier(2)

    def thread(calls: int) -> int:
        async def work() -> int:
            async with GridClient(creds, base_url=sim.url, user_id=account.user_id) as client:
                barrier.wait(5)
                results = await asyncio.gather(
                    *(client.get_positions(grid.algo_id) for _ in range(calls))
                )
                return len(results)

        return asyncio.run(work())

    done = await asyncio.wait_for(
        asyncio.gather(asyncio.to_thread(thread, 30), asyncio.to_thread(thread, 5)), 15
    )
    assert list(done) == [30, 5]
    arrivals = sim.arrivals(path=POS)
    assert [a.code for a in arrivals].count("50011") == 0
    assert max_in_window([a.t for a in arrivals], 2.0) <= 20


# ---------------------------------------------------------------- finding 6


async def _huge(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    await response.write(b'{"code":"0","msg":"","data":["')
    block = b"x" * 65536
    for _ in range(MAX_RESPONSE_BYTES // len(block) * 4):  # 4 times the cap
        await response.write(block)
    await response.write(b'"]}')
    return response


async def _gzip_bomb(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
    )
    await response.prepare(request)
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    await response.write(packer.compress(b'{"code":"0","msg":"","data":["'))
    zeros = b"0" * (1 << 20)
    for _ in range(256):  # 256 MB once inflated, about 256 kB on the wire
        await response.write(packer.compress(zeros))
    await response.write(packer.compress(b'"]}') + packer.flush())
    return response


@pytest.mark.parametrize("handler", [_huge, _gzip_bomb], ids=["plain", "gzip-bomb"])
async def test_a_body_past_the_cap_is_a_typed_error_for_a_read(
    handler: Callable[[web.Request], Any],
) -> None:
    async with scripted_okx(_everything(handler)) as okx, okx.client() as client:
        with pytest.raises(ResponseTooLargeError) as caught:
            await client.get_positions("1")
    assert isinstance(caught.value, MalformedResponseError)
    assert str(MAX_RESPONSE_BYTES) in str(caught.value)


async def test_a_close_answered_past_the_cap_is_an_unknown_outcome() -> None:
    async with scripted_okx(_everything(_gzip_bomb)) as okx, okx.client() as client:
        with pytest.raises(OutcomeUnknownError, match="cap"):
            await client.close_position("1", mkt_close=True)


def test_the_gzip_bomb_really_is_one() -> None:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    packed = packer.compress(b"0" * (1 << 20)) + packer.flush()
    assert len(gzip.decompress(packed)) > 500 * len(packed)


# ---------------------------------------------------------------- finding 7


def _reachable(root: BaseException) -> list[object]:
    """Every object reachable from an exception through causes, contexts, args and attributes."""
    seen: dict[int, object] = {}
    stack: list[object] = [root]
    while stack:
        obj = stack.pop()
        if (
            id(obj) in seen
            or isinstance(obj, type)
            or (callable(obj) and not isinstance(obj, BaseException))
        ):
            continue
        seen[id(obj)] = obj
        if isinstance(obj, BaseException):
            stack += [obj.__cause__, obj.__context__, *obj.args]
        if isinstance(obj, dict | list | tuple | set | frozenset):
            items = obj.items() if isinstance(obj, dict) else obj
            stack += [x for item in items for x in (item if isinstance(item, tuple) else (item,))]
        elif hasattr(obj, "__dict__") or hasattr(obj, "__slots__"):
            for name in [*getattr(obj, "__dict__", {}), *getattr(obj, "__slots__", ())]:
                with_value = getattr(obj, name, None)
                if with_value is not None:
                    stack.append(with_value)
        elif hasattr(obj, "items") and hasattr(obj, "keys"):  # multidict headers
            stack += [f"{k}: {v}" for k, v in obj.items()]
    return list(seen.values())


async def test_no_secret_is_reachable_from_a_transport_error() -> None:
    """A response aiohttp cannot parse: its error carries request_info, headers and all."""

    async def broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(broken, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with scripted_okx({}) as okx:
        client = okx.client()
        async with client:
            client._transport.base_url = f"http://127.0.0.1:{port}"
            with pytest.raises(TransportError) as caught:
                await client.get_positions("1")
    server.close()
    await server.wait_closed()
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None
    for obj in _reachable(caught.value):
        assert CREDENTIALS.passphrase not in str(obj)
        assert "scripted-secret" not in str(obj)


async def test_without_user_id_redis_keys_hold_the_user_id_never_the_api_key(
    sim: GridSimulator, account: SimAccount, creds: Credentials, redis_url: str
) -> None:
    """Finding 7: the budget key was the API key in clear, in every Redis key."""
    import redis.asyncio as aioredis

    grid = sim.add_grid(account.user_id)
    async with (
        RedisRateLimiter(redis_url, key_prefix="finding-7") as limiter,
        GridClient(creds, base_url=sim.url, rate_limiter=limiter) as client,
    ):
        await client.get_positions(grid.algo_id)
    store = aioredis.from_url(redis_url, decode_responses=True)
    try:
        keys = [str(key) for key in await store.keys("finding-7:*")]
    finally:
        await store.aclose()
    assert keys
    assert all(f"{{{account.user_id}}}" in key for key in keys)
    assert not any(account.api_key in key for key in keys)
