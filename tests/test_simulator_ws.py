"""The simulator's business WebSocket over a real connection, driven by aiohttp's own client.

Whether nothing was sent is asked with ``ping``: the server answers in order, so
when ``pong`` is the next frame, nothing was queued before it.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from okx_grid_async.simulator import GridSimulator, GridState, SimAccount, SimGrid
from okx_grid_async.testing import FakeClock, stop_grid_keeping_position

from .test_simulator import (
    ALGO_ROW_FIELDS,
    SEED_POSITION_FIELDS,
    Client,
    no_server_errors,  # noqa: F401 - a fixture
    okx_sign,
    until,
)

WS = aiohttp.ClientWebSocketResponse
POSITIONS = "grid-positions"
ORDERS = "grid-orders-contract"

pytestmark = pytest.mark.usefixtures("no_server_errors")


def login_arg(
    account: SimAccount,
    *,
    ts: str | None = None,
    passphrase: str | None = None,
    secret: str | None = None,
    api_key: str | None = None,
) -> dict[str, str]:
    """A login arg signed independently of the library: Unix seconds, GET/users/self/verify."""
    ts = f"{time.time():.3f}" if ts is None else ts
    return {
        "apiKey": account.api_key if api_key is None else api_key,
        "passphrase": account.passphrase if passphrase is None else passphrase,
        "timestamp": ts,
        "sign": okx_sign(
            account.secret_key if secret is None else secret, ts + "GET/users/self/verify"
        ),
    }


@asynccontextmanager
async def connect(sim: GridSimulator, *, autoping: bool = True) -> AsyncIterator[WS]:
    """A connection; ``autoping=False`` shows protocol-level pongs as messages."""
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(sim.ws_url, autoping=autoping) as ws,
    ):
        yield ws


async def recv(ws: WS) -> dict[str, Any]:
    msg = await ws.receive(timeout=5)
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    message: dict[str, Any] = json.loads(msg.data)
    return message


async def send(ws: WS, op: str, *args: dict[str, Any], req_id: str | None = None) -> None:
    message: dict[str, Any] = {"op": op, "args": list(args)}
    if req_id is not None:
        message["id"] = req_id
    await ws.send_str(json.dumps(message))


async def login(ws: WS, account: SimAccount) -> str:
    """Log in; the connection's id."""
    await send(ws, "login", login_arg(account))
    answer = await recv(ws)
    assert answer["event"] == "login", answer
    conn_id: str = answer["connId"]
    return conn_id


async def assert_nothing_queued(ws: WS) -> None:
    await ws.send_str("ping")
    msg = await ws.receive(timeout=5)
    assert (msg.type, msg.data) == (aiohttp.WSMsgType.TEXT, "pong")


async def subscribe_positions(ws: WS, algo_id: str) -> dict[str, Any]:
    """Subscribe to one grid's positions: its snapshot push."""
    arg = {"channel": POSITIONS, "algoId": algo_id}
    await send(ws, "subscribe", arg)
    assert (await recv(ws))["event"] == "subscribe"
    return await recv(ws)


@pytest.fixture
def account(sim: GridSimulator) -> SimAccount:
    return sim.add_account()


@pytest.fixture
def grid(sim: GridSimulator, account: SimAccount) -> SimGrid:
    return sim.add_grid(account.user_id)


@pytest.fixture
async def ws(sim: GridSimulator, account: SimAccount) -> AsyncIterator[WS]:
    """A logged-in connection of ``account``."""
    async with connect(sim) as socket:
        await login(socket, account)
        yield socket


# -- the endpoint, login --------------------------------------------------------------


async def test_ws_url_is_the_business_path_on_the_rest_host(sim: GridSimulator) -> None:
    assert sim.ws_url == f"ws://127.0.0.1:{sim.port}/ws/v5/business"
    async with aiohttp.ClientSession() as session, session.get(sim.url + "/ws/v5/business") as r:
        assert r.status == 400  # a plain GET is no upgrade


async def test_ws_url_needs_a_started_simulator() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        _ = GridSimulator().ws_url


