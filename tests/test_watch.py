"""watch_positions and watch_grids against the simulator's business WebSocket, in real time.

Every fault is the simulator's own (a TCP drop, a muted pong, 64008, a refused login,
an idle close), so the client meets the protocol as OKX speaks it; intervals are
short (heartbeats of a fraction of a second) to keep each test within a few seconds.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint

from okx_grid_async import (
    Credentials,
    GridClient,
    GridNotFoundError,
    GridOrder,
    GridPosition,
    InvalidArgumentError,
    LocalRateLimiter,
    LoginRefusedError,
    WatchFailure,
    WatchStream,
)
from okx_grid_async._constants import GRID_ORDERS_PENDING_PATH, GRID_POSITIONS_PATH
from okx_grid_async.simulator import GridSimulator, SimAccount, SimGrid
from okx_grid_async.testing import fill_close_order, stop_grid_keeping_position

from .conftest import ClientFactory

pytestmark = pytest.mark.realtime

T = TypeVar("T")
# Short enough to test, long enough for a loaded 2-core machine.
BEAT, PONG = 0.3, 0.3


def client_of(sim: GridSimulator, account: SimAccount) -> GridClient:
    """A client of ``account`` on a simulator of the test's own."""
    creds = Credentials(account.api_key, account.secret_key, account.passphrase)
    return GridClient(
        creds, base_url=sim.url, user_id=account.user_id, rate_limiter=LocalRateLimiter()
    )


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``condition`` every 10 ms until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition not met in time")
        await asyncio.sleep(0.01)


async def next_item(stream: WatchStream[T], timeout: float = 5.0) -> T | WatchFailure:
    async with asyncio.timeout(timeout):
        return await anext(stream)


async def next_update(stream: WatchStream[T], timeout: float = 5.0) -> T:
    item = await next_item(stream, timeout)
    assert not isinstance(item, WatchFailure), item
    return item


