"""What a call signs and sends: its query string is urlencode's, built faster when it can be,
and its request line is built once for parameters that are all text."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from okx_grid_async._call import query_string, request_line

BASE = "http://127.0.0.1:8080"
PATH = "/api/v5/tradingBot/grid/positions"

# Text that urlencode leaves alone, and text with everything it quotes.
SAFE = st.text("abcXYZ019_.~-", max_size=8)
ANY = st.text(max_size=8)


@given(st.dictionaries(st.one_of(SAFE, ANY), st.one_of(SAFE, ANY, st.integers()), max_size=4))
def test_the_query_string_is_urlencode_s(params: dict[str, object]) -> None:
    assert query_string(params) == urlencode(params)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"algoOrdType": "contract_grid", "algoId": "500000000000000000"},
        {"a": "b&c=d"},  # one value that looks like two pairs
        {"a": "b&c"},
        {"a=b": "c"},
        {"a": "", "": "b"},
        {"instId": "BTC-USDT-SWAP", "limit": 100},
        {"q": "a b+c/é"},
    ],
)
def test_the_query_string_of_tricky_parameters(params: dict[str, object]) -> None:
    assert query_string(params) == urlencode(params)


def test_a_request_line_of_text_parameters_is_built_once() -> None:
    params = {"algoOrdType": "contract_grid", "algoId": "12345"}
    first = request_line(BASE, "GET", PATH, params)
    assert first == (f"{PATH}?algoOrdType=contract_grid&algoId=12345", "", first[2])
    assert str(first[2]) == f"{BASE}{PATH}?algoOrdType=contract_grid&algoId=12345"
    again = request_line(BASE, "GET", PATH, dict(params))
    assert again is first  # the same tuple, URL included: nothing built again
    other = request_line("http://127.0.0.1:8081", "GET", PATH, params)
    assert str(other[2]).startswith("http://127.0.0.1:8081/")


@pytest.mark.parametrize(
    ("method", "one", "other"),
    [
        ("GET", {"limit": 1}, {"limit": True}),  # equal, yet "1" and "True"
        ("GET", {"limit": 1}, {"limit": 1.0}),
        ("POST", {"sz": Decimal("1")}, {"sz": Decimal("1.0")}),
        ("POST", {"mktClose": True}, {"mktClose": 1}),
    ],
)
def test_parameters_that_are_equal_but_read_differently_are_never_confused(
    method: str, one: dict[str, object], other: dict[str, object]
) -> None:
    assert one == other
    first, second = request_line(BASE, method, PATH, one), request_line(BASE, method, PATH, other)
    assert first[:2] != second[:2]
    assert request_line(BASE, method, PATH, one)[:2] == first[:2]
