"""Who signed a request: OKX's credential checks, one implementation for REST and WebSocket.

A private REST request and a WebSocket login are checked the same way, in
this order (`check_signed()`):

1. the API key is registered;
2. (REST only) the key's environment: a demo key only with
   ``x-simulated-trading: 1``, a live key only without it;
3. the timestamp is well formed;
4. the timestamp is within 30 s of the simulator's clock;
5. the passphrase is the key's;
6. the signature is Base64(HMAC-SHA256(secret, timestamp + METHOD + path + body)).

The two differ only in the timestamp's form (REST: ``2020-12-08T09:08:57.715Z``;
WebSocket: Unix seconds, ``"1700000000.123"``), in what is signed after the
timestamp (the WebSocket login signs ``GET/users/self/verify``) and in the codes
answered, which `Refusals` holds for each (`REST_REFUSALS`, `WS_REFUSALS`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final

from okx_grid_async._constants import MAX_TIMESTAMP_SKEW
from okx_grid_async.simulator._model import SimAccount, SimError
from okx_grid_async.simulator._state import SimExchange

__all__ = [
    "LOGIN_MESSAGES",
    "REST_REFUSALS",
    "WS_LOGIN_PREHASH",
    "WS_REFUSALS",
    "Refusals",
    "authenticate_headers",
    "check_signed",
    "demo_requested",
    "sign",
]

# Each header OKX requires on a private request, and the code for its absence.
_REQUIRED_HEADERS: Final = (
    ("OK-ACCESS-KEY", "50103"),
    ("OK-ACCESS-PASSPHRASE", "50104"),
    ("OK-ACCESS-SIGN", "50106"),
    ("OK-ACCESS-TIMESTAMP", "50107"),
)
_ISO_TIMESTAMP_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
# Unix seconds, optionally with a fraction: "1700000000" or "1700000000.123".
_UNIX_SECONDS_RE: Final = re.compile(r"\d{1,12}(?:\.\d{1,9})?")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

# What the WebSocket login signs after its timestamp.
WS_LOGIN_PREHASH: Final = b"GET/users/self/verify"

LOGIN_MESSAGES: Final[Mapping[str, str]] = {
    "60004": "Invalid timestamp",
    "60005": "Invalid apiKey",
    "60006": "Timestamp request expired",
    "60007": "Invalid sign",
    "60009": "Login failed.",
    "60024": "Wrong passphrase",
    "60031": "The WS connection is already logged in.",
    "60032": "API key doesn't exist.",
}
"""The WebSocket's login refusals: code to message (60009 for a code not listed)."""


