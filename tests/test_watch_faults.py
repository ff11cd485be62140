"""The streams' failure paths: the simulator's limits and faults, and, for frames the
simulator never sends (garbage, a malformed row, a message refused as a whole, a login
answered oddly, an upgrade that hangs), a scripted business WebSocket on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web

from okx_grid_async import (
    GridClient,
    HTTPStatusError,
    LocalRateLimiter,
    LoginRefusedError,
    MalformedResponseError,
    OKXAPIError,
    ParameterError,
    WatchFailure,
)
from okx_grid_async._constants import (
    GRID_ORDERS_PENDING_PATH,
    GRID_POSITIONS_PATH,
    PUBLIC_TIME_PATH,
    WS_BUSINESS_PATH,
)
from okx_grid_async._ws._protocol import GRIDS, POSITIONS
from okx_grid_async.simulator import FaultKind, GridSimulator, SimAccount

from .conftest import ClientFactory
from .scripted_okx import CREDENTIALS, ScriptedOKX, scripted_okx
from .test_watch import client_of, next_item, next_update, until, ws_tasks

pytestmark = pytest.mark.realtime

Session = Callable[[web.WebSocketResponse, int], Awaitable[None]]
LOGGED_IN = {"event": "login", "code": "0", "msg": "", "connId": "c0ffee00"}


def row(algo_id: str = "1", **fields: str) -> dict[str, str]:
    """A grid-positions row as OKX pushes it (fields left out are "")."""
    now = str(int(time.time() * 1000))
    return {"algoId": algo_id, "pos": "35", "posSide": "net", "uTime": now, "pTime": now, **fields}


async def log_in(ws: web.WebSocketResponse, answer: dict[str, str] = LOGGED_IN) -> None:
    login = await ws.receive_json()
    assert login["op"] == "login"
    await ws.send_json(answer)


async def acknowledge(ws: web.WebSocketResponse) -> dict[str, Any]:
    """Read one subscribe message and acknowledge each argument; the message."""
    message: dict[str, Any] = await ws.receive_json()
    assert message["op"] == "subscribe"
    for arg in message["args"]:
        await ws.send_json({"id": message["id"], "event": "subscribe", "arg": arg})
    return message


async def hold(ws: web.WebSocketResponse) -> None:
    """Keep the connection open until the client closes it."""
    async for _ in ws:
        pass


@dataclass
class ScriptedWS:
    """A scripted OKX and the WebSocket connections it accepted."""

    okx: ScriptedOKX
    connections: int = 0

    def client(self, **options: Any) -> GridClient:
        """A client of this server, as `ScriptedOKX.client` makes, ``timeout`` changeable."""
        settings: dict[str, Any] = {"timeout": 5.0, **options}
        return GridClient(
            CREDENTIALS,
            base_url=self.okx.url,
            user_id="1",
            rate_limiter=LocalRateLimiter(),
            **settings,
        )


@contextlib.asynccontextmanager
async def scripted_ws(*sessions: Session) -> AsyncIterator[ScriptedWS]:
    """A scripted OKX whose n-th WebSocket connection plays ``sessions[n]`` (the last repeats)."""
    scripted: ScriptedWS

    async def business(request: web.Request) -> web.StreamResponse:
        session = sessions[min(scripted.connections, len(sessions) - 1)]
        scripted.connections += 1
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await session(ws, scripted.connections)
        return ws

    async with scripted_okx({WS_BUSINESS_PATH: business}) as okx:
        scripted = ScriptedWS(okx)
        yield scripted


# ---------------------------------------------------------------- frames OKX may send


async def test_garbage_and_foreign_frames_are_ignored_and_a_bad_row_is_an_item(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def session(ws: web.WebSocketResponse, _: int) -> None:
        login = await ws.receive_json()
        assert login["op"] == "login"
        await ws.send_str("pong")  # before the answer: skipped
        await ws.send_json({"event": "channel-conn-count", "count": "1"})
        await ws.send_json(LOGGED_IN)
        await acknowledge(ws)
        await ws.send_str("{not json")
        await ws.send_bytes(b"\x00binary")
        await ws.send_json({"arg": {"channel": "tickers", "instId": "X"}, "data": [row()]})
        await ws.send_json({"arg": {"channel": "grid-positions", "algoId": "1"}, "data": []})
        await ws.send_json(
            {"arg": {"channel": "grid-positions", "algoId": "1"}, "data": [row(pos="abc")]}
        )
        await ws.send_json({"arg": {"channel": "grid-positions", "algoId": "1"}, "data": [row()]})
        await hold(ws)

    async with (
        scripted_ws(session) as okx,
        okx.client() as client,
        client.watch_positions(["1"]) as stream,
    ):
        bad = await next_item(stream)
        assert isinstance(bad, WatchFailure)
        assert isinstance(bad.error, MalformedResponseError)
        assert bad.algo_id == "1"
        good = await next_update(stream)
        assert good.pos == Decimal(35)
        assert stream.stats.pushes == 1  # the good one; the empty push is ignored
    assert "unreadable message ignored" in caplog.text


async def test_a_message_refused_as_a_whole_fails_each_of_its_grids() -> None:
    async def session(ws: web.WebSocketResponse, _: int) -> None:
        await log_in(ws)
        message = await ws.receive_json()
        await ws.send_json(
            {"id": message["id"], "event": "error", "code": "60012", "msg": "Invalid request"}
        )
        await hold(ws)

    async with (
        scripted_ws(session) as okx,
        okx.client() as client,
        client.watch_positions(["1", "2"]) as stream,
    ):
        items = [item async for item in stream]  # nothing left to watch: it ends
    assert sorted(i.algo_id for i in items if isinstance(i, WatchFailure)) == ["1", "2"]
    assert all(isinstance(i, WatchFailure) and isinstance(i.error, ParameterError) for i in items)


@pytest.mark.parametrize(
    "error",
    [
        {"event": "error", "code": "60014", "msg": "Requests too frequent."},
        {"event": "error", "id": "77", "code": "60011", "msg": "Please log in"},
        {"event": "error", "code": "63999", "msg": "Internal error"},  # answers nothing of ours
    ],
)
async def test_an_error_about_the_connection_replaces_it(error: dict[str, str]) -> None:
    async def first(ws: web.WebSocketResponse, _: int) -> None:
        await log_in(ws)
        await acknowledge(ws)
        await ws.send_json(error)
        await hold(ws)

    async def then(ws: web.WebSocketResponse, _: int) -> None:
        await log_in(ws)
        await acknowledge(ws)
        await ws.send_json({"arg": {"channel": "grid-positions", "algoId": "1"}, "data": [row()]})
        await hold(ws)

    async with (
        scripted_ws(first, then) as okx,
        okx.client() as client,
        client.watch_positions(["1"]) as stream,
    ):
        await next_update(stream)
        # Both logged in; the first was dropped as it subscribed, or just after.
        assert (okx.connections, stream.stats.connects) == (2, 2)


async def test_a_refused_grids_subscription_is_an_item_without_a_grid() -> None:
    async def session(ws: web.WebSocketResponse, _: int) -> None:
        await log_in(ws)
        message = await ws.receive_json()
        await ws.send_json(
            {
                "id": message["id"],
                "event": "error",
                "code": "60018",
                "msg": "Wrong URL or channel",
                "arg": message["args"][0],
            }
        )
        await hold(ws)

    async with (
        scripted_ws(session) as okx,
        okx.client() as client,
        client.watch_grids("FUTURES") as stream,
    ):
        failure = await next_item(stream)
    assert isinstance(failure, WatchFailure)
    assert failure.algo_id == ""
    assert isinstance(failure.error, ParameterError)


async def test_a_login_answer_with_a_code_is_a_refusal() -> None:
    async def session(ws: web.WebSocketResponse, _: int) -> None:
        await log_in(ws, {"event": "login", "code": "60032", "msg": "API key doesn't exist"})
        await hold(ws)

    async with scripted_ws(session) as okx, okx.client() as client:
        with pytest.raises(LoginRefusedError, match="60032"):
            await next_item(client.watch_positions(["1"]))


@pytest.mark.parametrize("fault", ["close", "silence", "no_ack", "garbage"])
async def test_a_connection_that_fails_before_serving_is_retried(fault: str) -> None:
    async def failing(ws: web.WebSocketResponse, _: int) -> None:
        if fault == "close":
            await ws.receive_json()
            await ws.close()  # closed before the login is answered
        elif fault == "silence":
            await hold(ws)  # the login is never answered
        elif fault == "no_ack":
            await log_in(ws)
            await hold(ws)  # the subscription is never answered
        else:
            await ws.receive_json()
            await ws.send_str("<html>")  # not an answer at all
            await hold(ws)

    async def working(ws: web.WebSocketResponse, _: int) -> None:
        await log_in(ws)
        await acknowledge(ws)
        await ws.send_json({"arg": {"channel": "grid-positions", "algoId": "1"}, "data": [row()]})
        await hold(ws)

    async with (
        scripted_ws(failing, working) as okx,
        okx.client(timeout=0.5) as client,
        client.watch_positions(["1"]) as stream,
    ):
        await next_update(stream)
        assert okx.connections == 2
        assert stream.stats.connects == (2 if fault == "no_ack" else 1)  # logged in or not


async def test_an_upgrade_that_hangs_is_given_up_and_retried() -> None:
    release = asyncio.Event()
    upgrades = 0

    async def business(request: web.Request) -> web.StreamResponse:
        nonlocal upgrades
        upgrades += 1
        if upgrades == 1:
            await release.wait()  # no answer to the upgrade within the client's timeout
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await log_in(ws)
        await acknowledge(ws)
        await ws.send_json({"arg": {"channel": "grid-positions", "algoId": "1"}, "data": [row()]})
        await hold(ws)
        return ws

    async with (
        scripted_okx({WS_BUSINESS_PATH: business}) as okx,
        ScriptedWS(okx).client(timeout=0.5) as client,
        client.watch_positions(["1"]) as stream,
    ):
        await next_update(stream)
        assert upgrades == 2
        release.set()


# ---------------------------------------------------------------- the simulator's limits


async def test_a_wrong_websocket_url_raises_at_once(
    sim: GridSimulator, make_client: ClientFactory
) -> None:
    wrong = sim.ws_url.replace("/business", "/nowhere")
    async with make_client(ws_url=wrong) as client, client.watch_positions(["1"]) as stream:
        with pytest.raises(HTTPStatusError) as refused:
            await next_item(stream)
        assert 400 <= refused.value.http_status < 500
        assert ws_tasks() == []


async def test_upgrades_refused_for_rate_are_tried_again() -> None:
    async with GridSimulator(seed=7, ws_connect_rate=1) as sim:
        account = sim.add_account()
        grid = sim.add_grid(account.user_id)
        async with client_of(sim, account) as client:
            streams = [client.watch_positions([grid.algo_id]) for _ in range(3)]
            try:
                for stream in streams:
                    await stream.__aenter__()
                for stream in streams:
                    await next_update(stream, timeout=10.0)
            finally:
                for stream in streams:
                    await stream.aclose()
        assert sim.ws_connection_refusals() >= 1  # 3 per second here, 1 there: 429s
        assert sim.ws_connects() == 3


async def test_an_operation_refused_for_rate_leads_to_a_new_connection() -> None:
    async with GridSimulator(seed=7, ws_ops_per_hour=2) as sim:
        account = sim.add_account()
        grids = [sim.add_grid(account.user_id) for _ in range(2)]
        second = asyncio.Event()

        async def ids() -> AsyncIterator[str]:
            yield grids[0].algo_id
            await second.wait()  # the next subscription is the connection's third op
            yield grids[1].algo_id

        async with (
            client_of(sim, account) as client,
            client.watch_positions(ids()) as stream,
        ):
            assert (await next_update(stream)).algo_id == grids[0].algo_id
            second.set()
            seen = await next_update(stream)
            while seen.algo_id != grids[1].algo_id:
                seen = await next_update(stream)
            assert stream.stats.reconnects == 1  # 60014, then login + one subscribe: 2 ops
            assert sim.ws_connects() == 2


async def test_subscriptions_past_the_hours_budget_wait_for_it(
    sim: GridSimulator,
    account: SimAccount,
    make_client: ClientFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    grids = [sim.add_grid(account.user_id) for _ in range(2)]
    second = asyncio.Event()

    async def ids() -> AsyncIterator[str]:
        yield grids[0].algo_id
        await second.wait()
        yield grids[1].algo_id

    async with make_client() as client:
        client._streams.ops_per_hour = (2, 1.0)  # OKX's 480 an hour, shrunk to 2 a second
        async with client.watch_positions(ids()) as stream:
            await next_update(stream)  # the login and one subscribe: the budget is spent
            started = time.monotonic()
            second.set()
            assert (await next_update(stream)).algo_id == grids[1].algo_id
            waited = time.monotonic() - started
    assert 0.2 < waited < 1.5  # until the login was a "second" old
    assert "operations this hour" in caplog.text
    assert sim.ws_ops() == 3
    assert sim.ws_connects() == 1


# ---------------------------------------------------------------- resyncs that fail


async def test_a_resync_read_that_fails_is_an_item(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id)
    async with (
        make_client(max_attempts=1) as client,
        client.watch_positions([grid.algo_id]) as stream,
    ):
        await next_update(stream)
        sim.inject_fault(FaultKind.HTTP_500_HTML, GRID_POSITIONS_PATH)
        sim.ws_drop_all()
        failure = await next_item(stream)
        assert isinstance(failure, WatchFailure)
        assert failure.algo_id == grid.algo_id
        assert isinstance(failure.error, HTTPStatusError)


async def test_a_grids_listing_that_fails_is_an_item(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    sim.add_grid(account.user_id)
    async with make_client(max_attempts=1) as client, client.watch_grids() as stream:
        await next_update(stream)
        sim.inject_fault(FaultKind.BUSY_50013, GRID_ORDERS_PENDING_PATH)
        sim.ws_drop_all()
        failure = await next_item(stream)
        assert isinstance(failure, WatchFailure)
        assert failure.algo_id == ""
        assert isinstance(failure.error, OKXAPIError)
        assert failure.error.code == "50013"


async def test_a_second_drop_starts_the_resync_over(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    ids = [sim.add_grid(account.user_id).algo_id for _ in range(60)]
    async with make_client() as client, client.watch_positions(ids) as stream:
        for _ in ids:
            await next_update(stream)
        sim.ws_drop_all()
        await until(lambda: stream.stats.resync_requests > 0)
        sim.ws_drop_all()  # at 10 reads a second, the first resync is far from done
        await until(lambda: stream.stats.reconnects == 2 and stream.stats.connects == 3)
        await until(lambda: len(sim.arrivals(path=GRID_POSITIONS_PATH)) >= 60 + 20, 15.0)
        assert 60 < stream.stats.resync_requests < 2 * 60


# ---------------------------------------------------------------- clock and odds and ends


async def test_a_stale_clock_offset_is_measured_again_before_the_login(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id)
    async with make_client(max_attempts=1) as client:
        # Measured 15 minutes ago: no longer trusted to sign with.
        client._transport._server_clock.measured_at -= 901.0
        sim.clear_requests()
        sim.inject_fault(FaultKind.HTTP_503, PUBLIC_TIME_PATH)  # the first re-read fails
        async with client.watch_positions([grid.algo_id]) as stream:
            await next_update(stream, timeout=10.0)
    times = [r for r in sim.requests if r.path == PUBLIC_TIME_PATH]
    assert len(times) == 2


async def test_a_slow_id_source_is_cancelled_with_the_stream(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id)
    closed = asyncio.Event()

    async def ids() -> AsyncGenerator[str, None]:
        try:
            yield grid.algo_id
            await asyncio.Event().wait()  # more ids, some day
            yield "never"
        finally:
            closed.set()

    async with make_client() as client:
        source = ids()
        stream = client.watch_positions(source)
        async with stream:
            await next_update(stream)
            assert stream.ws_url == sim.ws_url
        assert ws_tasks() == []
        await source.aclose()
        assert closed.is_set()
        del stream  # closed already: its finalizer has nothing to do


def test_channels_say_what_they_are() -> None:
    assert repr(POSITIONS) == "Channel('grid-positions')"
    assert repr(GRIDS) == "Channel('grid-orders-contract')"
