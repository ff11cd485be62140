"""Numbers a client sends: only plain ASCII decimals are taken, and none yields an HTTP 500.

Python's ``Decimal()`` and ``int()`` accept far more than OKX's plain decimal
strings (exponents, ``NaN``, underscores, any Unicode digit) and can overflow or
raise on what they accept; the simulator refuses all of that with 51000.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from okx_grid_async._constants import (
    GRID_CLOSE_POSITION_PATH,
    GRID_ORDERS_HISTORY_PATH,
    GRID_ORDERS_PENDING_PATH,
)
from okx_grid_async.simulator import GridSimulator, SimGrid

from . import test_simulator as base
from .test_simulator import Client

# The tiny client's fixtures, shared with test_simulator.py (pytest finds fixtures by name).
client, session = base.client, base.session

REFUSED_NUMBERS = [
    pytest.param("1e999999999", id="huge-exponent"),
    pytest.param("1e1000000", id="overflowing-exponent"),
    pytest.param("1E3", id="small-exponent"),
    pytest.param("1_000", id="underscores"),
    pytest.param("\uff11\uff12", id="full-width-digits"),
    pytest.param("\u0661", id="arabic-indic-digit"),
    pytest.param("NaN", id="nan"),
    pytest.param("Infinity", id="infinity"),
    pytest.param("-1", id="negative"),
    pytest.param("+1", id="plus-sign"),
    pytest.param("0", id="zero"),
    pytest.param("0.000", id="zero-with-decimals"),
    pytest.param(".5", id="no-integer-part"),
    pytest.param("5.", id="no-fraction-digits"),
    pytest.param(" 5", id="leading-space"),
    pytest.param("0x10", id="hex"),
    pytest.param("1" * 31, id="31-digits"),
    pytest.param("9" * 1_000_000, id="one-megabyte"),
]


@pytest.fixture
def short(sim: GridSimulator, client: Client) -> SimGrid:
    return sim.add_grid(client.account.user_id, pos=-8, avg_px=100, mark_px=100)


@pytest.mark.parametrize("field", ["sz", "px"])
@pytest.mark.parametrize("text", REFUSED_NUMBERS)
async def test_close_refuses_anything_but_a_plain_positive_decimal(
    client: Client, short: SimGrid, field: str, text: str
) -> None:
    payload = {"algoId": short.algo_id, "mktClose": False, "sz": "1", "px": "99", field: text}
    reply = await client.post(GRID_CLOSE_POSITION_PATH, payload)
    assert (reply.status, reply.code) == (400, "51000")
    assert reply.json()["msg"] == f"Parameter {field} error"
    assert client.sim.close_calls(short.algo_id) == 0


@pytest.mark.parametrize(
    ("sz", "px"),
    [
        # 30 digits, the most taken, on BTC-USDT-SWAP's grid (lot 0.01, tick 0.1).
        ("7.5" + "0" * 28, "99"),
        ("1", "99." + "0" * 28),  # a short's order this high fills at once
        ("007.50", "99"),  # leading and trailing zeros are plain decimals too
    ],
)
async def test_close_takes_plain_decimals_up_to_30_digits(
    client: Client, short: SimGrid, sz: str, px: str
) -> None:
    reply = await client.close(short.algo_id, mktClose=False, sz=sz, px=px)
    assert (reply.status, reply.code) == (200, "0")
    assert client.sim.close_calls(short.algo_id) == 1
    assert (await client.positions(short.algo_id)).code == "0"
    assert short.pos == -8 + (Decimal(sz) if Decimal(px) >= short.mark_px else 0)


@pytest.mark.parametrize("path", [GRID_ORDERS_PENDING_PATH, GRID_ORDERS_HISTORY_PATH])
@pytest.mark.parametrize(
    "query",
    [
        pytest.param("after=%C2%B2", id="superscript-two"),  # isdigit() yes, int() no
        pytest.param("before=%EF%BC%91", id="full-width-one"),
        pytest.param("after=" + "1" * 5000, id="more-digits-than-int-converts"),
        pytest.param("after=1e5", id="exponent"),
        pytest.param("limit=%EF%BC%91", id="full-width-limit"),
        pytest.param("limit=" + "0" * 5000 + "1", id="long-limit"),
    ],
)
async def test_listing_cursors_and_limit_refuse_non_ascii_digits(
    client: Client, path: str, query: str
) -> None:
    reply = await client.get(path, "algoOrdType=contract_grid&" + query)
    assert (reply.status, reply.code) == (400, "51000")


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("1e1000000", "51000"),  # a JSON number: a float (inf), not OKX's string
        ("1" * 5000, "50002"),  # more digits than json.loads converts: not JSON to it
    ],
)
async def test_close_refuses_json_numbers_for_sz(
    client: Client, short: SimGrid, token: str, code: str
) -> None:
    body = f'{{"algoId":"{short.algo_id}","mktClose":false,"sz":{token},"px":"99"}}'
    reply = await client.send("POST", GRID_CLOSE_POSITION_PATH, body)
    assert (reply.status, reply.code) == (400, code)