async def test_login_answers_code_0_and_a_connection_id(
    sim: GridSimulator, account: SimAccount
) -> None:
    async with connect(sim) as ws:
        await send(ws, "login", login_arg(account))
        answer = await recv(ws)
    assert answer.keys() == {"event", "code", "msg", "connId"}
    assert answer | {"connId": ""} == {"event": "login", "code": "0", "msg": "", "connId": ""}
    assert re.fullmatch(r"[0-9a-f]{8}", answer["connId"])
    assert sim.ws_connects() == 1


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"api_key": "no-such-key"}, "60005"),
        ({"passphrase": "wrong"}, "60024"),
        ({"secret": "not-the-secret"}, "60007"),
        ({"ts": "2024-01-01T00:00:00.000Z"}, "60004"),  # REST's form is not the WebSocket's
        ({"ts": ""}, "60004"),
        ({"ts": f"{time.time() - 31:.3f}"}, "60006"),
    ],
)
async def test_a_refused_login_answers_its_code_and_keeps_the_connection_open(
    sim: GridSimulator, account: SimAccount, changes: dict[str, str], code: str
) -> None:
    async with connect(sim) as ws:
        await send(ws, "login", login_arg(account, **changes))
        answer = await recv(ws)
        assert (answer["event"], answer["code"]) == ("error", code)
        assert answer["msg"]
        assert answer["connId"]
        await assert_nothing_queued(ws)  # still open
        await login(ws, account)  # and a correct login still works


@pytest.mark.parametrize(("skew", "accepted"), [(-29, True), (29, True), (-31, False), (31, False)])
async def test_the_login_timestamp_must_be_within_30_s_of_the_simulator_clock(
    sim: GridSimulator, account: SimAccount, skew: int, accepted: bool
) -> None:
    sim.clock_offset_ms = 45_000  # the simulator's clock is 45 s ahead: that is the reference
    ts = f"{time.time() + 45 + skew:.3f}"
    async with connect(sim) as ws:
        await send(ws, "login", login_arg(account, ts=ts))
        answer = await recv(ws)
    assert answer["code"] == ("0" if accepted else "60006")


async def test_the_key_environment_is_not_checked_on_the_websocket(sim: GridSimulator) -> None:
    live = sim.add_account(demo=False)
    async with connect(sim) as ws:
        await login(ws, live)


async def test_a_second_login_on_one_connection_answers_60031(ws: WS, account: SimAccount) -> None:
    await send(ws, "login", login_arg(account))
    assert (await recv(ws))["code"] == "60031"


async def test_subscribing_before_login_answers_60011_and_subscribes_nothing(
    sim: GridSimulator, account: SimAccount, grid: SimGrid
) -> None:
    async with connect(sim) as ws:
        await send(ws, "subscribe", {"channel": POSITIONS, "algoId": grid.algo_id}, req_id="a1")
        answer = await recv(ws)
        assert answer | {"connId": ""} == {
            "id": "a1", "event": "error", "code": "60011", "msg": "Please log in", "connId": "",
        }  # fmt: skip
        await login(ws, account)
        sim.set_mark_price(grid.algo_id, 30000)
        await assert_nothing_queued(ws)
    assert sim.ws_pushes() == 0


# -- subscribe: acks and snapshots -----------------------------------------------------


async def test_subscribe_acks_the_arg_as_sent_then_pushes_the_rest_row(
    sim: GridSimulator, account: SimAccount, grid: SimGrid, ws: WS
) -> None:
    arg = {"channel": POSITIONS, "algoId": grid.algo_id}
    await send(ws, "subscribe", arg, req_id="sub1")
    ack = await recv(ws)
    assert ack.keys() == {"id", "event", "arg", "connId"}
    assert (ack["id"], ack["event"], ack["arg"]) == ("sub1", "subscribe", arg)
    snapshot = await recv(ws)
    assert snapshot["arg"] == {"channel": POSITIONS, "uid": account.user_id, "algoId": grid.algo_id}
    [row] = snapshot["data"]
    assert row.keys() == SEED_POSITION_FIELDS | {"pTime"}
    assert abs(int(row.pop("pTime")) - sim.server_time_ms()) < 5_000
    async with aiohttp.ClientSession() as session:
        rest = await Client(session, sim, account).positions(grid.algo_id)
    assert rest.data == [row]
    assert sim.ws_pushes() == 1


