"""Argument checks, run before anything is sent or a rate-limit slot is taken."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Final

from ._errors import OKXError

__all__ = [
    "InvalidArgumentError",
    "check_bool",
    "check_id",
    "check_positive_decimal",
    "wire_decimal",
]

_DIGITS: Final = re.compile(r"[0-9]+")


class InvalidArgumentError(OKXError, ValueError):
    """An argument failed validation; the request it was for was not sent. A ``ValueError`` too."""


def check_id(value: object, name: str) -> str:
    """``value`` if it is a non-empty string of ASCII digits (OKX ids are such strings).

    Raises:
        TypeError: if it is not a str (an int id would lose digits elsewhere).
        InvalidArgumentError: if it is empty or not all digits.
    """
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str of digits, not {type(value).__name__}")
    if not _DIGITS.fullmatch(value):
        raise InvalidArgumentError(f"{name} must be a non-empty string of digits, not {value!r}")
    return value


def check_bool(value: object, name: str) -> bool:
    """``value`` if it is a real ``bool`` (not 0/1, not "true")."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {type(value).__name__}")
    return value


def check_positive_decimal(value: object, name: str) -> Decimal:
    """``value`` as a finite ``Decimal`` > 0, from a Decimal, an int or a str.

    Raises:
        TypeError: for a float (binary floats are not prices), a bool, or another type.
        InvalidArgumentError: if it is not a number, not finite, or not > 0.
    """
    if isinstance(value, float):
        raise TypeError(
            f"{name} must be a Decimal, int or str, not float: binary floats are not prices "
            f"(use Decimal({str(value)!r}))"
        )
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise TypeError(f"{name} must be a Decimal, int or str, not {type(value).__name__}")
    try:
        number = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise InvalidArgumentError(f"{name} must be a decimal number, not {value!r}") from None
    if not number.is_finite():
        raise InvalidArgumentError(f"{name} must be finite, not {value!r}")
    if number <= 0:
        raise InvalidArgumentError(f"{name} must be > 0, not {value!r}")
    return number


def wire_decimal(value: Decimal) -> str:
    """The plain decimal text OKX expects: never an exponent (``1E+2`` is sent as ``100``)."""
    return format(value, "f")