def sign(secret_key: str, prehash: bytes) -> str:
    """OKX's signature: Base64(HMAC-SHA256(secret, timestamp + METHOD + requestPath + body))."""
    digest = hmac.new(secret_key.encode(), prehash, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def demo_requested(headers: Mapping[str, str]) -> bool:
    """Whether a request with ``headers`` is for demo trading (``x-simulated-trading: 1``)."""
    return headers.get("x-simulated-trading") == "1"


def _iso_timestamp_ms(value: str) -> int | None:
    """Unix ms of ``YYYY-MM-DDTHH:MM:SS.mmmZ``, or ``None`` if ``value`` is not one."""
    if _ISO_TIMESTAMP_RE.fullmatch(value) is None:
        return None
    try:
        moment = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _unix_seconds_ms(value: str) -> int | None:
    """Unix ms of a Unix-seconds string (``"1700000000.123"``), or ``None`` if it is not one."""
    if _UNIX_SECONDS_RE.fullmatch(value) is None:
        return None
    return int(Decimal(value) * 1000)


@dataclass(frozen=True, slots=True)
class Refusals:
    """How one channel reads timestamps, and the ``(code, msg)`` it answers each failed check."""

    timestamp_ms: Callable[[str], int | None]
    unknown_key: tuple[str, str]
    bad_timestamp: tuple[str, str]
    expired: tuple[str, str]
    wrong_passphrase: tuple[str, str]
    bad_sign: tuple[str, str]


REST_REFUSALS: Final = Refusals(
    timestamp_ms=_iso_timestamp_ms,
    unknown_key=("50111", "Invalid OK-ACCESS-KEY"),
    bad_timestamp=("50112", "Invalid OK-ACCESS-TIMESTAMP"),
    expired=("50102", "Timestamp request expired"),
    wrong_passphrase=("50105", "Request header OK-ACCESS-PASSPHRASE incorrect"),
    bad_sign=("50113", "Invalid signature"),
)


def _login_refusal(code: str) -> tuple[str, str]:
    return code, LOGIN_MESSAGES[code]


WS_REFUSALS: Final = Refusals(
    timestamp_ms=_unix_seconds_ms,
    unknown_key=_login_refusal("60005"),
    bad_timestamp=_login_refusal("60004"),
    expired=_login_refusal("60006"),
    wrong_passphrase=_login_refusal("60024"),
    bad_sign=_login_refusal("60007"),
)


def check_signed(
    exchange: SimExchange,
    refusals: Refusals,
    *,
    api_key: str,
    passphrase: str,
    timestamp: str,
    signature: str,
    signed_after_timestamp: bytes,
    now_ms: int,
    demo: bool | None = None,
) -> SimAccount:
    """The account whose key signed a request, checked in OKX's order (see the module).

    ``signed_after_timestamp`` is what the client signed after the timestamp
    (METHOD + path + body); ``demo`` whether the request asked for demo
    trading, ``None`` not to check the key's environment.

    Raises:
        SimError: The `Refusals` code of the first check that fails; 50101 a
            key used in the other environment.
    """
    account = exchange.account(api_key)
    if account is None:
        raise SimError(*refusals.unknown_key)
    # Checked with the key: OKX finds the key, but in the other environment.
    if demo is not None and account.demo is not None and account.demo != demo:
        raise SimError("50101", "APIKey does not match current environment.")
    sent_ms = refusals.timestamp_ms(timestamp)
    if sent_ms is None:
        raise SimError(*refusals.bad_timestamp)
    if abs(sent_ms - now_ms) > MAX_TIMESTAMP_SKEW * 1000:
        raise SimError(*refusals.expired)
    if not hmac.compare_digest(passphrase.encode(), account.passphrase.encode()):
        raise SimError(*refusals.wrong_passphrase)
    expected = sign(account.secret_key, timestamp.encode() + signed_after_timestamp)
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        raise SimError(*refusals.bad_sign)
    return account


def authenticate_headers(
    exchange: SimExchange,
    headers: Mapping[str, str],
    method: str,
    raw_path: str,
    body: bytes,
    now_ms: int,
) -> SimAccount:
    """The account a private REST request is signed by, checked in OKX's order.

    Raises:
        SimError: 50103/50104/50106/50107 a header (key, passphrase, sign,
            timestamp) missing or empty; 50111 unknown key; 50101 a demo
            key without ``x-simulated-trading: 1``, or a live key with it;
            50112 timestamp not ``YYYY-MM-DDTHH:MM:SS.mmmZ``; 50102 more
            than 30 s from the simulator's clock; 50105 wrong passphrase;
            50113 signature mismatch. The signature is checked over the
            raw path and query and the raw body, exactly as received.
    """
    for name, code in _REQUIRED_HEADERS:
        if not headers.get(name):
            raise SimError(code, f"Request header {name} can not be empty")
    return check_signed(
        exchange,
        REST_REFUSALS,
        api_key=headers["OK-ACCESS-KEY"],
        passphrase=headers["OK-ACCESS-PASSPHRASE"],
        timestamp=headers["OK-ACCESS-TIMESTAMP"],
        signature=headers["OK-ACCESS-SIGN"],
        signed_after_timestamp=(method + raw_path).encode() + body,
        now_ms=now_ms,
        demo=demo_requested(headers),
    )
