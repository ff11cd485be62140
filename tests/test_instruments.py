"""Instruments: decoding, rounding onto the grid, the cache and its pacing, get_instrument()."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from okx_grid_async import (
    Instrument,
    InvalidArgumentError,
    LocalRateLimiter,
    MalformedResponseError,
    OKXAPIError,
)
from okx_grid_async._constants import PUBLIC_INSTRUMENTS_PATH
from okx_grid_async._instruments import InstrumentCache, instrument_cache
from okx_grid_async._models import instrument_parser
from okx_grid_async._shared import PUBLIC_INSTRUMENTS_LIMITER
from okx_grid_async.simulator import GridSimulator, SimAccount
from okx_grid_async.testing import FakeClock

from .conftest import ClientFactory

BTC_ROW = {
    "alias": "", "baseCcy": "", "category": "1", "ctMult": "1", "ctType": "linear",
    "ctVal": "0.01", "ctValCcy": "BTC", "expTime": "", "instFamily": "BTC-USDT",
    "instId": "BTC-USDT-SWAP", "instType": "SWAP", "lever": "100",
    "listTime": "1606468572000", "lotSz": "0.01", "maxLmtSz": "100000000",
    "maxMktSz": "12000", "minSz": "0.01", "optType": "", "quoteCcy": "", "settleCcy": "USDT",
    "state": "live", "stk": "", "tickSz": "0.1", "uly": "BTC-USDT", "newFieldNextYear": "x",
}  # fmt: skip


def instrument(
    lot_sz: str = "0.01", min_sz: str = "0.01", tick_sz: str = "0.1", inst_id: str = "BTC-USDT-SWAP"
) -> Instrument:
    return Instrument(
        inst_type="SWAP",
        inst_id=inst_id,
        uly="BTC-USDT",
        inst_family="BTC-USDT",
        settle_ccy="USDT",
        ct_val=Decimal("0.01"),
        ct_mult=Decimal(1),
        ct_val_ccy="BTC",
        ct_type="linear",
        lot_sz=Decimal(lot_sz),
        min_sz=Decimal(min_sz),
        tick_sz=Decimal(tick_sz),
        max_lmt_sz=None,
        max_mkt_sz=None,
        lever=Decimal(100),
        state="live",
        list_time=None,
        exp_time=None,
    )


def answer(*rows: dict[str, str]) -> bytes:
    return json.dumps({"code": "0", "msg": "", "data": list(rows)}).encode()


def sent(sim: GridSimulator) -> list[str]:
    """The query strings of the instruments requests that reached the simulator."""
    return [r.query_string for r in sim.requests if r.path == PUBLIC_INSTRUMENTS_PATH]


@pytest.fixture(autouse=True)
def fresh_shared_cache() -> Iterator[None]:
    # The process-wide cache outlives a test; a new simulator may reuse an old port.
    instrument_cache(None).clear()
    yield
    instrument_cache(None).clear()


# ---------------------------------------------------------------- decoding


def test_a_row_decodes_to_decimals_and_times_ignoring_unknown_fields() -> None:
    (btc,) = instrument_parser.parse(answer(BTC_ROW), 200)
    assert (btc.inst_id, btc.inst_type, btc.uly, btc.inst_family) == (
        "BTC-USDT-SWAP",
        "SWAP",
        "BTC-USDT",
        "BTC-USDT",
    )
    assert (btc.ct_val, btc.lot_sz, btc.min_sz, btc.tick_sz) == (
        Decimal("0.01"),
        Decimal("0.01"),
        Decimal("0.01"),
        Decimal("0.1"),
    )
    assert (btc.ct_val_ccy, btc.settle_ccy, btc.ct_type, btc.state) == (
        "BTC",
        "USDT",
        "linear",
        "live",
    )
    assert btc.list_time == datetime(2020, 11, 27, 9, 16, 12, tzinfo=UTC)
    assert (btc.exp_time, btc.max_mkt_sz, btc.lever) == (None, Decimal(12000), Decimal(100))


def test_empty_numbers_are_none() -> None:
    row = {**BTC_ROW, "ctVal": "", "ctMult": "", "lever": "", "listTime": "", "maxLmtSz": ""}
    (btc,) = instrument_parser.parse(answer(row), 200)
    assert (btc.ct_val, btc.ct_mult, btc.lever, btc.list_time, btc.max_lmt_sz) == (None,) * 5


@pytest.mark.parametrize("field", ["lotSz", "minSz", "tickSz"])
@pytest.mark.parametrize("text", ["", "0", "-0.1", "abc", "NaN"])
def test_a_row_without_a_usable_grid_step_is_malformed(field: str, text: str) -> None:
    with pytest.raises(MalformedResponseError, match=field):
        instrument_parser.parse(answer({**BTC_ROW, field: text}), 200)


def test_anything_but_one_row_is_malformed() -> None:
    for rows in ((), (BTC_ROW, BTC_ROW)):
        with pytest.raises(MalformedResponseError, match="one row"):
            instrument_parser.parse(answer(*rows), 200)


# ---------------------------------------------------------------- rounding


@pytest.mark.parametrize(
    ("lot_sz", "min_sz", "sz", "expected"),
    [
        ("0.01", "0.01", "2.555", "2.55"),
        ("0.01", "0.01", "2.55", "2.55"),
        ("0.01", "0.01", "2.5", "2.5"),  # on the grid: unchanged, trailing zeros not added
        ("0.01", "0.01", "7", "7"),
        ("0.01", "0.01", "0.019", "0.01"),
        ("0.01", "0.01", Decimal("0.0199999"), "0.01"),
        ("0.01", "0.01", 35, "35"),
        ("1", "1", "1.9", "1"),
        ("1", "1", "100", "100"),
        ("0.1", "1", "1.25", "1.2"),
        ("5", "10", "24", "20"),
    ],
)
def test_round_size_rounds_down_onto_the_lot(
    lot_sz: str, min_sz: str, sz: Decimal | int | str, expected: str
) -> None:
    rounded = instrument(lot_sz=lot_sz, min_sz=min_sz).round_size(sz)
    assert rounded == Decimal(expected)
    assert str(rounded) == expected


@pytest.mark.parametrize(
    ("lot_sz", "min_sz", "sz"),
    [("0.01", "0.01", "0.009"), ("1", "1", "0.5"), ("0.1", "1", "0.99"), ("5", "10", "9")],
)
def test_round_size_refuses_what_rounds_below_the_minimum(
    lot_sz: str, min_sz: str, sz: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=rf"sz {sz} rounds down to .*minSz {min_sz}"):
        instrument(lot_sz=lot_sz, min_sz=min_sz).round_size(sz)


@pytest.mark.parametrize(
    ("tick_sz", "px", "side", "expected"),
    [
        # Closing a long is a sell: up, never cheaper than asked.
        ("0.1", "29999.99", "sell", "30000.0"),
        ("0.1", "29500.51", "sell", "29500.6"),
        ("0.1", "29500.5", "sell", "29500.5"),
        ("0.1", "29500", "sell", "29500"),
        ("0.01", "150.061", "sell", "150.07"),
        ("0.0001", "0.123456", "sell", "0.1235"),
        ("5", "12", "sell", "15"),
        ("0.1", "0.01", "sell", "0.1"),
        # Closing a short is a buy: down, never dearer than asked.
        ("0.1", "29999.99", "buy", "29999.9"),
        ("0.1", "29500.59", "buy", "29500.5"),
        ("0.1", "29500.5", "buy", "29500.5"),
        ("0.01", "150.068", "buy", "150.06"),
        ("0.0001", "0.123456", "buy", "0.1234"),
        ("5", "12", "buy", "10"),
    ],
)
def test_round_price_rounds_toward_safety(tick_sz: str, px: str, side: Any, expected: str) -> None:
    rounded = instrument(tick_sz=tick_sz).round_price(px, side=side)
    assert rounded == Decimal(expected)
    assert str(rounded) == expected


def test_round_price_refuses_a_buy_below_one_tick_and_a_bad_side() -> None:
    with pytest.raises(InvalidArgumentError, match=r"px 0.05 is below .*tickSz 0.1"):
        instrument(tick_sz="0.1").round_price("0.05", side="buy")
    with pytest.raises(ValueError, match="side"):
        instrument().round_price("1", side="long")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "error"),
    [(1.5, TypeError), (True, TypeError), (None, TypeError), ("0", InvalidArgumentError),
     ("-1", InvalidArgumentError), ("NaN", InvalidArgumentError), ("x", InvalidArgumentError)],
)  # fmt: skip
def test_rounding_validates_like_close_position(value: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        instrument().round_size(value)  # type: ignore[arg-type]
    with pytest.raises(error):
        instrument().round_price(value, side="sell")  # type: ignore[arg-type]


def test_a_value_too_large_to_divide_exactly_is_refused() -> None:
    # Within the bounds of a size, but 31 digits of lots: past the decimal context's 28.
    with pytest.raises(InvalidArgumentError, match="too large"):
        instrument(lot_sz="0.0000000000000001").round_size("999999999999999.12345678901234")


steps = st.sampled_from(["0.0001", "0.01", "0.1", "1", "5", "0.5"]).map(Decimal)
amounts = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(10**9), places=6)


@given(step=steps, value=amounts)
def test_rounding_stays_on_the_grid_and_on_the_safe_side(step: Decimal, value: Decimal) -> None:
    inst = instrument(lot_sz=str(step), min_sz=str(step), tick_sz=str(step))
    up = inst.round_price(value, side="sell")
    assert up % step == 0
    assert value <= up < value + step
    if value >= step:
        down = inst.round_price(value, side="buy")
        assert down % step == 0
        assert value - step < down <= value
        assert inst.round_size(value) == down


# ---------------------------------------------------------------- the cache


async def test_the_cache_keeps_an_instrument_for_its_ttl_then_reads_again() -> None:
    clock = FakeClock()
    cache = InstrumentCache(clock, ttl=3600.0)
    reads: list[str] = []

    async def read() -> Instrument:
        reads.append("read")
        return instrument()

    first = await cache.get("https://www.okx.com", "BTC-USDT-SWAP", read)
    clock.advance(3599.0)
    assert await cache.get("https://www.okx.com", "BTC-USDT-SWAP", read) is first
    assert len(reads) == 1
    await cache.get("https://us.okx.com", "BTC-USDT-SWAP", read)  # another host
    assert len(reads) == 2
    clock.advance(1.0)
    await cache.get("https://www.okx.com", "BTC-USDT-SWAP", read)
    assert len(reads) == 3


async def test_concurrent_calls_share_one_read_and_errors_are_not_kept() -> None:
    cache = InstrumentCache(FakeClock())
    reads = 0
    release = asyncio.Event()

    async def failing() -> Instrument:
        nonlocal reads
        reads += 1
        await release.wait()
        raise OKXAPIError("51001", "Instrument ID does not exist", 200)

    calls = [cache.get("u", "BTC-USDT-SWAP", failing) for _ in range(5)]
    gathered = asyncio.gather(*calls, return_exceptions=True)
    await asyncio.sleep(0)
    release.set()
    outcomes = await gathered
    assert reads == 1
    assert all(isinstance(o, OKXAPIError) and o.code == "51001" for o in outcomes)

    async def good() -> Instrument:
        nonlocal reads
        reads += 1
        return instrument()

    assert (await cache.get("u", "BTC-USDT-SWAP", good)).inst_id == "BTC-USDT-SWAP"
    assert reads == 2


async def test_a_cancelled_reader_hands_the_read_to_a_waiter() -> None:
    cache = InstrumentCache(FakeClock())
    started: list[str] = []
    hang = asyncio.Event()

    async def read() -> Instrument:
        started.append("read")
        if len(started) == 1:
            await hang.wait()  # never set: the first reader is cancelled here
        return instrument()

    first = asyncio.create_task(cache.get("u", "BTC-USDT-SWAP", read))
    await asyncio.sleep(0)
    second = asyncio.create_task(cache.get("u", "BTC-USDT-SWAP", read))
    await asyncio.sleep(0)
    first.cancel()
    assert (await second).inst_id == "BTC-USDT-SWAP"
    assert first.cancelled()
    assert started == ["read", "read"]


async def test_a_row_for_another_instrument_is_malformed() -> None:
    cache = InstrumentCache(FakeClock())

    async def read() -> Instrument:
        return instrument(inst_id="ETH-USDT-SWAP")

    with pytest.raises(MalformedResponseError, match="asked for instrument BTC-USDT-SWAP"):
        await cache.get("u", "BTC-USDT-SWAP", read)


def test_clients_on_the_system_clock_share_one_cache() -> None:
    assert instrument_cache(None) is instrument_cache(None)
    assert instrument_cache(FakeClock()) is not instrument_cache(None)


# ---------------------------------------------------------------- get_instrument()


async def test_get_instrument_reads_the_simulator_once(
    sim: GridSimulator, make_client: ClientFactory
) -> None:
    async with make_client() as client:
        btc = await client.get_instrument("BTC-USDT-SWAP")
        again = await client.get_instrument("BTC-USDT-SWAP")
    async with make_client() as other:
        shared = await other.get_instrument("BTC-USDT-SWAP")
    assert btc is again is shared
    assert (btc.lot_sz, btc.min_sz, btc.tick_sz, btc.ct_val) == (
        Decimal("0.01"),
        Decimal("0.01"),
        Decimal("0.1"),
        Decimal("0.01"),
    )
    assert sent(sim) == ["instType=SWAP&instId=BTC-USDT-SWAP"]
    assert sim.arrivals() == []  # public: no private budget used at the simulator


async def test_reads_are_paced_per_host_and_inst_type_not_by_the_users_budget(
    sim: GridSimulator, make_client: ClientFactory
) -> None:
    """OKX counts this endpoint per IP and instType: the process-wide limiter keyed so."""
    host_swaps = ("127.0.0.1 SWAP", PUBLIC_INSTRUMENTS_PATH)
    before = PUBLIC_INSTRUMENTS_LIMITER.stats(*host_swaps).granted
    limiter = LocalRateLimiter()
    async with make_client(rate_limiter=limiter) as client:
        await client.get_instrument("ETH-USDT-SWAP")
        await client.get_instrument("ETH-USDT-SWAP")  # kept: no second read
        assert limiter.stats(client.user_id, PUBLIC_INSTRUMENTS_PATH).granted == 0
    assert PUBLIC_INSTRUMENTS_LIMITER.stats(*host_swaps).granted == before + 1


async def test_concurrent_get_instrument_sends_one_request(
    sim: GridSimulator, make_client: ClientFactory
) -> None:
    async with make_client() as client:
        found = await asyncio.gather(*(client.get_instrument("SOL-USDT-SWAP") for _ in range(10)))
    assert {i.tick_sz for i in found} == {Decimal("0.01")}
    assert len(sent(sim)) == 1


async def test_the_inst_type_follows_the_id_unless_given(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    sim.add_grid(account.user_id, inst_id="ETH-USDT-250627")
    async with make_client() as client:
        future = await client.get_instrument("ETH-USDT-250627")
        with pytest.raises(OKXAPIError) as info:
            await client.get_instrument("SOL-USDT-SWAP", inst_type="FUTURES")
    assert (future.inst_type, future.tick_sz) == ("FUTURES", Decimal("0.01"))
    assert info.value.code == "51001"
    assert sent(sim) == [
        "instType=FUTURES&instId=ETH-USDT-250627",
        "instType=FUTURES&instId=SOL-USDT-SWAP",
    ]


async def test_an_unknown_instrument_is_an_api_error_and_not_kept(
    sim: GridSimulator, make_client: ClientFactory
) -> None:
    async with make_client() as client:
        for _ in range(2):
            with pytest.raises(OKXAPIError) as info:
                await client.get_instrument("NOPE-USDT-SWAP")
            assert info.value.code == "51001"
    assert len(sent(sim)) == 2


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"inst_id": 1}, TypeError, "inst_id"),
        ({"inst_id": ""}, InvalidArgumentError, "inst_id"),
        ({"inst_id": "btc-usdt-swap"}, InvalidArgumentError, "inst_id"),
        ({"inst_id": "BTC"}, InvalidArgumentError, "inst_id"),
        ({"inst_id": "BTC-USDT-SWAP&x=1"}, InvalidArgumentError, "inst_id"),
        ({"inst_id": "BTC-USDT-SWAP", "inst_type": "SPOT"}, InvalidArgumentError, "inst_type"),
        ({"inst_id": "BTC-USDT-SWAP", "inst_type": 1}, TypeError, "inst_type"),
        ({"inst_id": "BTC-USDT-SWAP", "timeout": 0}, ValueError, "timeout"),
    ],
)
async def test_bad_arguments_send_nothing(
    sim: GridSimulator,
    make_client: ClientFactory,
    kwargs: dict[str, Any],
    error: type[Exception],
    match: str,
) -> None:
    async with make_client() as client:
        with pytest.raises(error, match=match):
            await client.get_instrument(**kwargs)
    assert sent(sim) == []
