"""Request parameters as OKX checks them: 50014 when missing, 51000 when refused.

Every function takes the parameters of one request (the query of a GET, the
JSON object of a POST) and raises `SimError`; none may raise anything else,
so no value a client sends can turn into an HTTP 500.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Final

from aiohttp import web

from okx_grid_async.simulator._state import SimError, param_empty, param_error, to_decimal

__all__ = [
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
    """A required positive number sent as a string (OKX's convention).

    Raises:
        SimError: 50014 when missing or empty, 51000 if not a positive number.
    """
    text = required(params, name)
    try:
        value = to_decimal(text)
    except ValueError:
        raise param_error(name) from None
    if value <= 0:
        raise param_error(name)
    return value


def algo_id_cursor(params: Params, name: str) -> int | None:
    """An optional algoId used as a pagination cursor.

    Raises:
        SimError: 51000 unless all digits.
    """
    text = optional(params, name)
    if text is None:
        return None
    if not text.isdigit():
        raise param_error(name)
    return int(text)


def page_limit(params: Params) -> int:
    """``limit``: 1 to 100, default 100.

    Raises:
        SimError: 51000 otherwise.
    """
    text = optional(params, "limit")
    if text is None:
        return MAX_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise param_error("limit")
    return int(text)


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