async def test_orders_snapshot_is_every_matching_pending_grid_of_the_user_in_one_push(
    sim: GridSimulator, account: SimAccount, ws: WS
) -> None:
    btc = sim.add_grid(account.user_id, state="running")
    sim.add_grid(account.user_id, inst_id="ETH-USDT-SWAP", avg_px="3400", mark_px="3400")
    sim.add_grid(account.user_id, state="stopped", pos=0)  # history, not pending
    sim.add_grid(sim.add_account().user_id)  # another user's
    newest = sim.add_grid(account.user_id)
    arg = {"channel": ORDERS, "instType": "SWAP", "instId": "BTC-USDT-SWAP"}
    await send(ws, "subscribe", arg)
    assert (await recv(ws))["arg"] == arg
    snapshot = await recv(ws)
    assert snapshot["arg"] == {**arg, "uid": account.user_id}
    assert [r["algoId"] for r in snapshot["data"]] == [newest.algo_id, btc.algo_id]
    assert all(r.keys() == ALGO_ROW_FIELDS | {"pTime"} for r in snapshot["data"])
    assert [r["state"] for r in snapshot["data"]] == ["no_close_position", "running"]

    await send(ws, "subscribe", {"channel": ORDERS, "instType": "ANY"})
    await recv(ws)
    assert len((await recv(ws))["data"]) == 3

    await send(ws, "subscribe", {"channel": ORDERS, "instType": "FUTURES"})
    await recv(ws)
    assert (await recv(ws))["data"] == []  # OKX's rule: ignore empty data


async def test_a_bad_arg_is_refused_on_its_own_and_the_others_are_subscribed(
    sim: GridSimulator, account: SimAccount, grid: SimGrid, ws: WS
) -> None:
    foreign = sim.add_grid(sim.add_account().user_id)
    not_a_grid = sim.add_non_grid_algo(account.user_id)
    args: list[dict[str, Any]] = [
        {"channel": POSITIONS, "algoId": "123456"},
        {"channel": POSITIONS, "algoId": grid.algo_id},
        {"channel": POSITIONS, "algoId": foreign.algo_id},
        {"channel": POSITIONS, "algoId": not_a_grid},
        {"channel": POSITIONS},
        {"channel": ORDERS, "instType": "SPOT"},
        {"channel": ORDERS, "instType": "ANY"},
        {"channel": "tickers", "instId": "BTC-USDT"},
    ]
    await send(ws, "subscribe", *args, req_id="7")
    answers = [await recv(ws) for _ in range(len(args) + 2)]  # two acks come with a snapshot
    kinds = [a.get("event", "push") for a in answers]
    assert kinds == [
        "error", "subscribe", "push", "error", "error", "error", "error", "subscribe", "push",
        "error",
    ]  # fmt: skip
    errors = [a for a in answers if a.get("event") == "error"]
    assert [e["arg"] for e in errors] == [args[0], args[2], args[3], args[4], args[5], args[7]]
    assert {(e["code"], e["id"]) for e in errors} == {("60018", "7")}
    assert errors[0]["msg"] == "Wrong URL or channel:grid-positions,algoId:123456 doesn't exist."
    assert (
        errors[4]["msg"] == "Wrong URL or channel:grid-orders-contract,instType:SPOT doesn't exist."
    )
    assert sim.ws_ops() == 2  # the login and this one message


async def test_unsubscribe_acks_and_stops_the_pushes(
    sim: GridSimulator, grid: SimGrid, ws: WS
) -> None:
    await subscribe_positions(ws, grid.algo_id)
    arg = {"channel": POSITIONS, "algoId": grid.algo_id}
    await send(ws, "unsubscribe", arg, req_id="u1")
    ack = await recv(ws)
    assert (ack["id"], ack["event"], ack["arg"]) == ("u1", "unsubscribe", arg)
    sim.set_mark_price(grid.algo_id, 30000)
    await assert_nothing_queued(ws)


