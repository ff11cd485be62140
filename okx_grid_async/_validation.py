"""Argument checks, run before anything is sent or a rate-limit slot is taken."""

from __future__ import annotations

import contextlib
import math
import re
from decimal import Decimal
from typing import Final

from ._constants import GRID_ENDPOINT_PATHS
from ._errors import InvalidArgumentError

__all__ = [
    "check_bool",
    "check_grid_endpoint",
    "check_id",
    "check_positive_decimal",
    "check_seconds",
    "wire_decimal",
]

_DIGITS: Final = re.compile(r"[0-9]+")

# What a size or price sent to OKX can be. OKX's smallest steps (tickSz, lotSz) are
# well above 1E-16 and no contract price or size comes near 1E+15; 30 digits hold
# any such value exactly. Bounding the exponent also bounds the plain text that
# `wire_decimal` writes: without it, "1e999999999" expands to 10**9 characters.
_MAX_DIGITS: Final = 30
_MIN_ADJUSTED: Final = -16  # the smallest value is 1E-16
_MAX_ADJUSTED: Final = 14  # every value is < 1E+15
_LIMIT: Final = 10**15
# A value within those bounds is written in under 50 characters; a longer text (64
# leaves room for spaces and padding zeros) is refused before it is parsed.
_MAX_TEXT: Final = 64
# ASCII digits with an optional point and sign, optionally between spaces or tabs:
# no exponent, no "_" separators, no other script's digits.
_PLAIN_DECIMAL: Final = re.compile(r"[ \t]*([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))[ \t]*")
_SHOWN: Final = 40


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


def check_seconds(value: object, name: str) -> float:
    """``value`` as a float, if it is a finite number of seconds > 0 (an int or a float).

    A setting of the client, such as ``timeout`` or ``connect_timeout``.

    Raises:
        ValueError: for anything else: a bool, a str, ``nan``, ``inf``, 0 or less.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        with contextlib.suppress(OverflowError):  # an int too large for a float
            seconds = float(value)
            if 0 < seconds < math.inf:
                return seconds
    if isinstance(value, int | str) and not isinstance(value, bool):
        shown = _shown(value)  # neither a huge int nor a long str in full
    else:
        shown = repr(value)[:_SHOWN]
    raise ValueError(f"{name} must be a finite number of seconds > 0, not {shown}")


def check_positive_decimal(value: object, name: str) -> Decimal:
    """``value`` as a ``Decimal`` that OKX can take as a size or price.

    Accepted: a ``Decimal``, an ``int``, or a ``str`` of plain decimal text: ASCII
    digits with at most one ``.`` and an optional sign, with nothing around them but
    spaces or tabs, 64 characters at most. A str has no exponent (``"1e3"``), no
    ``_`` (``"1_000"``) and no other script's digits (full-width ``"\uff11"``); a
    ``Decimal`` may have one (``Decimal("1E+2")``). The value must be finite, > 0,
    at least ``1E-16``, below ``1E+15``, and have at most 30 significant digits
    (trailing zeros count). Checking never builds a long string.

    Raises:
        TypeError: for a float (binary floats are not prices), a bool, or another type.
        InvalidArgumentError: for anything else outside those rules; the message
            shows at most the first 40 characters of the value.
    """
    if isinstance(value, float):
        raise TypeError(
            f"{name} must be a Decimal, int or str, not float: binary floats are not prices "
            f"(use Decimal({str(value)!r}))"
        )
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise TypeError(f"{name} must be a Decimal, int or str, not {type(value).__name__}")
    if isinstance(value, int):
        # Compared as an int: converting a huge one to Decimal or text costs more than it's worth.
        if value <= 0:
            raise InvalidArgumentError(f"{name} must be > 0, not {_shown(value)}")
        if value >= _LIMIT:
            raise InvalidArgumentError(f"{name} must be < 1E+15, not {_shown(value)}")
        return Decimal(value)
    number = _parse_text(value, name) if isinstance(value, str) else value
    if not number.is_finite():
        raise InvalidArgumentError(f"{name} must be finite, not {_shown(value)}")
    if number <= 0:
        raise InvalidArgumentError(f"{name} must be > 0, not {_shown(value)}")
    _check_magnitude(number, name, value)
    return number


def wire_decimal(value: Decimal, name: str = "value") -> str:
    """The plain decimal text OKX expects: never an exponent (``1E+2`` is sent as ``100``).

    Raises:
        InvalidArgumentError: for a value outside `check_positive_decimal`'s bounds
            (not finite, under ``1E-16`` or from ``1E+15`` in size, more than 30
            digits), rather than writing out a huge exponent.
    """
    if not value.is_finite():
        raise InvalidArgumentError(f"{name} must be finite, not {_shown(value)}")
    if value:
        _check_magnitude(value.copy_abs(), name, value)
    return format(value, "f")


def _parse_text(text: str, name: str) -> Decimal:
    if len(text) > _MAX_TEXT:
        raise InvalidArgumentError(
            f"{name} must be at most {_MAX_TEXT} characters of decimal text, "
            f"not {len(text)} characters: {_shown(text)}"
        )
    plain = _PLAIN_DECIMAL.fullmatch(text)
    if plain is not None:
        return Decimal(plain[1])
    special = text.strip(" \t").lower().lstrip("+-")
    if special in ("inf", "infinity", "nan", "snan"):
        raise InvalidArgumentError(f"{name} must be finite, not {_shown(text)}")
    raise InvalidArgumentError(
        f"{name} must be a decimal number written with ASCII digits and at most one '.' "
        f"(no exponent, no '_'), not {_shown(text)}"
    )


def _check_magnitude(number: Decimal, name: str, value: Decimal | str) -> None:
    """Refuse a finite ``number`` > 0 (given as ``value``) too large, small or long for OKX."""
    if number.adjusted() > _MAX_ADJUSTED:
        raise InvalidArgumentError(f"{name} must be < 1E+15, not {_shown(value)}")
    if number.adjusted() < _MIN_ADJUSTED:
        raise InvalidArgumentError(f"{name} must be at least 1E-16, not {_shown(value)}")
    if len(number.as_tuple().digits) > _MAX_DIGITS:
        raise InvalidArgumentError(
            f"{name} must have at most {_MAX_DIGITS} significant digits "
            f"(trailing zeros count), not {_shown(value)}"
        )


def _shown(value: Decimal | int | str) -> str:
    """``value`` for a message, cut to 40 characters: never the whole of a huge one."""
    if isinstance(value, int) and value.bit_length() > 128:
        return f"an int of {value.bit_length()} bits"
    text = value if isinstance(value, str) else str(value)
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "…")


def check_grid_endpoint(endpoint: object) -> str:
    """The path of a grid endpoint named by the last part of its path (`GridEndpoint`).

    Raises:
        TypeError: ``endpoint`` is not a str.
        InvalidArgumentError: it is not one of those names (a path, say).
    """
    if not isinstance(endpoint, str):
        raise TypeError(f"endpoint must be a str, not {type(endpoint).__name__}")
    path = GRID_ENDPOINT_PATHS.get(endpoint)
    if path is None:
        names = ", ".join(map(repr, GRID_ENDPOINT_PATHS))
        raise InvalidArgumentError(f"endpoint must be one of {names}; not {endpoint!r}")
    return path
