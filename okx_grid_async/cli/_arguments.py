"""The command line's argument types: each validates one value, or says why not.

A type's ``ValueError`` or ``TypeError`` becomes argparse's usage error (exit 2),
so that a bad id, size, price or duration stops the run before anything is sent.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from decimal import Decimal
from typing import Final, TypeVar

from okx_grid_async._validation import check_id, check_positive_decimal

__all__ = ["ALGO_ID", "CONCURRENCY", "COUNT", "GRIDS", "ORD_ID", "PORT", "PX", "SECONDS", "SZ"]

T = TypeVar("T")


def _argument_type(name: str, convert: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse ``type`` from a validator: its message becomes argparse's usage error."""

    def parse(text: str) -> T:
        try:
            return convert(text)
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = name
    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < float("inf"):
        raise ValueError(f"must be > 0 seconds, not {text!r}")
    return value


def _whole(text: str, minimum: int, maximum: int, what: str) -> int:
    if not text.isdigit() or not minimum <= int(text) <= maximum:
        raise ValueError(f"{what}, not {text!r}")
    return int(text)


ALGO_ID: Final = _argument_type("algo_id", lambda text: check_id(text, "an algo id"))
ORD_ID: Final = _argument_type("ord_id", lambda text: check_id(text, "an order id"))
SZ: Final[Callable[[str], Decimal]] = _argument_type(
    "sz", lambda text: check_positive_decimal(text, "the size")
)
PX: Final[Callable[[str], Decimal]] = _argument_type(
    "px", lambda text: check_positive_decimal(text, "the price")
)
SECONDS: Final = _argument_type("seconds", _seconds)
CONCURRENCY: Final = _argument_type(
    "concurrency", lambda text: _whole(text, 1, 10_000, "must be a whole number 1..10000")
)
COUNT: Final = _argument_type(
    "count", lambda text: _whole(text, 1, 10**9, "must be a whole number 1..1000000000")
)
PORT: Final = _argument_type(
    "port", lambda text: _whole(text, 0, 65_535, "a port is 0..65535 (0: any free one)")
)
GRIDS: Final = _argument_type(
    "grids", lambda text: _whole(text, 0, 100_000, "must be a whole number 0..100000")
)