async def test_subscribing_twice_pushes_each_change_once(
    sim: GridSimulator, grid: SimGrid, ws: WS
) -> None:
    await subscribe_positions(ws, grid.algo_id)
    await subscribe_positions(ws, grid.algo_id)
    sim.set_mark_price(grid.algo_id, 30000)
    assert (await recv(ws))["data"][0]["markPx"] == "30000"
    await assert_nothing_queued(ws)


# -- pushes ----------------------------------------------------------------------------


async def close_at_market(sim: GridSimulator, account: SimAccount, algo_id: str) -> None:
    async with aiohttp.ClientSession() as session:
        reply = await Client(session, sim, account).close(algo_id, mktClose=True)
    assert reply.code == "0"


async def fill_close_order(sim: GridSimulator, account: SimAccount, algo_id: str) -> None:
    async with aiohttp.ClientSession() as session:
        reply = await Client(session, sim, account).close(
            algo_id, mktClose=False, sz="10", px="30000"
        )
    assert reply.code == "0"
    sim.set_mark_price(algo_id, 30000)


async def move_mark(sim: GridSimulator, account: SimAccount, algo_id: str) -> None:
    sim.set_mark_price(algo_id, "29000.5")


async def stop_keeping_position(sim: GridSimulator, account: SimAccount, algo_id: str) -> None:
    stop_grid_keeping_position(sim, algo_id)


async def set_stopping(sim: GridSimulator, account: SimAccount, algo_id: str) -> None:
    sim.set_grid_state(algo_id, "stopping")


async def remove(sim: GridSimulator, account: SimAccount, algo_id: str) -> None:
    sim.set_grid_state(algo_id, "stopped")
    sim.remove_grid(algo_id)


Change = Callable[[GridSimulator, SimAccount, str], Awaitable[None]]


@pytest.mark.parametrize(
    ("change", "state", "position"),
    [
        (close_at_market, ["stopped"], {"pos": "0", "avgPx": ""}),
        (fill_close_order, ["no_close_position"] * 2, {"pos": "25", "markPx": "30000"}),
        (move_mark, ["no_close_position"], {"pos": "35", "markPx": "29000.5"}),
        (stop_keeping_position, ["no_close_position"], {"pos": "35"}),
        (set_stopping, ["stopping"], {"pos": "35"}),
        (remove, ["stopped", "stopped"], {"pos": "35"}),
    ],
)
async def test_every_change_is_pushed_on_both_channels_with_a_newer_u_time(
    sim: GridSimulator,
    account: SimAccount,
    ws: WS,
    change: Change,
    state: list[str],
    position: dict[str, str],
) -> None:
    initial: GridState = "running" if change is stop_keeping_position else "no_close_position"
    grid = sim.add_grid(account.user_id, state=initial)
    before = await subscribe_positions(ws, grid.algo_id)
    await send(ws, "subscribe", {"channel": ORDERS, "instType": "ANY", "algoId": grid.algo_id})
    await recv(ws)
    await recv(ws)
    await change(sim, account, grid.algo_id)
    pushes = [await recv(ws) for _ in range(2 * len(state))]
    await assert_nothing_queued(ws)
    positions = [p["data"][0] for p in pushes if p["arg"]["channel"] == POSITIONS]
    orders = [p["data"][0] for p in pushes if p["arg"]["channel"] == ORDERS]
    assert [o["state"] for o in orders] == state
    assert positions[-1].items() >= position.items()
    u_times = [int(r["uTime"]) for r in [before["data"][0], *positions]]
    assert u_times == sorted(set(u_times)), "uTime must grow with every change"


