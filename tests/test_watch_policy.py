"""The streams' policy without a socket: backoff, the operation budget, the heartbeat,
subscribe batching, staleness, the inbox, URLs and the login's signature.

Pure pieces take the time as numbers or a FakeClock; nothing here sleeps for real
except the backoff test, which lets the runner fail against a closed port.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
import pytest

from okx_grid_async import (
    Credentials,
    GridClient,
    GridNotFoundError,
    GridOrder,
    GridPosition,
    InvalidArgumentError,
    WatchFailure,
)
from okx_grid_async._constants import WS_MAX_MESSAGE_BYTES
from okx_grid_async._models import WirePosition, position_from_wire
from okx_grid_async._ws._inbox import Inbox, WatchStats
from okx_grid_async._ws._policy import (
    Backoff,
    Beat,
    Heartbeat,
    OpBudget,
    check_heartbeat,
    is_stale,
    subscribe_batches,
)
from okx_grid_async._ws._protocol import GRIDS, POSITIONS, arg_key
from okx_grid_async._ws._urls import default_ws_url, validate_ws_url
from okx_grid_async.simulator import GridSimulator, SimAccount
from okx_grid_async.testing import FakeClock

from .conftest import ClientFactory

T0 = datetime(2026, 1, 1, tzinfo=UTC)


# ---------------------------------------------------------------- backoff


def test_backoff_doubles_with_equal_jitter_up_to_its_cap() -> None:
    low = Backoff(lambda: 0.0, base=0.5, cap=30.0)
    high = Backoff(lambda: 0.999999, base=0.5, cap=30.0)
    steps = [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert [low.next_delay() for _ in steps] == [s / 2 for s in steps]
    assert [round(high.next_delay(), 4) for _ in steps] == [float(s) for s in steps]


def test_only_a_connection_that_lived_resets_the_backoff() -> None:
    backoff = Backoff(lambda: 0.0, base=1.0, cap=60.0, stable_after=30.0)
    assert [backoff.next_delay() for _ in range(3)] == [0.5, 1.0, 2.0]
    backoff.connection_ended(29.9)  # died young: the next wait keeps growing
    assert backoff.next_delay() == 4.0
    backoff.connection_ended(30.0)
    assert backoff.next_delay() == 0.5


# ---------------------------------------------------------------- operations per hour


def test_the_480th_operation_fits_and_the_481st_waits_for_the_first_to_age_out() -> None:
    budget = OpBudget()
    for i in range(480):
        assert budget.wait(1000.0 + i) == 0.0
        budget.spend(1000.0 + i)
    assert budget.wait(1500.0) == pytest.approx(1000.0 + 3600.0 - 1500.0)
    assert budget.wait(4600.0) == 0.0  # the first one is an hour old
    assert budget.spent == 479


# ---------------------------------------------------------------- heartbeat


def test_the_heartbeat_pings_after_silence_and_gives_up_without_an_answer() -> None:
    clock = FakeClock()
    beat = Heartbeat(interval=20.0, pong_timeout=5.0, now=clock.monotonic())
    assert beat.step(clock.monotonic()) == (Beat.WAIT, 20.0)
    clock.advance(12.0)
    beat.last_received = beat.last_sent = clock.monotonic()  # a subscribe and its ack
    assert beat.step(clock.monotonic()) == (Beat.WAIT, 20.0)
    clock.advance(20.0)
    assert beat.step(clock.monotonic()) == (Beat.PING, 0.0)
    beat.pinged(clock.monotonic())
    assert beat.step(clock.monotonic()) == (Beat.WAIT, 5.0)
    clock.advance(1.5)
    beat.last_received = clock.monotonic()  # pong
    assert beat.step(clock.monotonic()) == (Beat.WAIT, 18.5)  # 20 s after the ping
    clock.advance(18.5)
    assert beat.step(clock.monotonic())[0] is Beat.PING
    beat.pinged(clock.monotonic())
    clock.advance(4.9)
    action, wait = beat.step(clock.monotonic())
    assert action is Beat.WAIT
    assert wait == pytest.approx(0.1)
    clock.advance(0.1)
    assert beat.step(clock.monotonic()) == (Beat.DEAD, 0.0)


def test_a_connection_that_only_receives_still_pings() -> None:
    clock = FakeClock()
    beat = Heartbeat(interval=20.0, pong_timeout=5.0, now=clock.monotonic())
    for _ in range(19):  # a push every second: the server is alive, but we said nothing
        clock.advance(1.0)
        beat.last_received = clock.monotonic()
        assert beat.step(clock.monotonic())[0] is Beat.WAIT
    clock.advance(1.0)
    beat.last_received = clock.monotonic()
    assert beat.step(clock.monotonic()) == (Beat.PING, 0.0)
    beat.pinged(clock.monotonic())
    clock.advance(0.5)
    beat.last_received = clock.monotonic()  # the next push answers for the pong
    assert beat.step(clock.monotonic()) == (Beat.WAIT, 19.5)
    clock.advance(10.0)
    beat.last_sent = clock.monotonic()  # a subscription sent: silence starts again
    clock.advance(19.0)
    beat.last_received = clock.monotonic()
    assert beat.step(clock.monotonic()) == (Beat.WAIT, 1.0)


@pytest.mark.parametrize(
    ("heartbeat", "pong_timeout"),
    [(30.0, 5.0), (0, 5.0), (-1, 5.0), (math.nan, 5.0), (10.0, 0), (10.0, math.inf)],
)
def test_a_heartbeat_must_be_below_okx_idle_limit(heartbeat: float, pong_timeout: float) -> None:
    with pytest.raises(ValueError, match=r"heartbeat|pong_timeout"):
        check_heartbeat(heartbeat, pong_timeout)


def test_a_short_heartbeat_is_accepted() -> None:
    assert check_heartbeat(0.2, 0.1) == (0.2, 0.1)


# ---------------------------------------------------------------- batching


def _ids() -> Callable[[], str]:
    counter = iter(range(1, 10**6))
    return lambda: str(next(counter))


def test_a_thousand_grids_go_in_as_few_messages_of_64_kb_as_fit() -> None:
    args = [{"channel": "grid-positions", "algoId": str(10**17 + i)} for i in range(3000)]
    batches = list(subscribe_batches("subscribe", args, _ids()))
    sizes = [len(payload) for _, _, payload in batches]
    assert all(size <= WS_MAX_MESSAGE_BYTES for size in sizes)
    arg_bytes = len(msgspec.json.encode(args[0])) + 1
    assert len(batches) == math.ceil(3000 * arg_bytes / WS_MAX_MESSAGE_BYTES)
    sent = []
    for message_id, batch, payload in batches:
        message = json.loads(payload)
        assert message == {"id": message_id, "op": "subscribe", "args": batch}
        sent.extend(message["args"])
    assert sent == args
    # Full: one more argument would not have fitted in any but the last.
    assert all(size + arg_bytes > WS_MAX_MESSAGE_BYTES for size in sizes[:-1])


def test_an_argument_that_cannot_fit_a_message_is_refused() -> None:
    args = [{"channel": "grid-positions", "algoId": "1" * 200}]
    with pytest.raises(ValueError, match="cannot fit"):
        list(subscribe_batches("subscribe", args, _ids(), limit=100))


def test_no_arguments_no_message() -> None:
    assert list(subscribe_batches("subscribe", [], _ids())) == []


def test_an_argument_is_the_same_key_as_its_echo_with_uid() -> None:
    sent = {"channel": "grid-positions", "algoId": "7"}
    assert arg_key(sent) == arg_key({"algoId": "7", "uid": "44", "channel": "grid-positions"})


# ---------------------------------------------------------------- staleness and the inbox


def _position(u_ms: int | None, pos: str = "35", p_ms: int | None = None) -> GridPosition:
    row = {
        "algoId": "1",
        "posSide": "net",
        "pos": pos,
        "uTime": "" if u_ms is None else str(u_ms),
        "pTime": "" if p_ms is None else str(p_ms),
    }
    return position_from_wire(msgspec.convert(row, WirePosition))


@pytest.mark.parametrize(
    ("held", "new", "stale"),
    [
        ((2000, "35", 1), (1000, "35", 2), True),  # older
        ((1000, "35", 1), (2000, "35", 2), False),  # newer
        ((1000, "35", 1), (1000, "35", None), True),  # a REST read of the pushed version
        ((1000, "35", 1), (1000, "30", 2), False),  # same uTime, new content: news
        ((None, "35", 1), (None, "35", 2), True),
        ((None, "35", 1), (None, "0", 2), False),
    ],
)
def test_a_row_is_stale_unless_newer_or_different(
    held: tuple[int | None, str, int | None], new: tuple[int | None, str, int | None], stale: bool
) -> None:
    assert is_stale(_position(*held), _position(*new), POSITIONS.same) is stale


async def test_the_inbox_keeps_the_newest_version_of_each_grid_in_arrival_order() -> None:
    stats = WatchStats()
    inbox = Inbox(GRIDS, stats)

    def grid(algo_id: str, u_ms: int, state: str) -> GridOrder:
        return GridOrder(
            algo_id=algo_id, algo_cl_ord_id="", inst_type="SWAP", inst_id="BTC-USDT-SWAP",
            algo_ord_type="contract_grid", state=state, c_time=None,
            u_time=T0 + timedelta(milliseconds=u_ms), lever=Decimal(5), direction="long",
            grid_num=10, max_px=None, min_px=None, investment=None, total_pnl=None,
            pnl_ratio=None, sz=None, stop_type="", tag="",
        )  # fmt: skip

    inbox.offer(grid("1", 10, "running"))
    inbox.offer(grid("2", 10, "running"))
    inbox.offer(grid("1", 20, "no_close_position"))  # replaces the waiting version of 1
    inbox.offer(grid("2", 5, "stopped"))  # older than the one held: dropped
    inbox.offer(grid("2", 10, "running"))  # the same version again: dropped
    inbox.fail(WatchFailure("3", GridNotFoundError("60018", "no such grid", 101)))
    first, second, third = [await inbox.get() for _ in range(3)]
    assert isinstance(first, GridOrder)
    assert (first.algo_id, first.state) == ("1", "no_close_position")
    assert isinstance(second, GridOrder)
    assert (second.algo_id, second.state) == ("2", "running")
    assert isinstance(third, WatchFailure)
    assert third.algo_id == "3"
    assert (stats.conflated, stats.dropped, stats.updates) == (1, 2, 3)
    # Delivered versions still count: an older one after them is dropped.
    inbox.offer(grid("1", 15, "running"))
    waiter = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    assert not waiter.done()
    inbox.end(RuntimeError("over"))
    with pytest.raises(RuntimeError, match="over"):
        await waiter
    with pytest.raises(StopAsyncIteration):
        await inbox.get()


# ---------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    ("base_url", "demo", "ws_url"),
    [
        ("https://www.okx.com", False, "wss://ws.okx.com:8443/ws/v5/business"),
        ("https://www.okx.com", True, "wss://wspap.okx.com:8443/ws/v5/business"),
        ("https://openapi.okx.com", False, "wss://ws.okx.com:8443/ws/v5/business"),
        ("https://us.okx.com", False, "wss://wsus.okx.com:8443/ws/v5/business"),
        ("https://us.okx.com", True, "wss://wsuspap.okx.com:8443/ws/v5/business"),
        ("https://eea.okx.com", False, "wss://wseea.okx.com:8443/ws/v5/business"),
        ("https://eea.okx.com", True, "wss://wseeapap.okx.com:8443/ws/v5/business"),
        ("http://127.0.0.1:8123", False, "ws://127.0.0.1:8123/ws/v5/business"),
        ("http://localhost:8123", True, "ws://localhost:8123/ws/v5/business"),
        ("https://okx-proxy.example:9443", False, "wss://okx-proxy.example:9443/ws/v5/business"),
    ],
)
def test_the_websocket_follows_the_rest_host_and_demo(
    base_url: str, demo: bool, ws_url: str
) -> None:
    assert default_ws_url(base_url, demo) == ws_url
    client = GridClient(Credentials("k", "s", "p"), base_url=base_url, demo=demo)
    assert client.ws_url == ws_url


@pytest.mark.parametrize(
    "ws_url",
    ["ws://ws.okx.com:8443/ws/v5/business", "https://ws.okx.com", "wss://", "wss://u:p@host/x"],
)
def test_a_websocket_url_must_be_wss_or_loopback(ws_url: str) -> None:
    with pytest.raises(ValueError, match="ws_url"):
        validate_ws_url(ws_url)
    with pytest.raises(ValueError, match="ws_url"):
        GridClient(Credentials("k", "s", "p"), ws_url=ws_url)


def test_a_websocket_url_must_be_a_str() -> None:
    with pytest.raises(TypeError, match="ws_url"):
        GridClient(Credentials("k", "s", "p"), ws_url=5)  # type: ignore[arg-type]


def test_a_given_websocket_url_is_kept() -> None:
    url = "wss://wsaws.okx.com:8443/ws/v5/business"
    assert GridClient(Credentials("k", "s", "p"), ws_url=url).ws_url == url


def test_watch_arguments_are_checked_before_anything_runs() -> None:
    client = GridClient(Credentials("k", "s", "p"))
    with pytest.raises(InvalidArgumentError, match="inst_type"):
        client.watch_grids("SPOT")
    with pytest.raises(TypeError, match="inst_type"):
        client.watch_grids(5)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="inst_id"):
        client.watch_grids(inst_id="btc")
    with pytest.raises(InvalidArgumentError, match="algo_id"):
        client.watch_grids(algo_id="x1")
    with pytest.raises(ValueError, match="heartbeat"):
        client.watch_positions(["1"], heartbeat=45)


# ---------------------------------------------------------------- login, on OKX's clock


@pytest.mark.parametrize("offset_ms", [0, 40_000, -25_000])
async def test_the_login_is_signed_over_okx_time_in_seconds(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory, offset_ms: int
) -> None:
    sim.clock_offset_ms = offset_ms
    # A machine clock an hour off: only the measured offset makes the timestamp right.
    clock = FakeClock(wall=datetime.now(UTC).timestamp() - 3600.0)
    async with make_client(clock=clock) as client:
        args = client._transport.ws_login_args()
    assert set(args) == {"apiKey", "passphrase", "timestamp", "sign"}
    assert args["apiKey"] == account.api_key
    assert args["passphrase"] == account.passphrase
    assert args["timestamp"].isdigit()
    assert abs(int(args["timestamp"]) - sim.server_time_ms() / 1000) < 2
    prehash = f"{args['timestamp']}GET/users/self/verify".encode()
    digest = hmac.new(account.secret_key.encode(), prehash, hashlib.sha256).digest()
    assert args["sign"] == base64.b64encode(digest).decode()


# ---------------------------------------------------------------- backoff in the runner


async def test_failed_connections_back_off_on_the_injected_clock_and_jitter(
    sim: GridSimulator, make_client: ClientFactory, closed_port: int
) -> None:
    clock = FakeClock()
    async with make_client(
        clock=clock, ws_url=f"ws://127.0.0.1:{closed_port}/ws/v5/business"
    ) as client:
        client._streams.jitter = lambda: 0.0
        async with client.watch_positions(["1"]) as stream:
            for _ in range(200):  # real time: the process-wide limit paces 3 connects a second
                if len(clock.sleeps) >= 4:
                    break
                await asyncio.sleep(0.05)
            assert clock.sleeps[:4] == [0.25, 0.5, 1.0, 2.0]
            assert stream.stats.connects == 0


async def test_a_stream_has_one_reader_at_a_time() -> None:
    inbox = Inbox(GRIDS, WatchStats())
    first = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="one reader"):
        await inbox.get()
    inbox.end(RuntimeError("over"))
    with pytest.raises(RuntimeError, match="over"):
        await first
