"""The simulator over real HTTP, driven by plain aiohttp and an independent signer."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from yarl import URL

import okx_grid_async.simulator as simulator_pkg
from okx_grid_async._constants import (
    GRID_CANCEL_CLOSE_ORDER_PATH,
    GRID_CLOSE_POSITION_PATH,
    GRID_ORDERS_HISTORY_PATH,
    GRID_ORDERS_PENDING_PATH,
    GRID_POSITIONS_PATH,
    PUBLIC_TIME_PATH,
)
from okx_grid_async.simulator import (
    DEMO_API_KEY,
    DEMO_PASSPHRASE,
    DEMO_SECRET_KEY,
    DEMO_USER_ID,
    FaultKind,
    GridSimulator,
    SimAccount,
    SimGrid,
    max_in_window,
    serve_forever,
)

SEED_POSITION_FIELDS = {
    "adl", "algoClOrdId", "algoId", "avgPx", "cTime", "ccy", "imr", "instId", "instType",
    "last", "lever", "liqPx", "markPx", "mgnMode", "mgnRatio", "mmr", "notionalUsd", "pos",
    "posSide", "uTime", "upl", "uplRatio",
}  # fmt: skip
ALGO_ROW_FIELDS = {
    "algoId", "algoClOrdId", "instType", "instId", "algoOrdType", "state", "cTime", "uTime",
    "lever", "direction", "gridNum", "maxPx", "minPx", "investment", "totalPnl", "pnlRatio",
    "sz", "stopType", "tag",
}  # fmt: skip


# -- an independent signer and a tiny client -----------------------------------------


def okx_timestamp(offset_ms: int = 0) -> str:
    now = datetime.now(UTC) + timedelta(milliseconds=offset_ms)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def okx_sign(secret: str, prehash: str) -> str:
    mac = hmac.new(secret.encode(), prehash.encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def signed_headers(
    account: SimAccount, method: str, request_path: str, body: str, *, ts: str | None = None
) -> dict[str, str]:
    ts = okx_timestamp() if ts is None else ts
    return {
        "OK-ACCESS-KEY": account.api_key,
        "OK-ACCESS-SIGN": okx_sign(account.secret_key, ts + method + request_path + body),
        "OK-ACCESS-TIMESTAMP": ts,
        "OK-ACCESS-PASSPHRASE": account.passphrase,
        "Content-Type": "application/json",
    }


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def code(self) -> str:
        code: str = self.json()["code"]
        return code

    @property
    def data(self) -> list[dict[str, str]]:
        data: list[dict[str, str]] = self.json()["data"]
        return data


@dataclass
class Client:
    session: aiohttp.ClientSession
    sim: GridSimulator
    account: SimAccount

    def headers(
        self, method: str, request_path: str, body: str, *, ts: str | None = None
    ) -> dict[str, str]:
        return signed_headers(self.account, method, request_path, body, ts=ts)

    async def send(
        self,
        method: str,
        request_path: str,
        body: str = "",
        *,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Reply:
        """Send exactly ``request_path`` (raw query included) and ``body`` as signed."""
        url = URL(self.sim.url + request_path, encoded=True)
        hdrs = self.headers(method, request_path, body) if headers is None else headers
        client_timeout = aiohttp.ClientTimeout(total=timeout)
        async with self.session.request(
            method, url, data=body.encode() or None, headers=hdrs, timeout=client_timeout
        ) as resp:
            return Reply(resp.status, await resp.read(), resp.content_type)

    async def get(self, path: str, query: str = "", **kw: Any) -> Reply:
        return await self.send("GET", f"{path}?{query}" if query else path, **kw)

    async def post(self, path: str, payload: object, **kw: Any) -> Reply:
        return await self.send("POST", path, json.dumps(payload), **kw)

    async def positions(self, algo_id: str) -> Reply:
        return await self.get(GRID_POSITIONS_PATH, f"algoOrdType=contract_grid&algoId={algo_id}")

    async def close(
        self, algo_id: str, *, timeout: float | None = None, **payload: object
    ) -> Reply:
        body = {"algoId": algo_id, **payload}
        return await self.post(GRID_CLOSE_POSITION_PATH, body, timeout=timeout)


async def until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    """Poll ``condition`` every 5 ms until it holds; fail after ``timeout`` seconds."""
    for _ in range(int(timeout / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    pytest.fail("condition not met in time")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def sim() -> AsyncIterator[GridSimulator]:
    async with GridSimulator(seed=7) as simulator:
        yield simulator


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
def client(sim: GridSimulator, session: aiohttp.ClientSession) -> Client:
    return Client(session, sim, sim.add_account())


@pytest.fixture
def grid(sim: GridSimulator, client: Client) -> SimGrid:
    return sim.add_grid(client.account.user_id)


@pytest.fixture
def no_server_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    with caplog.at_level(logging.DEBUG, logger="aiohttp"):
        yield
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


# -- lifecycle, public time, routing ------------------------------------------------


def test_public_surface_is_sorted_and_complete() -> None:
    exported = simulator_pkg.__all__
    # ruff's RUF022 order: CONSTANTS, then Classes, then functions, each alphabetical.
    assert exported == sorted(exported, key=lambda n: (not n.isupper(), not n[0].isupper(), n))
    assert {n for n in dir(simulator_pkg) if not n.startswith("_")} >= set(exported)
    assert {"GridSimulator", "SimAccount", "SimGrid", "Arrival", "FaultKind"} <= set(exported)


async def test_lifecycle() -> None:
    sim = GridSimulator()
    with pytest.raises(RuntimeError, match="not started"):
        _ = sim.url
    await sim.start()
    assert sim.url.startswith("http://127.0.0.1:")
    assert sim.port > 0
    assert (sim.max_rate, sim.time_period) == (20, 2.0)
    with pytest.raises(RuntimeError, match="already started"):
        await sim.start()
    await sim.close()
    await sim.close()  # idempotent
    with pytest.raises(RuntimeError, match="cannot be started again"):
        await sim.start()


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="429 or 200"):
        GridSimulator(rate_limit_http_status=503)
    with pytest.raises(ValueError, match="price_tick_interval"):
        GridSimulator(price_tick_interval=0)


@pytest.mark.parametrize("offset_ms", [0, 60_000, -45_000])
async def test_public_time_includes_clock_offset(
    session: aiohttp.ClientSession, offset_ms: int
) -> None:
    async with GridSimulator(clock_offset_ms=offset_ms) as sim:
        async with session.get(sim.url + PUBLIC_TIME_PATH) as resp:
            assert resp.status == 200
            payload = await resp.json()
        assert payload["code"] == "0"
        assert payload["msg"] == ""
        ts = int(payload["data"][0]["ts"])
        assert abs(ts - (time.time() * 1000 + offset_ms)) < 1000
        assert sim.arrivals() == []  # public: not an arrival at a private endpoint


async def test_unknown_path_and_wrong_method(client: Client) -> None:
    missing = await client.get("/api/v5/nothing/here")
    assert (missing.status, missing.code) == (404, "404")
    wrong = await client.send("GET", GRID_CLOSE_POSITION_PATH)
    assert (wrong.status, wrong.code) == (405, "405")
    assert client.sim.arrivals() == []


# -- authentication ------------------------------------------------------------------


async def test_good_signature_answers_the_seed_fields(client: Client, grid: SimGrid) -> None:
    reply = await client.positions(grid.algo_id)
    assert reply.status == 200
    assert reply.json()["msg"] == ""
    assert reply.code == "0"
    (row,) = reply.data
    assert set(row) == SEED_POSITION_FIELDS
    assert all(isinstance(v, str) for v in row.values())
    assert row["algoId"] == grid.algo_id
    assert (row["pos"], row["avgPx"], row["markPx"], row["lever"]) == (
        "35",
        "29215.01",
        "29213.9",
        "5",
    )
    assert Decimal(row["upl"]) == (Decimal("29213.9") - Decimal("29215.01")) * 35 * Decimal("0.01")


async def test_signature_covers_the_raw_query_exactly_as_sent(
    client: Client, grid: SimGrid
) -> None:
    raw = f"algoId={grid.algo_id}&algoOrdType=contract%5Fgrid"  # escaped, in this order
    assert (await client.get(GRID_POSITIONS_PATH, raw)).code == "0"
    decoded = f"{GRID_POSITIONS_PATH}?algoId={grid.algo_id}&algoOrdType=contract_grid"
    headers = client.headers("GET", decoded, "")
    reply = await client.get(GRID_POSITIONS_PATH, raw, headers=headers)
    assert (reply.status, reply.code) == (401, "50113")
    (recorded,) = [
        r
        for r in client.sim.requests
        if r.headers.get("OK-ACCESS-SIGN") == headers["OK-ACCESS-SIGN"]
    ]
    assert recorded.query_string == raw


async def test_signature_covers_the_raw_body(client: Client, grid: SimGrid) -> None:
    body = '{ "algoId" : "%s", "mktClose" : true }' % grid.algo_id  # noqa: UP031 - odd spacing on purpose
    reply = await client.send("POST", GRID_CLOSE_POSITION_PATH, body)
    assert reply.code == "0"
    assert client.sim.requests[-1].body == body.encode()
    reserialised = json.dumps(json.loads(body))
    headers = client.headers("POST", GRID_CLOSE_POSITION_PATH, reserialised)
    other = client.sim.add_grid(client.account.user_id)
    body2 = body.replace(grid.algo_id, other.algo_id)
    reply = await client.send("POST", GRID_CLOSE_POSITION_PATH, body2, headers=headers)
    assert (reply.status, reply.code) == (401, "50113")
    assert client.sim.close_calls(other.algo_id) == 0


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("OK-ACCESS-KEY", "50103"),
        ("OK-ACCESS-PASSPHRASE", "50104"),
        ("OK-ACCESS-SIGN", "50106"),
        ("OK-ACCESS-TIMESTAMP", "50107"),
    ],
)
async def test_missing_header(client: Client, grid: SimGrid, header: str, code: str) -> None:
    path = f"{GRID_POSITIONS_PATH}?algoOrdType=contract_grid&algoId={grid.algo_id}"
    headers = client.headers("GET", path, "")
    del headers[header]
    reply = await client.send("GET", path, headers=headers)
    assert (reply.status, reply.code) == (401, code)
    (arrival,) = client.sim.arrivals()
    assert (arrival.user_id, arrival.http_status, arrival.code) == (None, 401, code)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"OK-ACCESS-KEY": "no-such-key"}, "50111"),
        ({"OK-ACCESS-PASSPHRASE": "wrong"}, "50105"),
        ({"OK-ACCESS-SIGN": "bm90IGEgc2lnbmF0dXJl"}, "50113"),
    ],
)
async def test_bad_credentials(
    client: Client, grid: SimGrid, change: dict[str, str], code: str
) -> None:
    path = f"{GRID_POSITIONS_PATH}?algoOrdType=contract_grid&algoId={grid.algo_id}"
    headers = {**client.headers("GET", path, ""), **change}
    reply = await client.send("GET", path, headers=headers)
    assert (reply.status, reply.code) == (401, code)


@pytest.mark.parametrize(
    "ts",
    [
        "1597026383085",
        "2020-12-08T09:08:57Z",
        "2020-12-08 09:08:57.715Z",
        "2020-12-08T09:08:57.715",
        "2020-13-08T09:08:57.715Z",
        "2020-12-08T09:08:57.715+00:00",
    ],
)
async def test_malformed_timestamp(client: Client, grid: SimGrid, ts: str) -> None:
    path = f"{GRID_POSITIONS_PATH}?algoOrdType=contract_grid&algoId={grid.algo_id}"
    reply = await client.send("GET", path, headers=client.headers("GET", path, "", ts=ts))
    assert (reply.status, reply.code) == (401, "50112")


@pytest.mark.parametrize(
    ("skew_ms", "code"), [(-31_000, "50102"), (31_000, "50102"), (-29_000, "0")]
)
async def test_timestamp_window(client: Client, grid: SimGrid, skew_ms: int, code: str) -> None:
    path = f"{GRID_POSITIONS_PATH}?algoOrdType=contract_grid&algoId={grid.algo_id}"
    headers = client.headers("GET", path, "", ts=okx_timestamp(skew_ms))
    assert (await client.send("GET", path, headers=headers)).code == code


async def test_timestamp_is_checked_against_the_offset_clock(client: Client, grid: SimGrid) -> None:
    client.sim.clock_offset_ms = 60_000
    path = f"{GRID_POSITIONS_PATH}?algoOrdType=contract_grid&algoId={grid.algo_id}"
    assert (await client.send("GET", path)).code == "50102"
    headers = client.headers("GET", path, "", ts=okx_timestamp(60_000))
    assert (await client.send("GET", path, headers=headers)).code == "0"


async def test_demo_header_is_accepted_and_recorded(client: Client, grid: SimGrid) -> None:
    path = f"{GRID_POSITIONS_PATH}?algoOrdType=contract_grid&algoId={grid.algo_id}"
    headers = {**client.headers("GET", path, ""), "x-simulated-trading": "1"}
    assert (await client.send("GET", path, headers=headers)).code == "0"
    assert (await client.send("GET", path)).code == "0"
    demo, live = client.sim.requests
    assert (demo.demo, live.demo) == (True, False)
    assert demo.method == "GET"
    assert demo.path == GRID_POSITIONS_PATH
    assert demo.headers["ok-access-key"] == client.account.api_key  # case-insensitive


# -- rate limits -----------------------------------------------------------------------


async def burst(client: Client, algo_id: str, n: int) -> list[Reply]:
    return list(await asyncio.gather(*(client.positions(algo_id) for _ in range(n))))


async def test_21st_request_in_a_window_is_rejected_with_429(client: Client, grid: SimGrid) -> None:
    replies = await burst(client, grid.algo_id, 21)
    assert sorted(r.code for r in replies) == ["0"] * 20 + ["50011"]
    (rejected,) = [r for r in replies if r.code == "50011"]
    assert rejected.status == 429
    assert rejected.json()["msg"] == "Too Many Requests"
    arrivals = client.sim.arrivals(path=GRID_POSITIONS_PATH)
    assert len(arrivals) == 21
    assert sorted(a.code for a in arrivals) == ["0"] * 20 + ["50011"]
    assert max_in_window([a.t for a in arrivals if a.code == "0"], 2.0) == 20


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def timed(
    clock: FakeClock, session: aiohttp.ClientSession
) -> AsyncIterator[tuple[Client, SimGrid]]:
    async with GridSimulator(max_rate=5, time_period=1.0, clock=clock) as sim:
        client = Client(session, sim, sim.add_account())
        yield client, sim.add_grid(client.account.user_id)


async def test_window_slides_and_rejections_use_no_budget(
    timed: tuple[Client, SimGrid], clock: FakeClock
) -> None:
    client, grid = timed
    assert [r.code for r in await burst(client, grid.algo_id, 5)] == ["0"] * 5
    clock.now += 0.9
    assert [r.code for r in await burst(client, grid.algo_id, 3)] == ["50011"] * 3
    clock.now += 0.1  # the first five leave the window; the rejected three never counted
    assert sorted(r.code for r in await burst(client, grid.algo_id, 6)) == ["0"] * 5 + ["50011"]


async def test_limits_are_per_user_and_path_and_shared_by_keys(
    timed: tuple[Client, SimGrid],
) -> None:
    client, grid = timed
    sim = client.sim
    second_key = Client(
        client.session,
        sim,
        sim.add_account("k2", client.account.secret_key, "pp2", client.account.user_id),
    )
    other_user = Client(client.session, sim, sim.add_account())
    other_grid = sim.add_grid(other_user.account.user_id)
    assert [r.code for r in await burst(client, grid.algo_id, 3)] == ["0"] * 3
    assert [r.code for r in await burst(second_key, grid.algo_id, 3)] == ["0", "0", "50011"]
    assert (await other_user.positions(other_grid.algo_id)).code == "0"
    pending = await client.get(GRID_ORDERS_PENDING_PATH, "algoOrdType=contract_grid")
    assert pending.code == "0"
    assert (await client.close(grid.algo_id, mktClose=True)).code == "0"
    assert len(sim.arrivals(user_id=client.account.user_id)) == 8
    assert len(sim.arrivals(user_id=other_user.account.user_id)) == 1


async def test_rate_limit_http_200_form(session: aiohttp.ClientSession) -> None:
    async with GridSimulator(max_rate=2, rate_limit_http_status=200) as sim:
        client = Client(session, sim, sim.add_account())
        grid = sim.add_grid(client.account.user_id)
        replies = await burst(client, grid.algo_id, 3)
    (rejected,) = [r for r in replies if r.code == "50011"]
    assert rejected.status == 200
    assert rejected.json()["msg"].startswith("Rate limit reached.")


async def test_enforce_limits_false_records_but_accepts(session: aiohttp.ClientSession) -> None:
    async with GridSimulator(max_rate=2, enforce_limits=False) as sim:
        client = Client(session, sim, sim.add_account())
        grid = sim.add_grid(client.account.user_id)
        assert {r.code for r in await burst(client, grid.algo_id, 6)} == {"0"}
        assert len(sim.arrivals()) == 6


async def test_arrivals_log_and_reset(client: Client, grid: SimGrid) -> None:
    await client.positions(grid.algo_id)
    await client.close(grid.algo_id, mktClose=True)
    await client.positions("1")
    arrivals = client.sim.arrivals()
    assert [(a.path, a.method, a.http_status, a.code) for a in arrivals] == [
        (GRID_POSITIONS_PATH, "GET", 200, "0"),
        (GRID_CLOSE_POSITION_PATH, "POST", 200, "0"),
        (GRID_POSITIONS_PATH, "GET", 200, "51293"),
    ]
    assert {a.user_id for a in arrivals} == {client.account.user_id}
    assert [a.t for a in arrivals] == sorted(a.t for a in arrivals)
    assert arrivals[0].t <= time.monotonic()
    assert len(client.sim.arrivals(path=GRID_CLOSE_POSITION_PATH)) == 1
    assert client.sim.arrivals(user_id="someone else") == []
    client.sim.reset_arrivals()
    assert client.sim.arrivals() == []


# -- close-position ----------------------------------------------------------------------


async def test_market_close_empties_and_stops(client: Client, grid: SimGrid) -> None:
    reply = await client.close(grid.algo_id, mktClose=True)
    assert reply.status == 200
    assert reply.data == [{"algoClOrdId": "", "algoId": grid.algo_id, "ordId": "", "tag": ""}]
    assert (grid.pos, grid.state) == (Decimal(0), "stopped")
    assert client.sim.close_calls(grid.algo_id) == 1
    (row,) = (await client.positions(grid.algo_id)).data
    assert row["pos"] == "0"
    assert row["liqPx"] == row["mgnRatio"] == row["upl"] == ""
    pending = await client.get(GRID_ORDERS_PENDING_PATH, "algoOrdType=contract_grid")
    history = await client.get(GRID_ORDERS_HISTORY_PATH, "algoOrdType=contract_grid")
    assert pending.data == []
    assert [r["algoId"] for r in history.data] == [grid.algo_id]
    assert (await client.close(grid.algo_id, mktClose=True)).code == "51059"
    assert client.sim.close_calls(grid.algo_id) == 1


async def test_partial_close_places_an_order_that_fills_on_mark_cross(
    client: Client, grid: SimGrid
) -> None:
    reply = await client.close(grid.algo_id, mktClose=False, sz="10", px="29300")
    (row,) = reply.data
    assert row["ordId"].isdigit()
    assert row["ordId"] != grid.algo_id
    assert grid.pos == 35
    client.sim.set_mark_price(grid.algo_id, "29299.9")
    assert grid.pos == 35
    client.sim.set_mark_price(grid.algo_id, Decimal("29300.5"))
    assert grid.pos == 25
    (position,) = (await client.positions(grid.algo_id)).data
    assert (position["pos"], position["markPx"]) == ("25", "29300.5")
    assert (await client.close(grid.algo_id, mktClose=False, sz="25", px="29000")).code == "0"
    assert (grid.pos, grid.state) == (Decimal(0), "stopped")  # already reached: filled at once
    assert client.sim.close_calls(grid.algo_id) == 2


async def test_short_partial_close_fills_when_mark_falls(client: Client) -> None:
    short = client.sim.add_grid(client.account.user_id, pos=-8, avg_px=100, mark_px=100)
    assert (await client.close(short.algo_id, mktClose=False, sz="3", px="95")).code == "0"
    client.sim.set_mark_price(short.algo_id, 96)
    assert short.pos == -8
    client.sim.set_mark_price(short.algo_id, 95)
    assert short.pos == -5


@pytest.mark.parametrize(
    ("grid_kw", "payload", "status", "code"),
    [
        ({}, {"algoId": "123456789012345678", "mktClose": True}, 200, "51293"),
        ({"state": "running"}, {"mktClose": True}, 200, "51059"),
        ({"state": "stopping"}, {"mktClose": True}, 200, "51288"),
        ({"pos": 0}, {"mktClose": True}, 200, "51058"),
        ({}, {"mktClose": False, "sz": "36", "px": "30000"}, 400, "51000"),
        ({}, {"mktClose": False, "sz": "-1", "px": "30000"}, 400, "51000"),
        ({}, {"mktClose": False, "sz": "ten", "px": "30000"}, 400, "51000"),
        ({}, {"mktClose": False, "sz": 10, "px": "30000"}, 400, "51000"),
        ({}, {"mktClose": False, "px": "30000"}, 400, "50014"),
        ({}, {"mktClose": False, "sz": "1"}, 400, "50014"),
        ({}, {"mktClose": "true"}, 400, "51000"),
        ({}, {}, 400, "50014"),
        ({}, {"algoId": "", "mktClose": True}, 400, "50014"),
    ],
)
async def test_close_errors(
    client: Client,
    grid_kw: dict[str, Any],
    payload: dict[str, object],
    status: int,
    code: str,
) -> None:
    target = client.sim.add_grid(client.account.user_id, **grid_kw)
    reply = await client.post(GRID_CLOSE_POSITION_PATH, {"algoId": target.algo_id, **payload})
    assert (reply.status, reply.code) == (status, code)
    assert reply.data == []
    assert client.sim.close_calls(target.algo_id) == 0


async def test_close_refuses_while_an_order_is_pending(client: Client, grid: SimGrid) -> None:
    assert (await client.close(grid.algo_id, mktClose=False, sz="1", px="40000")).code == "0"
    assert (await client.close(grid.algo_id, mktClose=True)).code == "51342"
    assert (await client.close(grid.algo_id, mktClose=False, sz="1", px="41000")).code == "51342"
    assert client.sim.close_calls(grid.algo_id) == 1


async def test_other_users_grid_does_not_exist_for_them(client: Client, grid: SimGrid) -> None:
    intruder = Client(client.session, client.sim, client.sim.add_account())
    assert (await intruder.close(grid.algo_id, mktClose=True)).code == "51293"
    assert (await intruder.positions(grid.algo_id)).code == "51293"
    assert grid.pos == 35


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        ("", "application/json", "50000"),
        ("{not json", "application/json", "50002"),
        ("[1, 2]", "application/json", "50002"),
        ('{"algoId": "1", "mktClose": true}', "text/plain", "50006"),
    ],
)
async def test_malformed_post_bodies(
    client: Client, body: str, content_type: str, code: str
) -> None:
    headers = {
        **client.headers("POST", GRID_CLOSE_POSITION_PATH, body),
        "Content-Type": content_type,
    }
    reply = await client.send("POST", GRID_CLOSE_POSITION_PATH, body, headers=headers)
    assert (reply.status, reply.code) == (400, code)


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("algoId=1", "50014"),
        ("algoOrdType=contract_grid", "50014"),
        ("algoOrdType=contract_grid&algoId=", "50014"),
        ("algoOrdType=grid&algoId=1", "51000"),
        ("algoOrdType=contract_grid&algoId=1", "51293"),
    ],
)
async def test_positions_parameter_errors(client: Client, query: str, code: str) -> None:
    assert (await client.get(GRID_POSITIONS_PATH, query)).code == code


# -- listing and cancel-close-order ------------------------------------------------------


async def test_orders_algo_pending_pagination(client: Client) -> None:
    sim, user = client.sim, client.account.user_id
    ids = [
        sim.add_grid(user, state="running" if i % 2 else "no_close_position").algo_id
        for i in range(7)
    ]
    sim.add_grid(user, state="stopped", pos=0)
    sim.add_grid(sim.add_account().user_id)
    newest = sorted(ids, key=int, reverse=True)

    async def page(query: str) -> list[str]:
        reply = await client.get(GRID_ORDERS_PENDING_PATH, "algoOrdType=contract_grid" + query)
        assert reply.code == "0", reply.json()
        return [row["algoId"] for row in reply.data]

    assert await page("") == newest
    assert await page("&limit=3") == newest[:3]
    assert await page(f"&limit=3&after={newest[2]}") == newest[3:6]
    assert await page(f"&limit=3&after={newest[5]}") == newest[6:]
    assert await page(f"&limit=3&before={newest[3]}") == newest[:3]
    assert await page(f"&algoId={newest[4]}") == [newest[4]]
    assert await page("&instId=ETH-USDT-SWAP") == []
    assert await page("&instType=SWAP") == newest
    reply = await client.get(GRID_ORDERS_PENDING_PATH, "algoOrdType=contract_grid&limit=1")
    (row,) = reply.data
    assert set(row) == ALGO_ROW_FIELDS
    assert row["algoOrdType"] == "contract_grid"
    assert row["state"] in {"running", "no_close_position"}
    assert row["stopType"] == ("" if row["state"] == "running" else "2")


@pytest.mark.parametrize(
    ("path", "query", "status", "code", "rows"),
    [
        (GRID_ORDERS_PENDING_PATH, "", 400, "50014", 0),
        (GRID_ORDERS_HISTORY_PATH, "limit=5", 400, "50014", 0),
        (GRID_ORDERS_PENDING_PATH, "algoOrdType=contract_grid&limit=0", 400, "51000", 0),
        (GRID_ORDERS_PENDING_PATH, "algoOrdType=contract_grid&limit=101", 400, "51000", 0),
        (GRID_ORDERS_PENDING_PATH, "algoOrdType=contract_grid&limit=x", 400, "51000", 0),
        (GRID_ORDERS_PENDING_PATH, "algoOrdType=contract_grid&after=abc", 400, "51000", 0),
        (GRID_ORDERS_PENDING_PATH, "algoOrdType=futures", 400, "51000", 0),
        (GRID_ORDERS_PENDING_PATH, "algoOrdType=grid", 200, "0", 0),
        (GRID_ORDERS_PENDING_PATH, "algoOrdType=contract_grid&limit=100", 200, "0", 1),
        (GRID_ORDERS_HISTORY_PATH, "algoOrdType=contract_grid", 200, "0", 0),
    ],
)
async def test_listing_parameters(
    client: Client, grid: SimGrid, path: str, query: str, status: int, code: str, rows: int
) -> None:
    reply = await client.get(path, query)
    assert (reply.status, reply.code, len(reply.data)) == (status, code, rows)


async def test_cancel_close_order(client: Client, grid: SimGrid) -> None:
    (placed,) = (await client.close(grid.algo_id, mktClose=False, sz="5", px="40000")).data
    ord_id = placed["ordId"]
    payload = {"algoId": grid.algo_id, "ordId": ord_id}
    reply = await client.post(GRID_CANCEL_CLOSE_ORDER_PATH, payload)
    assert reply.code == "0"
    assert reply.data == [{"algoClOrdId": "", "algoId": grid.algo_id, "ordId": ord_id, "tag": ""}]
    client.sim.set_mark_price(grid.algo_id, 50000)
    assert grid.pos == 35  # canceled: never fills
    again = await client.post(GRID_CANCEL_CLOSE_ORDER_PATH, payload)
    assert (again.status, again.code) == (200, "51603")
    assert (await client.close(grid.algo_id, mktClose=True)).code == "0"  # no order in the way
    unknown = {"algoId": grid.algo_id, "ordId": "42"}
    assert (await client.post(GRID_CANCEL_CLOSE_ORDER_PATH, unknown)).code == "51603"
    missing = {"algoId": grid.algo_id}
    assert (await client.post(GRID_CANCEL_CLOSE_ORDER_PATH, missing)).code == "50014"
    foreign = {"algoId": "123", "ordId": ord_id}
    assert (await client.post(GRID_CANCEL_CLOSE_ORDER_PATH, foreign)).code == "51293"


async def test_filled_order_cannot_be_canceled(client: Client, grid: SimGrid) -> None:
    (placed,) = (await client.close(grid.algo_id, mktClose=False, sz="5", px="30000")).data
    client.sim.set_mark_price(grid.algo_id, 30000)
    payload = {"algoId": grid.algo_id, "ordId": placed["ordId"]}
    assert (await client.post(GRID_CANCEL_CLOSE_ORDER_PATH, payload)).code == "51603"
    assert grid.pos == 30


# -- faults ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "code", "executed"),
    [
        (FaultKind.HTTP_503, 503, "50001", False),
        (FaultKind.BUSY_50013, 429, "50013", False),
        (FaultKind.SYSTEM_ERROR_50026, 500, "50026", False),
        (FaultKind.RATE_LIMIT_50011, 429, "50011", False),
        (FaultKind.TIMEOUT_50004, 400, "50004", True),
        (FaultKind.LATENCY, 200, "0", True),
    ],
)
async def test_answering_faults(
    client: Client, grid: SimGrid, kind: FaultKind, status: int, code: str, executed: bool
) -> None:
    client.sim.inject_fault(kind, path=GRID_CLOSE_POSITION_PATH)
    reply = await client.close(grid.algo_id, mktClose=True)
    assert (reply.status, reply.code) == (status, code)
    assert client.sim.close_calls(grid.algo_id) == int(executed)
    assert (grid.pos == 0) is executed
    (arrival,) = client.sim.arrivals()
    assert (arrival.http_status, arrival.code) == (status, code)


async def test_html_500_fault(client: Client, grid: SimGrid) -> None:
    client.sim.inject_fault(FaultKind.HTTP_500_HTML)
    reply = await client.close(grid.algo_id, mktClose=True)
    assert (reply.status, reply.content_type) == (500, "text/html")
    assert reply.body.startswith(b"<html>")
    assert client.sim.close_calls(grid.algo_id) == 0
    assert client.sim.arrivals()[0].code == ""


async def test_malformed_json_fault_executes(client: Client, grid: SimGrid) -> None:
    client.sim.inject_fault(FaultKind.MALFORMED_JSON)
    reply = await client.close(grid.algo_id, mktClose=True)
    assert (reply.status, reply.content_type) == (200, "application/json")
    with pytest.raises(json.JSONDecodeError):
        reply.json()
    assert reply.body.startswith(b'{"code":"0"')
    assert client.sim.close_calls(grid.algo_id) == 1


@pytest.mark.parametrize(
    ("kind", "executed"), [(FaultKind.DROP_CONNECTION, False), (FaultKind.APPLY_THEN_DROP, True)]
)
@pytest.mark.usefixtures("no_server_errors")
async def test_dropping_faults(
    client: Client, grid: SimGrid, kind: FaultKind, executed: bool
) -> None:
    client.sim.inject_fault(kind)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await client.close(grid.algo_id, mktClose=True)
    assert client.sim.close_calls(grid.algo_id) == int(executed)
    (arrival,) = client.sim.arrivals()
    assert (arrival.http_status, arrival.code) == (0, "")
    assert (await client.positions(grid.algo_id)).code == "0"  # the server carries on


@pytest.mark.usefixtures("no_server_errors")
async def test_apply_then_hang_until_the_client_gives_up(client: Client, grid: SimGrid) -> None:
    client.sim.inject_fault(FaultKind.APPLY_THEN_HANG)
    with pytest.raises(asyncio.TimeoutError):
        await client.close(grid.algo_id, mktClose=True, timeout=0.1)
    assert client.sim.close_calls(grid.algo_id) == 1
    assert [(a.http_status, a.code) for a in client.sim.arrivals()] == [(0, "")]


@pytest.mark.usefixtures("no_server_errors")
async def test_close_releases_hanging_and_delayed_requests(
    session: aiohttp.ClientSession,
) -> None:
    sim = GridSimulator()
    await sim.start()
    client = Client(session, sim, sim.add_account())
    hung, delayed = sim.add_grid(client.account.user_id), sim.add_grid(client.account.user_id)
    sim.inject_fault(FaultKind.APPLY_THEN_HANG, count=1)
    sim.inject_fault(FaultKind.LATENCY, count=1, delay=30.0)
    tasks = [
        asyncio.create_task(client.close(hung.algo_id, mktClose=True)),
        asyncio.create_task(client.close(delayed.algo_id, mktClose=True)),
    ]
    await until(lambda: len(sim.requests) == 2)
    started = time.monotonic()
    await sim.close()
    assert time.monotonic() - started < 0.5
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, aiohttp.ClientError) for r in results), results
    assert (sim.close_calls(hung.algo_id), sim.close_calls(delayed.algo_id)) == (1, 0)


async def test_latency_fault_delays(client: Client, grid: SimGrid) -> None:
    client.sim.inject_fault(FaultKind.LATENCY, delay=0.15)
    started = time.monotonic()
    assert (await client.positions(grid.algo_id)).code == "0"
    assert time.monotonic() - started >= 0.15
    started = time.monotonic()
    await client.positions(grid.algo_id)
    assert time.monotonic() - started < 0.15  # used up


async def test_fault_count_path_and_clear(client: Client, grid: SimGrid) -> None:
    sim = client.sim
    sim.inject_fault(FaultKind.HTTP_503, path=GRID_POSITIONS_PATH, count=2)
    assert (await client.close(grid.algo_id, mktClose=False, sz="1", px="99999")).code == "0"
    assert [(await client.positions(grid.algo_id)).code for _ in range(3)] == [
        "50001",
        "50001",
        "0",
    ]
    sim.inject_fault(FaultKind.BUSY_50013, count=5)
    assert (await client.positions(grid.algo_id)).code == "50013"
    sim.clear_faults()
    assert (await client.positions(grid.algo_id)).code == "0"


async def test_faults_skip_unauthenticated_and_rate_limited_requests(
    session: aiohttp.ClientSession,
) -> None:
    async with GridSimulator(max_rate=1) as sim:
        client = Client(session, sim, sim.add_account())
        grid = sim.add_grid(client.account.user_id)
        assert (await client.positions(grid.algo_id)).code == "0"  # budget used up
        sim.inject_fault(FaultKind.HTTP_503)
        path = f"{GRID_POSITIONS_PATH}?algoOrdType=contract_grid&algoId={grid.algo_id}"
        bad = {**client.headers("GET", path, ""), "OK-ACCESS-PASSPHRASE": "nope"}
        assert (await client.send("GET", path, headers=bad)).code == "50105"
        assert (await client.positions(grid.algo_id)).code == "50011"
        other = Client(session, sim, sim.add_account())
        other_grid = sim.add_grid(other.account.user_id)
        assert (await other.positions(other_grid.algo_id)).code == "50001"  # still waiting


async def test_rate_limit_fault_uses_no_budget(session: aiohttp.ClientSession) -> None:
    async with GridSimulator(max_rate=1) as sim:
        client = Client(session, sim, sim.add_account())
        grid = sim.add_grid(client.account.user_id)
        sim.inject_fault(FaultKind.RATE_LIMIT_50011, count=2)
        assert [(await client.positions(grid.algo_id)).code for _ in range(4)] == [
            "50011",
            "50011",
            "0",
            "50011",
        ]


async def test_fault_on_the_public_time_path(client: Client) -> None:
    client.sim.inject_fault(FaultKind.HTTP_503)  # private paths only
    assert (await client.get(PUBLIC_TIME_PATH)).code == "0"
    client.sim.inject_fault(FaultKind.BUSY_50013, path=PUBLIC_TIME_PATH)
    assert (await client.get(PUBLIC_TIME_PATH)).code == "50013"
    assert (await client.get(PUBLIC_TIME_PATH)).code == "0"


# -- moving prices, serve_forever ----------------------------------------------------------


async def test_price_ticks_move_marks_and_stop_on_close(session: aiohttp.ClientSession) -> None:
    async with GridSimulator(seed=3, price_tick_interval=0.005) as sim:
        account = sim.add_account()
        grid = sim.add_grid(account.user_id)
        await until(lambda: grid.mark_px != Decimal("29213.9"))
    frozen = grid.mark_px
    await asyncio.sleep(0.02)
    assert grid.mark_px == frozen


@pytest.mark.usefixtures("no_server_errors")
async def test_serve_forever_prints_credentials_and_serves(
    session: aiohttp.ClientSession,
) -> None:
    out = io.StringIO()
    task = asyncio.create_task(serve_forever(0, grids=20, out=out, price_tick_interval=None))
    await until(lambda: "listening on" in out.getvalue())
    printed = out.getvalue()
    for value in (DEMO_API_KEY, DEMO_SECRET_KEY, DEMO_PASSPHRASE, DEMO_USER_ID):
        assert value in printed
    url = printed.split("listening on ")[1].split()[0]
    demo = SimAccount(DEMO_API_KEY, DEMO_SECRET_KEY, DEMO_PASSPHRASE, DEMO_USER_ID)
    request_path = f"{GRID_ORDERS_PENDING_PATH}?algoOrdType=contract_grid"
    headers = signed_headers(demo, "GET", request_path, "")
    async with session.get(URL(url + request_path, encoded=True), headers=headers) as resp:
        payload = await resp.json()
    assert payload["code"] == "0"
    assert len(payload["data"]) == 18  # two of the twenty are stopped (history)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
