"""Sizes and prices: what check_positive_decimal accepts, and what wire_decimal sends."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from okx_grid_async import InvalidArgumentError
from okx_grid_async._validation import check_positive_decimal, wire_decimal


def _id(value: object) -> str:
    if isinstance(value, int) and value.bit_length() > 64:
        return f"int of {value.bit_length()} bits"
    return repr(value)[:30]


ACCEPTED: list[tuple[Decimal | int | str, str]] = [
    ("29500.5", "29500.5"),
    (" 2.5 ", "2.5"),  # spaces or tabs around are allowed
    ("\t3\t", "3"),
    ("+7", "7"),
    (".5", "0.5"),
    ("000029500", "29500"),
    ("0.0000000000000001", "0.0000000000000001"),  # 1E-16, the smallest
    ("999999999999999.9", "999999999999999.9"),  # just under 1E+15
    ("1.23456789012345678901234567890", "1.23456789012345678901234567890"),  # 30 digits
    (Decimal("2.95E+4"), "29500"),
    (Decimal("1E-16"), "0.0000000000000001"),
    (Decimal("1.50"), "1.50"),
    (10**15 - 1, "999999999999999"),
    (1, "1"),
]


@pytest.mark.parametrize(("value", "wire"), ACCEPTED, ids=_id)
def test_accepted_values_and_their_wire_text(value: Decimal | int | str, wire: str) -> None:
    assert wire_decimal(check_positive_decimal(value, "px")) == wire


REFUSED: list[tuple[Decimal | int | str, str]] = [
    ("1e999999999", "px must be a decimal number written with ASCII digits"),
    ("1e1000000", "no exponent"),
    ("1E3", "no exponent"),
    ("1_000", "no '_'"),
    ("\uff11\uff12\uff13", "ASCII digits"),  # full-width 123
    ("\u0661\u0662", "ASCII digits"),  # Arabic-Indic 12
    ("12\n", "ASCII digits"),
    ("1 000", "ASCII digits"),
    ("1.2.3", "ASCII digits"),
    ("", "ASCII digits"),
    ("-", "ASCII digits"),
    ("Infinity", "px must be finite"),
    ("-inf", "px must be finite"),
    ("sNaN", "px must be finite"),
    ("1" * 65, "at most 64 characters"),
    ("0" * 10**6 + "1", "at most 64 characters"),
    ("0.00000000000000001", "at least 1E-16"),
    ("1000000000000000", "< 1E\\+15"),
    ("1.000000000000000000000000000000", "at most 30 significant digits"),
    (Decimal("1E+999999999"), "< 1E\\+15"),
    (Decimal("1E-999999999"), "at least 1E-16"),
    (Decimal("1." + "1" * 30), "at most 30 significant digits"),
    (Decimal("sNaN"), "px must be finite"),
    (Decimal("-0"), "px must be > 0"),
    (10**15, "< 1E\\+15"),
    (10**100_000, "an int of 332193 bits"),
    (-(10**100_000), "px must be > 0"),
]


@pytest.mark.parametrize(("value", "match"), REFUSED, ids=_id)
def test_refused_values_fail_fast_with_a_short_message(
    value: Decimal | int | str, match: str
) -> None:
    started = time.perf_counter()
    with pytest.raises(InvalidArgumentError, match=match) as info:
        check_positive_decimal(value, "px")
    assert time.perf_counter() - started < 0.1
    assert len(str(info.value)) < 200  # never the whole of a huge value


@pytest.mark.parametrize(
    "value", [Decimal("1E+1000000"), Decimal("-1E-1000000"), Decimal("1." + "0" * 40)], ids=str
)
def test_wire_decimal_refuses_what_it_would_have_to_expand(value: Decimal) -> None:
    with pytest.raises(InvalidArgumentError, match="sz must"):
        wire_decimal(value, "sz")