async def test_a_change_is_pushed_to_every_subscribed_connection_of_the_owner_only(
    sim: GridSimulator, account: SimAccount, grid: SimGrid, ws: WS
) -> None:
    other = sim.add_account()
    sim.add_grid(other.user_id)
    await subscribe_positions(ws, grid.algo_id)
    async with connect(sim) as second, connect(sim) as stranger:
        await login(second, account)
        await login(stranger, other)
        await subscribe_positions(second, grid.algo_id)
        await send(stranger, "subscribe", {"channel": ORDERS, "instType": "ANY"})
        await recv(stranger)
        await recv(stranger)
        sim.set_mark_price(grid.algo_id, 31000)
        assert (await recv(ws))["data"][0]["markPx"] == "31000"
        assert (await recv(second))["data"][0]["markPx"] == "31000"
        await assert_nothing_queued(stranger)


async def test_the_price_walk_pushes_every_tick() -> None:
    async with GridSimulator(seed=3, price_tick_interval=0.01) as sim:
        account = sim.add_account()
        grid = sim.add_grid(account.user_id)
        async with connect(sim) as ws:
            await login(ws, account)
            first = await subscribe_positions(ws, grid.algo_id)
            ticks = [(await recv(ws))["data"][0] for _ in range(3)]
    u_times = [int(r["uTime"]) for r in [first["data"][0], *ticks]]
    assert u_times == sorted(set(u_times))


# -- limits ----------------------------------------------------------------------------


def padded_subscribe(algo_id: str, size: int) -> str:
    """A subscribe message of exactly ``size`` bytes of UTF-8 (padding with a 2-byte letter)."""
    empty = json.dumps(
        {"op": "subscribe", "args": [{"channel": POSITIONS, "algoId": algo_id, "pad": ""}]}
    )
    missing = size - len(empty.encode())
    pad = "é" * (missing // 2) + "x" * (missing % 2)
    message = json.dumps(
        {"op": "subscribe", "args": [{"channel": POSITIONS, "algoId": algo_id, "pad": pad}]},
        ensure_ascii=False,
    )
    assert len(message.encode()) == size
    return message


async def test_a_message_over_64_kb_is_refused_whole_and_one_of_64_kb_is_taken(
    sim: GridSimulator, grid: SimGrid, ws: WS
) -> None:
    await ws.send_str(padded_subscribe(grid.algo_id, 65537))
    answer = await recv(ws)
    assert (answer["event"], answer["code"]) == ("error", "60012")
    assert answer["msg"].startswith("Invalid request: ")
    await assert_nothing_queued(ws)  # no ack, no snapshot
    await ws.send_str(padded_subscribe(grid.algo_id, 65536))
    assert (await recv(ws))["event"] == "subscribe"
    assert sim.ws_ops() == 2  # the refused one did not count


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[" * 60_000,  # deeper than json.loads can go
        '["login"]',
        '{"op":"trade","args":[{}]}',
        '{"op":"subscribe","args":[]}',
        '{"op":"subscribe","args":["grid-positions"]}',
        '{"op":"subscribe","id":"has space","args":[{"channel":"grid-positions"}]}',
        '{"op":"login","args":[{"apiKey":1}]}',
    ],
)
async def test_a_malformed_message_answers_60012(sim: GridSimulator, text: str) -> None:
    async with connect(sim) as ws:
        await ws.send_str(text)
        answer = await recv(ws)
        assert (answer["event"], answer["code"]) == ("error", "60012")
        await assert_nothing_queued(ws)
    assert sim.ws_ops() == 0


async def test_a_60012_never_echoes_what_was_sent(sim: GridSimulator, account: SimAccount) -> None:
    async with connect(sim) as ws:
        arg = login_arg(account)
        await send(ws, "login", arg, arg, req_id="x1")
        answer = await recv(ws)
    assert (answer["code"], answer["id"]) == ("60012", "x1")
    assert account.passphrase not in json.dumps(answer)
    assert arg["sign"] not in json.dumps(answer)


async def test_binary_frames_are_refused(ws: WS) -> None:
    await ws.send_bytes(b'{"op":"subscribe"}')
    assert (await recv(ws))["code"] == "60012"