async def update_where(
    stream: WatchStream[T], condition: Callable[[T], bool], timeout: float = 5.0
) -> T:
    """The first update that meets ``condition`` (earlier ones, price ticks say, skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            item = await anext(stream)
            if not isinstance(item, WatchFailure) and condition(item):
                return item


def ws_tasks() -> list[asyncio.Task[Any]]:
    """The tasks the streams started, still alive."""
    return [
        t
        for t in asyncio.all_tasks()
        if not t.done()
        and getattr(t.get_coro(), "__qualname__", "").startswith(("StreamCore.", "Connection."))
    ]


@pytest.fixture
def grid(sim: GridSimulator, account: SimAccount) -> SimGrid:
    return sim.add_grid(account.user_id, pos=Decimal(35), mark_px=Decimal("29213.9"))


# ---------------------------------------------------------------- a change, an update


async def test_the_client_finds_the_simulators_websocket(
    sim: GridSimulator, make_client: ClientFactory
) -> None:
    assert make_client().ws_url == sim.ws_url


async def test_each_kind_of_position_change_is_pushed(
    sim: GridSimulator, grid: SimGrid, make_client: ClientFactory
) -> None:
    async with make_client() as client, client.watch_positions([grid.algo_id]) as stream:
        first = await next_update(stream)
        assert isinstance(first, GridPosition)
        assert (first.algo_id, first.pos, first.mark_px) == (
            grid.algo_id,
            Decimal(35),
            Decimal("29213.9"),
        )
        assert first.p_time is not None

        sim.set_mark_price(grid.algo_id, "29300")  # a mark-price tick
        moved = await next_update(stream)
        assert moved.mark_px == Decimal("29300")
        assert moved.u_time is not None
        assert first.u_time is not None
        assert moved.u_time > first.u_time

        order = await client.close_position(grid.algo_id, mkt_close=False, sz="5", px="29500")
        placed = await next_update(stream)  # placing the close order is a change too
        assert placed.pos == 35
        fill_close_order(sim, grid.algo_id)  # a fill of the close order
        filled = await update_where(stream, lambda p: p.pos == 30)
        assert order.ord_id

        await client.close_position(grid.algo_id, mkt_close=True)  # a close
        closed = await update_where(stream, lambda p: p.pos == 0)
        assert closed.u_time is not None
        assert filled.u_time is not None
        assert closed.u_time >= filled.u_time
        assert stream.stats.resync_requests == 0


async def test_each_kind_of_state_change_is_pushed(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    running = sim.add_grid(account.user_id, state="running")
    other = sim.add_grid(account.user_id, inst_id="ETH-USDT-SWAP", state="running")
    async with make_client() as client, client.watch_grids("SWAP") as stream:
        snapshot = {(await next_update(stream)).algo_id for _ in range(2)}
        assert snapshot == {running.algo_id, other.algo_id}

        stop_grid_keeping_position(sim, running.algo_id)  # stopped, position kept
        stopped = await next_update(stream)
        assert isinstance(stopped, GridOrder)
        assert (stopped.algo_id, stopped.state) == (running.algo_id, "no_close_position")

        await client.close_position(running.algo_id, mkt_close=True)
        assert (await next_update(stream)).state == "stopped"

        sim.set_mark_price(other.algo_id, "2000")  # its PnL moves: pushed too
        assert (await next_update(stream)).algo_id == other.algo_id
        sim.remove_grid(other.algo_id)  # one last push, as it was
        assert (await next_update(stream)).algo_id == other.algo_id


async def test_the_grids_of_one_instrument_or_one_grid_only(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    btc = sim.add_grid(account.user_id)
    eth = sim.add_grid(account.user_id, inst_id="ETH-USDT-SWAP")
    async with (
        make_client() as client,
        client.watch_grids(inst_id="ETH-USDT-SWAP") as by_instrument,
        client.watch_grids(algo_id=btc.algo_id) as by_id,
    ):
        assert (await next_update(by_instrument)).algo_id == eth.algo_id
        assert (await next_update(by_id)).algo_id == btc.algo_id
        sim.set_mark_price(btc.algo_id, "30000")
        sim.set_mark_price(eth.algo_id, "2000")
        assert (await next_update(by_instrument)).algo_id == eth.algo_id
        assert (await next_update(by_id)).algo_id == btc.algo_id


async def test_the_price_walk_is_pushed() -> None:
    async with GridSimulator(seed=3, price_tick_interval=0.05) as sim:
        account = sim.add_account()
        ids = [sim.add_grid(account.user_id).algo_id for _ in range(3)]
        async with (
            client_of(sim, account) as client,
            client.watch_positions(ids) as stream,
        ):
            times: dict[str, list[object]] = {algo_id: [] for algo_id in ids}
            while min(len(t) for t in times.values()) < 4:
                update = await next_update(stream)
                times[update.algo_id].append(update.u_time)
        for seen in times.values():
            assert seen == sorted(seen)  # type: ignore[type-var]
            assert len(set(seen)) == len(seen)  # each a new version


# ---------------------------------------------------------------- inputs and item errors


async def test_an_unknown_grid_is_an_item_error_and_the_stream_goes_on(
    sim: GridSimulator, grid: SimGrid, make_client: ClientFactory
) -> None:
    stranger = sim.add_account()
    theirs = sim.add_grid(stranger.user_id)
    async with (
        make_client() as client,
        client.watch_positions(["123", grid.algo_id, theirs.algo_id, "12a", 7]) as stream,  # type: ignore[list-item]
    ):
        items: list[GridPosition | WatchFailure] = []
        for _ in range(5):
            item = await next_item(stream)
            items.append(item)
        failures = {i.algo_id: i.error for i in items if isinstance(i, WatchFailure)}
        assert set(failures) == {"123", theirs.algo_id, "12a", "7"}
        for algo_id in ("123", theirs.algo_id):
            assert isinstance(failures[algo_id], GridNotFoundError)
            assert failures[algo_id].code == "60018"  # type: ignore[attr-defined]
        assert isinstance(failures["12a"], InvalidArgumentError)
        assert isinstance(failures["7"], InvalidArgumentError)  # an int, not a str of digits
        assert stream.stats.watching == 1
        sim.set_mark_price(grid.algo_id, "30000")
        assert (await next_update(stream)).mark_px == Decimal("30000")


async def test_a_stream_of_unknown_grids_only_ends_once_they_are_reported(
    make_client: ClientFactory,
) -> None:
    async with make_client() as client, client.watch_positions(["123", "456"]) as stream:
        items = [item async for item in stream]
    assert sorted(i.algo_id for i in items if isinstance(i, WatchFailure)) == ["123", "456"]


async def test_ids_from_an_async_source_are_subscribed_as_they_come(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    sim.add_demo_grids(account.user_id, 250)  # pending ones: 3 pages of the listing
    async with make_client() as client:
        pending = [g.algo_id async for g in client.iter_grids()]
        async with client.watch_positions(client.iter_grids()) as stream:
            seen = {(await next_update(stream)).algo_id for _ in pending}
            assert seen == set(pending)
            assert stream.stats.watching == len(pending)
    # One login, and a subscribe message per page at most: batched, not one per grid.
    assert sim.ws_ops() <= 1 + 3


async def test_a_thousand_grids_are_subscribed_in_two_messages(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    ids = [sim.add_grid(account.user_id).algo_id for _ in range(1500)]
    async with make_client() as client, client.watch_positions(ids) as stream:
        seen = {(await next_update(stream)).algo_id for _ in ids}
        assert seen == set(ids)
    assert sim.ws_ops() == 1 + 2  # the login, then 1,500 grids in two messages of < 64 KB


async def test_a_failing_id_source_ends_the_stream_with_its_error(
    grid: SimGrid, make_client: ClientFactory
) -> None:
    async def ids() -> AsyncIterator[str]:
        yield grid.algo_id
        await asyncio.sleep(0.2)
        raise LookupError("discovery failed")

    async with make_client() as client, client.watch_positions(ids()) as stream:
        with pytest.raises(LookupError, match="discovery failed"):
            async for _ in stream:
                pass
        assert ws_tasks() == []


# ---------------------------------------------------------------- login


@pytest.mark.parametrize("code", ["60009", "60024"])
async def test_a_refused_login_raises_and_is_not_retried(
    sim: GridSimulator, grid: SimGrid, make_client: ClientFactory, code: str
) -> None:
    sim.ws_refuse_login(code)
    async with make_client() as client, client.watch_positions([grid.algo_id]) as stream:
        with pytest.raises(LoginRefusedError) as refused:
            await next_item(stream)
        assert refused.value.code == code
        await asyncio.sleep(0.5)  # time enough for a retry, were there one
        assert sim.ws_connects() == 1
        assert ws_tasks() == []


async def test_a_wrong_passphrase_is_a_refused_login(
    sim: GridSimulator, account: SimAccount, grid: SimGrid, make_client: ClientFactory
) -> None:
    wrong = Credentials(account.api_key, account.secret_key, "not-the-passphrase")
    async with make_client(credentials=wrong) as client:  # user_id given: no REST read
        with pytest.raises(LoginRefusedError, match="60024") as refused:
            await next_item(client.watch_positions([grid.algo_id]))
    assert "not-the-passphrase" not in str(refused.value)
    assert account.secret_key not in repr(refused.value)


async def test_a_login_timestamp_refused_once_measures_okx_clock_again(
    sim: GridSimulator, grid: SimGrid, make_client: ClientFactory
) -> None:
    async with make_client() as client:
        sim.clock_offset_ms = 45_000  # OKX's clock jumps after the client measured it
        async with client.watch_positions([grid.algo_id]) as stream:
            assert (await next_update(stream)).algo_id == grid.algo_id
            assert stream.stats.connects == 1
        assert sim.ws_connects() == 2  # refused 60006, measured again, logged in
        assert abs(client.clock_offset_ms - 45_000) < 1_000


# ---------------------------------------------------------------- staying connected


async def test_a_dropped_connection_is_replaced_resubscribed_and_resynced(
    sim: GridSimulator, grid: SimGrid, make_client: ClientFactory
) -> None:
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    async with (
        make_client(meter_provider=meters) as client,
        client.watch_positions([grid.algo_id]) as stream,
    ):
        await next_update(stream)
        sim.reset_arrivals()
        sim.ws_drop_all()  # TCP closed, no close frame
        sim.set_mark_price(grid.algo_id, "30100")  # while no connection is open
        seen = await update_where(stream, lambda p: p.mark_px == Decimal("30100"))
        assert seen.algo_id == grid.algo_id
        await until(lambda: len(sim.arrivals(path=GRID_POSITIONS_PATH)) == 1)
        assert sim.ws_connects() == 2
        assert sim.ws_connections() == 1
        stats = stream.stats
        assert (stats.connects, stats.reconnects, stats.resync_requests) == (2, 1, 1)
        sim.set_mark_price(grid.algo_id, "30200")  # subscribed again: pushed
        assert (await next_update(stream)).mark_px == Decimal("30200")
    assert _reconnects(reader) == {("grid-positions", "dropped"): 1}
    meters.shutdown()


async def test_watch_grids_resyncs_from_the_pending_listing(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    running = sim.add_grid(account.user_id, state="running")
    async with make_client() as client, client.watch_grids() as stream:
        assert (await next_update(stream)).state == "running"
        sim.reset_arrivals()
        sim.ws_drop_all()
        stop_grid_keeping_position(sim, running.algo_id)  # during the drop
        stopped = await update_where(stream, lambda g: g.state == "no_close_position")
        assert stopped.algo_id == running.algo_id
        await until(lambda: len(sim.arrivals(path=GRID_ORDERS_PENDING_PATH)) == 1)
        assert stream.stats.resync_requests == 1


async def test_a_silent_server_is_detected_and_replaced(
    sim: GridSimulator, grid: SimGrid, make_client: ClientFactory
) -> None:
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    async with (
        make_client(meter_provider=meters, timeout=2.0) as client,
        client.watch_positions([grid.algo_id], heartbeat=BEAT, pong_timeout=PONG) as stream,
    ):
        await next_update(stream)
        sim.ws_mute_pong()  # the socket stays open; nothing comes any more
        started = time.monotonic()
        await until(lambda: stream.stats.reconnects == 1)
        detected = time.monotonic() - started
        sim.ws_mute_pong(False)  # before the backoff's new connection logs in
        assert BEAT <= detected < BEAT + PONG + 1.0
        await until(lambda: stream.stats.connects == 2)
        sim.set_mark_price(grid.algo_id, "30300")
        await update_where(stream, lambda p: p.mark_px == Decimal("30300"))
    assert _reconnects(reader) == {("grid-positions", "pong_timeout"): 1}
    meters.shutdown()


async def test_the_heartbeat_keeps_an_idle_connection_open() -> None:
    async with GridSimulator(seed=7, ws_idle_timeout=0.6) as sim:
        account = sim.add_account()
        grid = sim.add_grid(account.user_id)
        async with (
            client_of(sim, account) as client,
            client.watch_positions([grid.algo_id], heartbeat=0.2, pong_timeout=0.3) as stream,
        ):
            await next_update(stream)
            await asyncio.sleep(1.5)  # 2.5 idle limits with nothing to push
            assert (sim.ws_connects(), stream.stats.reconnects) == (1, 0)


async def test_a_stream_that_only_receives_is_not_closed_for_silence() -> None:
    # The server counts the client's silence, pushes or not: the heartbeat speaks up.
    async with GridSimulator(seed=7, ws_idle_timeout=0.6, price_tick_interval=0.05) as sim:
        account = sim.add_account()
        grid = sim.add_grid(account.user_id)
        async with (
            client_of(sim, account) as client,
            client.watch_positions([grid.algo_id], heartbeat=0.2, pong_timeout=0.3) as stream,
        ):
            ended = time.monotonic() + 1.5
            while time.monotonic() < ended:
                await next_update(stream)
            assert (sim.ws_connects(), stream.stats.reconnects) == (1, 0)
            assert stream.stats.pushes > 10


async def test_an_idle_close_4004_is_followed_by_a_new_connection() -> None:
    async with GridSimulator(seed=7, ws_idle_timeout=0.3) as sim:
        account = sim.add_account()
        grid = sim.add_grid(account.user_id)
        async with (
            client_of(sim, account) as client,
            # A heartbeat longer than the server's idle limit: it closes with 4004.
            client.watch_positions([grid.algo_id], heartbeat=5.0) as stream,
        ):
            await next_update(stream)
            await until(lambda: stream.stats.reconnects >= 1 and stream.stats.connects >= 2)
            sim.set_mark_price(grid.algo_id, "30400")
            await update_where(stream, lambda p: p.mark_px == Decimal("30400"))


async def test_a_64008_notice_is_answered_by_a_new_connection_before_the_server_closes(
    sim: GridSimulator, grid: SimGrid, make_client: ClientFactory
) -> None:
    async with make_client() as client, client.watch_positions([grid.algo_id]) as stream:
        await next_update(stream)
        close_after = 3.0
        started = time.monotonic()
        sim.ws_notice_upgrade(close_after=close_after)
        await until(lambda: sim.ws_connects() == 2 and sim.ws_connections() == 1)
        assert time.monotonic() - started < close_after  # the old one closed by us, ahead
        sim.set_mark_price(grid.algo_id, "30500")
        assert (await next_update(stream)).mark_px == Decimal("30500")
        # Make-before-break: no gap, so no resync.
        assert (stream.stats.reconnects, stream.stats.resync_requests) == (1, 0)
        await asyncio.sleep(close_after - (time.monotonic() - started) + 0.3)
        assert sim.ws_connections() == 1  # the 1012 close had nothing left to close
        assert stream.stats.reconnects == 1


async def test_connections_of_every_stream_keep_within_3_a_second(
    sim: GridSimulator, grid: SimGrid, make_client: ClientFactory
) -> None:
    async with make_client() as client:
        streams = [client.watch_positions([grid.algo_id]) for _ in range(7)]
        for stream in streams:
            await stream.__aenter__()
        try:
            for stream in streams:
                await next_update(stream)
            sim.ws_drop_all()  # seven reconnects at once
            await until(lambda: sim.ws_connects() == 14, timeout=10.0)
        finally:
            for stream in streams:
                await stream.aclose()
    assert sim.ws_connection_refusals() == 0


# ---------------------------------------------------------------- leaving no trace


async def test_leaving_the_block_closes_the_socket_and_every_task(
    sim: GridSimulator, grid: SimGrid, make_client: ClientFactory
) -> None:
    async with make_client() as client:
        async with client.watch_positions([grid.algo_id]) as stream:
            await next_update(stream)
            assert sim.ws_connections() == 1
            assert len(ws_tasks()) == 3  # the runner, the reader, the pinger
        assert ws_tasks() == []
        await until(lambda: sim.ws_connections() == 0)
        with pytest.raises(StopAsyncIteration):
            await next_item(stream)


async def test_cancelling_the_reading_task_closes_the_stream(
    sim: GridSimulator, grid: SimGrid, make_client: ClientFactory
) -> None:
    started = asyncio.Event()

    async def bot(client: GridClient) -> None:
        async with client.watch_positions([grid.algo_id]) as stream:
            async for _ in stream:
                started.set()

    async with make_client() as client:
        task = asyncio.create_task(bot(client))
        await asyncio.wait_for(started.wait(), 5)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert ws_tasks() == []
        await until(lambda: sim.ws_connections() == 0)


async def test_a_break_without_a_block_closes_the_stream_once_dropped(
    sim: GridSimulator, grid: SimGrid, make_client: ClientFactory
) -> None:
    async with make_client() as client:
        async for _ in client.watch_positions([grid.algo_id]):
            break
        gc.collect()
        await until(lambda: ws_tasks() == [] and sim.ws_connections() == 0)


async def test_closing_the_client_closes_its_streams(
    sim: GridSimulator, grid: SimGrid, make_client: ClientFactory
) -> None:
    client = make_client()
    await client.__aenter__()
    stream = client.watch_positions([grid.algo_id])
    await next_update(stream)

    async def read() -> object:
        return await next_item(stream, timeout=30.0)

    reading = asyncio.create_task(read())
    await asyncio.sleep(0.05)
    await client.aclose()
    with pytest.raises(RuntimeError, match="GridClient was closed"):
        await reading
    assert ws_tasks() == []
    await until(lambda: sim.ws_connections() == 0)
    with pytest.raises(RuntimeError, match="closed"):
        client.watch_positions([grid.algo_id])


async def test_a_stream_needs_an_open_client(grid: SimGrid, make_client: ClientFactory) -> None:
    stream = make_client().watch_positions([grid.algo_id])
    with pytest.raises(RuntimeError, match="not open"):
        await next_item(stream)


async def test_no_secret_in_logs_or_reprs(
    sim: GridSimulator,
    account: SimAccount,
    grid: SimGrid,
    make_client: ClientFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG):
        async with make_client() as client, client.watch_positions([grid.algo_id]) as stream:
            await next_update(stream)
            sim.ws_drop_all()
            await until(lambda: stream.stats.connects == 2)
            shown = repr(stream) + repr(client)
    text = caplog.text + shown
    assert "WebSocket" in caplog.text
    for secret in (account.secret_key, account.passphrase):
        assert secret not in text


def _reconnects(reader: InMemoryMetricReader) -> dict[tuple[str, str], int]:
    data = reader.get_metrics_data()
    assert data is not None
    counts: dict[tuple[str, str], int] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == "okx_grid.ws.reconnects":
                    for point in metric.data.data_points:
                        attributes = dict(point.attributes or {})
                        key = (
                            str(attributes["okx_grid.ws.channel"]),
                            str(attributes["okx_grid.ws.reason"]),
                        )
                        assert isinstance(point, NumberDataPoint)
                        counts[key] = int(point.value)
    return counts
