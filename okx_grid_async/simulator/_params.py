"""Request parameters as OKX checks them: 50014 when missing, 51000 when refused.

Every function takes the parameters of one request (the query of a GET, the
JSON object of a POST) and raises `SimError`; none may raise anything else,
so no value a client sends can turn into an HTTP 500.

Numbers are taken only as OKX writes them: plain ASCII decimals (digits,
optionally a point and more digits: ``12``, ``0.5``), at most `MAX_DIGITS`
digits. ``Decimal()`` and
``int()`` would accept much more (exponents, ``NaN``, ``1_000``, full-width
and other Unicode digits), and what they accept can overflow later
arithmetic (``1e1000000``) or take long to convert; all of it is refused
with 51000 before either sees it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Final

from aiohttp import web

from okx_grid_async.simulator._model import SimError, param_empty, param_error

__all__ = [
    "MAX_DIGITS",
    "MAX_LIMIT",
    "Params",
    "algo_id_cursor",
    "json_object",
    "optional",
    "page_limit",
    "positive_decimal",
    "required",
]

Params = Mapping[str, object]

MAX_LIMIT: Final = 100
# Digits a number may have: an algoId has 18 or 19, a price or size far fewer.
MAX_DIGITS: Final = 30

# [0-9], not \d: \d matches every Unicode digit.
_DECIMAL_TEXT: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_DIGITS_TEXT: Final = re.compile(r"[0-9]+")


def _plain_decimal(text: str) -> Decimal | None:
    """``text`` as a Decimal if it is a plain ASCII decimal of at most `MAX_DIGITS` digits."""
    # The length check comes first so that a megabyte of digits costs nothing.
    if len(text) > MAX_DIGITS + 1 or _DECIMAL_TEXT.fullmatch(text) is None:
        return None
    if len(text) - text.count(".") > MAX_DIGITS:
        return None
    return Decimal(text)


def _plain_int(text: str) -> int | None:
    """``text`` as an int if it is ASCII digits only, at most `MAX_DIGITS` of them."""
    if len(text) > MAX_DIGITS or _DIGITS_TEXT.fullmatch(text) is None:
        return None
    return int(text)


def optional(params: Params, name: str) -> str | None:
    """A string parameter, ``None`` when missing or empty.

    Raises:
        SimError: 51000 if it is not a string.
    """
    value = params.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise param_error(name)
    return value


def required(params: Params, name: str) -> str:
    """A string parameter that must be present.

    Raises:
        SimError: 50014 when missing or empty, 51000 if not a string.
    """
    value = optional(params, name)
    if value is None:
        raise param_empty(name)
    return value


def positive_decimal(params: Params, name: str) -> Decimal:
    """A required positive number sent as a plain decimal string (OKX's convention).

    Raises:
        SimError: 50014 when missing or empty; 51000 if not a string, not a
            plain ASCII decimal of at most `MAX_DIGITS` digits, or zero.
    """
    value = _plain_decimal(required(params, name))
    if value is None or value <= 0:
        raise param_error(name)
    return value


def algo_id_cursor(params: Params, name: str) -> int | None:
    """An optional algoId used as a pagination cursor.

    Raises:
        SimError: 51000 unless ASCII digits, at most `MAX_DIGITS` of them.
    """
    text = optional(params, name)
    if text is None:
        return None
    value = _plain_int(text)
    if value is None:
        raise param_error(name)
    return value


def page_limit(params: Params) -> int:
    """``limit``: 1 to 100 in ASCII digits, default 100.

    Raises:
        SimError: 51000 otherwise.
    """
    text = optional(params, "limit")
    if text is None:
        return MAX_LIMIT
    value = _plain_int(text)
    if value is None or not 1 <= value <= MAX_LIMIT:
        raise param_error("limit")
    return value


def json_object(request: web.Request, body: bytes) -> Params:
    """The JSON object of a POST body.

    Raises:
        SimError: 50006 wrong Content-Type, 50000 empty, 50002 not a JSON object.
    """
    if request.content_type != "application/json":
        raise SimError("50006", 'Invalid Content_Type, please use "application/json" format')
    if not body.strip():
        raise SimError("50000", "Body can not be empty")
    try:
        value = json.loads(body)
    except ValueError:
        raise SimError("50002", "Json data format error") from None
    if not isinstance(value, dict):
        raise SimError("50002", "Json data format error")
    return value
