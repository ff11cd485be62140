"""GridClient end to end against the simulator: request shape, signing, decoding, validation."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any, get_args

import aiohttp
import pytest

from okx_grid_async import (
    EEA_URL,
    GLOBAL_URL,
    US_URL,
    AuthenticationError,
    ClosingOrderExistsError,
    Credentials,
    GridClient,
    GridEndpoint,
    GridNotFoundError,
    GridStateError,
    InvalidArgumentError,
    LocalRateLimiter,
    NoPositionError,
)
from okx_grid_async._constants import (
    GRID_CLOSE_POSITION_PATH,
    GRID_ENDPOINT_PATHS,
    GRID_POSITIONS_PATH,
)
from okx_grid_async.simulator import GridSimulator, SimAccount

from .conftest import ClientFactory


def _private(sim: GridSimulator) -> list[Any]:
    return [r for r in sim.requests if r.path != "/api/v5/public/time"]


async def test_get_positions_decodes_the_grid(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id, pos=Decimal(35), avg_px=Decimal("29215.0142857"))
    async with make_client() as client:
        (position,) = await client.get_positions(grid.algo_id)
    assert position.algo_id == grid.algo_id
    assert position.pos == Decimal(35)
    assert position.avg_px == Decimal("29215.0142857")
    assert position.inst_id == "BTC-USDT-SWAP"
    assert isinstance(position.mark_px, Decimal)
    assert position.c_time is not None
    assert position.c_time.utcoffset() is not None


async def test_get_request_shape_and_signature(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id)
    async with make_client() as client:
        await client.get_positions(grid.algo_id)
    (request,) = _private(sim)
    assert request.method == "GET"
    assert request.path == GRID_POSITIONS_PATH
    assert request.query_string == f"algoOrdType=contract_grid&algoId={grid.algo_id}"
    assert request.body == b""
    for header in (
        "OK-ACCESS-KEY",
        "OK-ACCESS-SIGN",
        "OK-ACCESS-TIMESTAMP",
        "OK-ACCESS-PASSPHRASE",
    ):
        assert request.headers.get(header)
    assert request.headers["OK-ACCESS-KEY"] == account.api_key
    assert request.headers["Content-Type"] == "application/json"
    assert not request.demo
    assert "x-simulated-trading" not in request.headers


async def test_demo_sends_the_simulated_trading_header(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id)
    async with make_client(demo=True) as client:
        await client.get_positions(grid.algo_id)
    (request,) = _private(sim)
    assert request.headers["x-simulated-trading"] == "1"


async def test_market_close_empties_the_position(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id)
    async with make_client() as client:
        result = await client.close_position(grid.algo_id, mkt_close=True)
        assert result.algo_id == grid.algo_id
        assert result.ord_id == ""
        (request,) = [r for r in _private(sim) if r.path == GRID_CLOSE_POSITION_PATH]
        assert request.method == "POST"
        assert request.query_string == ""
        assert request.body == f'{{"algoId":"{grid.algo_id}","mktClose":true}}'.encode()
        reconciled = await client.reconcile_close(grid.algo_id)
    assert reconciled.is_closed
    assert sim.close_calls(grid.algo_id) == 1


async def test_partial_close_places_an_order_that_can_be_cancelled(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id, pos=Decimal(10), mark_px=Decimal(29000))
    async with make_client() as client:
        result = await client.close_position(
            grid.algo_id, mkt_close=False, sz=Decimal("2"), px="29500.5"
        )
        assert result.ord_id.isdigit()
        body = json.loads(_private(sim)[-1].body)
        assert body == {"algoId": grid.algo_id, "mktClose": False, "sz": "2", "px": "29500.5"}
        with pytest.raises(ClosingOrderExistsError):
            await client.close_position(grid.algo_id, mkt_close=False, sz=1, px=29600)
        cancelled = await client.cancel_close_order(grid.algo_id, result.ord_id)
        assert cancelled.ord_id == result.ord_id
        # Cancelled: a new partial close is accepted again.
        again = await client.close_position(grid.algo_id, mkt_close=False, sz=1, px=29600)
        assert again.ord_id != result.ord_id


async def test_decimal_is_sent_without_exponent(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id, pos=Decimal(100))
    async with make_client() as client:
        await client.close_position(
            grid.algo_id, mkt_close=False, sz=Decimal("1E+1"), px=Decimal("2.95E+4")
        )
    body = json.loads(_private(sim)[-1].body)
    assert (body["sz"], body["px"]) == ("10", "29500")


@pytest.mark.parametrize(
    ("state", "pos", "error"),
    [("running", Decimal(5), GridStateError), ("no_close_position", Decimal(0), NoPositionError)],
)
async def test_grid_errors_are_typed(
    sim: GridSimulator,
    account: SimAccount,
    make_client: ClientFactory,
    state: Any,
    pos: Decimal,
    error: type[Exception],
) -> None:
    grid = sim.add_grid(account.user_id, state=state, pos=pos)
    async with make_client() as client:
        with pytest.raises(error):
            await client.close_position(grid.algo_id, mkt_close=True)


async def test_unknown_grid_is_grid_not_found(make_client: ClientFactory) -> None:
    async with make_client() as client:
        with pytest.raises(GridNotFoundError) as info:
            await client.get_positions("123456789")
    assert info.value.code == "51293"


async def test_clock_a_minute_off_still_works(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    sim.clock_offset_ms = 60_000
    grid = sim.add_grid(account.user_id)
    async with make_client() as client:
        assert client.clock_offset_ms == pytest.approx(60_000, abs=1_000)
        assert await client.get_positions(grid.algo_id)


async def test_resyncs_the_clock_on_50102_and_retries(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id)
    async with make_client() as client:
        sim.clock_offset_ms = -90_000  # OKX's clock jumps after we synced
        result = await client.close_position(grid.algo_id, mkt_close=True)
        assert result.algo_id == grid.algo_id
        assert client.clock_offset_ms == pytest.approx(-90_000, abs=1_000)
    codes = [a.code for a in sim.arrivals(path=GRID_CLOSE_POSITION_PATH)]
    assert codes == ["50102", "0"]
    assert sim.close_calls(grid.algo_id) == 1


async def test_wrong_secret_is_an_authentication_error_not_retried(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id)
    bad = Credentials(account.api_key, "not-the-secret", account.passphrase)
    async with make_client(credentials=bad) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.get_positions(grid.algo_id)
    assert info.value.code == "50113"
    assert info.value.http_status == 401
    assert len(_private(sim)) == 1
    assert "not-the-secret" not in str(info.value) + repr(info.value)


async def test_wrong_passphrase_is_50105(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    bad = Credentials(account.api_key, account.secret_key, "wrong")
    async with make_client(credentials=bad) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.get_positions("1")
    assert info.value.code == "50105"


GOOD = "448965992920907776"
BAD_CALLS: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("get_positions", {"algo_id": ""}, InvalidArgumentError, "algo_id"),
    ("get_positions", {"algo_id": "12a4"}, InvalidArgumentError, "algo_id"),
    ("get_positions", {"algo_id": "\uff11\uff12"}, InvalidArgumentError, "algo_id"),  # full-width
    ("get_positions", {"algo_id": " 123"}, InvalidArgumentError, "algo_id"),
    ("get_positions", {"algo_id": 448965992920907776}, TypeError, "algo_id"),
    ("get_positions", {"algo_id": None}, TypeError, "algo_id"),
    ("close_position", {"algo_id": "x", "mkt_close": True}, InvalidArgumentError, "algo_id"),
    ("close_position", {"algo_id": GOOD, "mkt_close": 1}, TypeError, "mkt_close"),
    ("close_position", {"algo_id": GOOD, "mkt_close": "true"}, TypeError, "mkt_close"),
    ("close_position", {"algo_id": GOOD, "mkt_close": False}, InvalidArgumentError, "sz and px"),
    ("close_position", {"algo_id": GOOD, "mkt_close": False, "sz": 1}, InvalidArgumentError, "px"),
    ("close_position", {"algo_id": GOOD, "mkt_close": False, "px": 1}, InvalidArgumentError, "sz"),
    (
        "close_position",
        {"algo_id": GOOD, "mkt_close": False, "sz": 2.0, "px": 1},
        TypeError,
        "float",
    ),
    (
        "close_position",
        {"algo_id": GOOD, "mkt_close": False, "sz": 1, "px": 29000.5},
        TypeError,
        "px",
    ),
    ("close_position", {"algo_id": GOOD, "mkt_close": False, "sz": True, "px": 1}, TypeError, "sz"),
    (
        "close_position",
        {"algo_id": GOOD, "mkt_close": False, "sz": "abc", "px": 1},
        InvalidArgumentError,
        "sz",
    ),
    (
        "close_position",
        {"algo_id": GOOD, "mkt_close": False, "sz": 0, "px": 1},
        InvalidArgumentError,
        "sz must be > 0",
    ),
    (
        "close_position",
        {"algo_id": GOOD, "mkt_close": False, "sz": "-1", "px": 1},
        InvalidArgumentError,
        "sz must be > 0",
    ),
    (
        "close_position",
        {"algo_id": GOOD, "mkt_close": False, "sz": 1, "px": Decimal("NaN")},
        InvalidArgumentError,
        "px must be finite",
    ),
    (
        "close_position",
        {"algo_id": GOOD, "mkt_close": False, "sz": 1, "px": "Infinity"},
        InvalidArgumentError,
        "px must be finite",
    ),
    (
        "close_position",
        {"algo_id": GOOD, "mkt_close": False, "sz": 1, "px": "1e1000000"},
        InvalidArgumentError,
        "px must be a decimal number written with ASCII digits",
    ),
    (
        "close_position",
        {"algo_id": GOOD, "mkt_close": False, "sz": "1_000", "px": 1},
        InvalidArgumentError,
        "sz must be a decimal number",
    ),
    (
        "close_position",
        {"algo_id": GOOD, "mkt_close": False, "sz": 1, "px": "\uff12\uff19\uff10\uff10\uff10"},
        InvalidArgumentError,
        "px must be a decimal number",
    ),
    (
        "close_position",
        {"algo_id": GOOD, "mkt_close": False, "sz": 1, "px": Decimal("1E+999999999")},
        InvalidArgumentError,
        "px must be < 1E\\+15",
    ),
    (
        "close_position",
        {"algo_id": GOOD, "mkt_close": True, "sz": 1},
        InvalidArgumentError,
        "mkt_close=True",
    ),
    ("cancel_close_order", {"algo_id": GOOD, "ord_id": ""}, InvalidArgumentError, "ord_id"),
    ("get_positions", {"algo_id": GOOD, "timeout": 0}, ValueError, "timeout"),
    ("get_positions", {"algo_id": GOOD, "timeout": math.inf}, ValueError, "timeout"),
    ("get_positions", {"algo_id": GOOD, "wait_timeout": 0}, ValueError, "wait_timeout"),
    (
        "close_position",
        {"algo_id": GOOD, "mkt_close": True, "wait_timeout": -1},
        ValueError,
        "wait",
    ),
]


@pytest.mark.parametrize(("method", "kwargs", "error", "match"), BAD_CALLS)
async def test_bad_arguments_are_refused_before_anything_is_sent(
    sim: GridSimulator,
    make_client: ClientFactory,
    method: str,
    kwargs: dict[str, Any],
    error: type[Exception],
    match: str,
) -> None:
    limiter = LocalRateLimiter()
    async with make_client(rate_limiter=limiter) as client:
        sim.clear_requests()
        with pytest.raises(error, match=match):
            await getattr(client, method)(**kwargs)
    assert sim.requests == []
    assert limiter.stats(client.user_id, GRID_POSITIONS_PATH).granted == 0
    assert limiter.stats(client.user_id, GRID_CLOSE_POSITION_PATH).granted == 0


def test_invalid_argument_error_is_a_value_error() -> None:
    assert issubclass(InvalidArgumentError, ValueError)


async def test_limiter_stats_names_each_grid_endpoint(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id)
    async with make_client() as client:
        await client.get_positions(grid.algo_id)
        await client.close_position(grid.algo_id, mkt_close=True)
        granted = {name: client.limiter_stats(name).granted for name in get_args(GridEndpoint)}
        assert client.limiter_stats() == client.limiter_stats("positions")
    assert granted == {
        "positions": 1,
        "close-position": 1,
        "cancel-close-order": 0,
        "orders-algo-pending": 0,
        "orders-algo-history": 0,
    }
    assert tuple(GRID_ENDPOINT_PATHS) == get_args(GridEndpoint)


@pytest.mark.parametrize(
    ("endpoint", "error", "match"),
    [
        (GRID_POSITIONS_PATH, InvalidArgumentError, "^endpoint must be one of 'positions', "),
        ("close_position", InvalidArgumentError, "not 'close_position'$"),
        ("", InvalidArgumentError, "not ''$"),
        (None, TypeError, "^endpoint must be a str, not NoneType$"),
    ],
)
def test_limiter_stats_refuses_anything_but_an_endpoint_name(
    endpoint: Any, error: type[Exception], match: str
) -> None:
    client = GridClient(Credentials("k", "s", "p"), user_id="1")
    with pytest.raises(error, match=match):
        client.limiter_stats(endpoint)


@pytest.mark.parametrize("setting", ["timeout", "connect_timeout"])
@pytest.mark.parametrize(
    "value",
    ["abc", "5", -1, 0, 0.0, -math.inf, math.nan, math.inf, True, None, 10**400],
    ids=lambda value: repr(value)[:20],
)
def test_timeout_settings_must_be_finite_seconds_above_zero(setting: str, value: Any) -> None:
    options = {setting: value}
    with pytest.raises(ValueError, match=f"^{setting} must be a finite number of seconds > 0"):
        GridClient(Credentials("k", "s", "p"), **options)


@pytest.mark.parametrize("setting", ["timeout", "connect_timeout"])
@pytest.mark.parametrize("value", [0.001, 1, 2.5, 10**6])
def test_timeout_settings_take_ints_and_floats(setting: str, value: float) -> None:
    options: dict[str, Any] = {setting: value}
    GridClient(Credentials("k", "s", "p"), **options)


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        (GLOBAL_URL, True),
        (US_URL, True),
        (EEA_URL, True),
        ("https://www.okx.com/", True),
        ("http://127.0.0.1:8000", True),
        ("http://localhost:8000", True),
        ("http://[::1]:8000", True),
        ("http://www.okx.com", False),
        ("http://10.0.0.5:8000", False),
        ("ftp://www.okx.com", False),
        ("https://www.okx.com/api/v5", False),
        ("https://user:pw@www.okx.com", False),
        ("www.okx.com", False),
    ],
)
def test_base_url_rules(url: str, ok: bool) -> None:
    creds = Credentials("k", "s", "p")
    if ok:
        assert GridClient(creds, base_url=url).base_url == url.rstrip("/")
    else:
        with pytest.raises(ValueError, match="base_url"):
            GridClient(creds, base_url=url)


async def test_borrowed_session_is_left_open(make_client: ClientFactory) -> None:
    async with aiohttp.ClientSession() as session:
        async with make_client(session=session):
            pass
        assert not session.closed


async def test_closed_client_cannot_be_reopened_or_used(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    client = make_client()
    async with client:
        pass
    with pytest.raises(RuntimeError, match="reopened"):
        await client.__aenter__()
    with pytest.raises(RuntimeError, match="not open"):
        await client.get_positions(sim.add_grid(account.user_id).algo_id)


async def test_client_repr_hides_secrets(account: SimAccount, make_client: ClientFactory) -> None:
    async with make_client() as client:
        text = repr(client) + str(client)
    assert account.secret_key not in text
    assert account.passphrase not in text