async def test_ops_over_the_hourly_limit_answer_60014_until_the_hour_has_passed() -> None:
    clock = FakeClock()
    async with GridSimulator(clock=clock.monotonic, ws_ops_per_hour=3) as sim:
        user = sim.add_account()
        grid = sim.add_grid(user.user_id)
        arg = {"channel": POSITIONS, "algoId": grid.algo_id}
        async with connect(sim) as ws:
            conn_id = await login(ws, user)
            await send(ws, "unsubscribe", arg)
            await recv(ws)
            clock.advance(3599)
            await send(ws, "unsubscribe", arg)
            await recv(ws)
            await send(ws, "subscribe", arg, req_id="over")
            answer = await recv(ws)
            assert answer == {
                "id": "over", "event": "error", "code": "60014",
                "msg": "Requests too frequent.", "connId": conn_id,
            }  # fmt: skip
            assert sim.ws_ops(conn_id) == 3
            clock.advance(1)  # the login is an hour old
            await send(ws, "subscribe", arg)
            assert (await recv(ws))["event"] == "subscribe"
            async with connect(sim) as fresh:  # the limit is per connection
                await login(fresh, user)
        assert sim.ws_ops(conn_id) == 4
        assert sim.ws_ops() == 5
        assert sim.ws_ops("00000000") == 0


async def test_a_fourth_connection_in_a_second_from_one_ip_is_refused_with_http_429() -> None:
    clock = FakeClock()
    async with GridSimulator(clock=clock.monotonic) as sim, aiohttp.ClientSession() as session:
        sockets = [await session.ws_connect(sim.ws_url) for _ in range(3)]
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(sim.ws_url)
        assert refused.value.status == 429
        clock.advance(1.0)
        sockets.append(await session.ws_connect(sim.ws_url))
        assert (sim.ws_connects(), sim.ws_connection_refusals()) == (4, 1)
        assert sim.ws_connections() == 4
        for socket in sockets:
            await socket.close()
        await until(lambda: sim.ws_connections() == 0)


async def test_a_silent_connection_is_closed_with_4004() -> None:
    async with GridSimulator(ws_idle_timeout=0.1) as sim, connect(sim) as ws:
        started = time.monotonic()
        msg = await ws.receive(timeout=5)
        assert msg.type is aiohttp.WSMsgType.CLOSE
        assert (msg.data, msg.extra) == (4004, "No data received in 0.1s")
        assert time.monotonic() - started >= 0.09
        await until(lambda: sim.ws_connections() == 0)


async def test_pings_keep_a_connection_open() -> None:
    async with GridSimulator(ws_idle_timeout=0.2) as sim, connect(sim) as ws:
        for _ in range(5):  # 0.4 s in all: twice the idle timeout
            await asyncio.sleep(0.08)
            await assert_nothing_queued(ws)
        assert sim.ws_connections() == 1


def test_websocket_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="ws_idle_timeout"):
        GridSimulator(ws_idle_timeout=0)
    with pytest.raises(ValueError, match="ws_connect_rate"):
        GridSimulator(ws_connect_rate=0)
    with pytest.raises(ValueError, match="ws_ops_per_hour"):
        GridSimulator(ws_ops_per_hour=0)


# -- faults ----------------------------------------------------------------------------


async def test_drop_all_closes_every_connection_without_a_close_frame(
    sim: GridSimulator, account: SimAccount, ws: WS
) -> None:
    async with connect(sim) as second:
        sim.ws_drop_all()
        for socket in (ws, second):
            msg = await socket.receive(timeout=5)
            assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
            assert socket.close_code == aiohttp.WSCloseCode.ABNORMAL_CLOSURE
    await until(lambda: sim.ws_connections() == 0)
    async with connect(sim) as again:  # new connections are still served
        await login(again, account)


async def test_notice_upgrade_warns_every_connection_then_closes_it_with_1012(
    sim: GridSimulator, ws: WS
) -> None:
    sim.ws_notice_upgrade(close_after=0.05)
    notice = await recv(ws)
    assert notice | {"connId": ""} == {
        "event": "notice",
        "code": "64008",
        "msg": "The connection will soon be closed for a service upgrade. Please reconnect.",
        "connId": "",
    }
    msg = await ws.receive(timeout=5)
    assert (msg.type, msg.data) == (aiohttp.WSMsgType.CLOSE, 1012)


async def test_clear_faults_cancels_an_announced_close(sim: GridSimulator, ws: WS) -> None:
    sim.ws_notice_upgrade(close_after=0.05)
    await recv(ws)
    sim.ws_clear_faults()
    await asyncio.sleep(0.1)
    await assert_nothing_queued(ws)


async def test_refuse_login_refuses_count_logins_then_lets_them_through(
    sim: GridSimulator, account: SimAccount
) -> None:
    sim.ws_refuse_login(count=2)
    async with connect(sim) as ws:
        for _ in range(2):
            await send(ws, "login", login_arg(account))
            answer = await recv(ws)
            assert (answer["event"], answer["code"], answer["msg"]) == (
                "error", "60009", "Login failed.",
            )  # fmt: skip
        await login(ws, account)


async def test_refuse_login_without_count_refuses_until_cleared(
    sim: GridSimulator, account: SimAccount
) -> None:
    sim.ws_refuse_login("60032")
    async with connect(sim) as ws:
        for _ in range(3):
            await send(ws, "login", login_arg(account))
            assert (await recv(ws))["code"] == "60032"
        sim.ws_clear_faults()
        await login(ws, account)


@pytest.mark.parametrize(("code", "count"), [("6009", None), ("abcde", None), ("60009", 0)])
def test_refuse_login_checks_its_arguments(code: str, count: int | None) -> None:
    with pytest.raises(ValueError, match=r"code|count"):
        GridSimulator().ws_refuse_login(code, count)


async def test_protocol_pings_are_answered(sim: GridSimulator) -> None:
    async with connect(sim, autoping=False) as ws:
        await ws.ping(b"hi")
        msg = await ws.receive(timeout=5)
    assert (msg.type, msg.data) == (aiohttp.WSMsgType.PONG, b"hi")


async def test_a_muted_connection_answers_nothing_until_unmuted(
    sim: GridSimulator, account: SimAccount, grid: SimGrid
) -> None:
    async with connect(sim, autoping=False) as ws:
        await login(ws, account)
        await subscribe_positions(ws, grid.algo_id)
        pushes = sim.ws_pushes()
        sim.ws_mute_pong()
        await ws.send_str("ping")
        await ws.ping()  # a protocol-level ping is not answered either
        sim.set_mark_price(grid.algo_id, 30000)
        await send(ws, "unsubscribe", {"channel": POSITIONS, "algoId": grid.algo_id})
        with pytest.raises(TimeoutError):
            await ws.receive(timeout=0.2)
        assert sim.ws_pushes() == pushes
        sim.ws_mute_pong(False)
        await assert_nothing_queued(ws)  # what was muted is lost, not late
        await subscribe_positions(ws, grid.algo_id)  # the unsubscribe was done, unanswered
        sim.set_mark_price(grid.algo_id, 30001)
        assert (await recv(ws))["data"][0]["markPx"] == "30001"


# -- shutdown --------------------------------------------------------------------------


async def test_close_closes_every_connection_with_1001_and_leaves_no_task() -> None:
    before = asyncio.all_tasks()
    sim = GridSimulator(price_tick_interval=0.01)
    await sim.start()
    user = sim.add_account()
    grid = sim.add_grid(user.user_id)
    async with aiohttp.ClientSession() as session:
        reading = await session.ws_connect(sim.ws_url)
        silent = await session.ws_connect(sim.ws_url)  # never reads: the server must not wait
        await login(reading, user)
        await subscribe_positions(reading, grid.algo_id)
        sim.ws_notice_upgrade(close_after=60)
        closing = asyncio.create_task(sim.close())
        while (msg := await reading.receive(timeout=5)).type is aiohttp.WSMsgType.TEXT:
            pass
        assert (msg.type, msg.data) == (aiohttp.WSMsgType.CLOSE, 1001)
        await asyncio.wait_for(closing, timeout=5)
        assert sim.ws_connections() == 0
        await silent.close()
        await reading.close()
    assert asyncio.all_tasks() - before == set()
