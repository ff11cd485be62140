"""API credentials and OKX request signing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from datetime import UTC, datetime
from typing import Final

__all__ = ["Credentials", "format_timestamp", "sign"]

# Unicode's control characters (category Cc). No OKX key, secret or passphrase has
# one; a stray line ending does (a .env file with CRLF endings leaves "\r"), and it
# would otherwise fail late: in an HTTP header, or as a wrong signature.
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_NAMES: Final = {"\r": "CR", "\n": "LF", "\x00": "NUL", "\t": "TAB"}


class Credentials:
    """An OKX API key with its secret and passphrase.

    The secret and the passphrase never appear in ``repr`` or ``str``; only the
    last four characters of the API key do, so log lines can tell keys apart.

    Raises:
        ValueError: if any part is empty or holds a control character (CR, LF, NUL,
            ...: U+0000 to U+001F, U+007F to U+009F); the message names the part,
            never its value.
        TypeError: if any part is not a ``str``.
    """

    __slots__ = ("_api_key", "_passphrase", "_secret")

    def __init__(self, api_key: str, secret_key: str, passphrase: str) -> None:
        for name, value in (
            ("api_key", api_key),
            ("secret_key", secret_key),
            ("passphrase", passphrase),
        ):
            _check_part(name, value)
        self._api_key = api_key
        self._secret = secret_key.encode()
        self._passphrase = passphrase

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Credentials:
        """Read ``OKX_API_KEY``, ``OKX_SECRET_KEY`` and ``OKX_PASSPHRASE``.

        Raises:
            ValueError: naming every variable that is missing or empty, or the first
                that holds a control character (never its value).
        """
        env = os.environ if environ is None else environ
        names = ("OKX_API_KEY", "OKX_SECRET_KEY", "OKX_PASSPHRASE")
        missing = [name for name in names if not env.get(name)]
        if missing:
            raise ValueError(f"missing environment variable(s): {', '.join(missing)}")
        api_key, secret_key, passphrase = (_check_part(name, env[name]) for name in names)
        return cls(api_key, secret_key, passphrase)

    @property
    def api_key(self) -> str:
        """The public API key (not a secret: OKX sends it in a header)."""
        return self._api_key

    @property
    def passphrase(self) -> str:
        """The passphrase, for the OK-ACCESS-PASSPHRASE header."""
        return self._passphrase

    def sign(self, timestamp: str, method: str, request_path: str, body: str) -> str:
        """Return OK-ACCESS-SIGN for one request (see `sign()`)."""
        return sign(self._secret, timestamp, method, request_path, body)

    def __repr__(self) -> str:
        return f"Credentials(api_key='…{self._api_key[-4:]}', secret_key=***, passphrase=***)"

    __str__ = __repr__

    def __reduce__(self) -> str:
        # Pickling would copy the secret into places nobody audits.
        raise TypeError("Credentials cannot be pickled")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Credentials):
            return NotImplemented
        return (
            self._api_key == other._api_key
            and hmac.compare_digest(self._secret, other._secret)
            and hmac.compare_digest(self._passphrase.encode(), other._passphrase.encode())
        )

    def __hash__(self) -> int:
        return hash(self._api_key)


def _check_part(name: str, value: object) -> str:
    """``value`` if it is a non-empty str without a control character; errors name ``name``."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    control = _CONTROL.search(value)
    if control is not None:
        char = control[0]
        label = _CONTROL_NAMES.get(char, f"U+{ord(char):04X}")
        raise ValueError(
            f"{name} contains a control character ({label}): remove it "
            "(a .env file with CRLF line endings leaves a CR at the end of each value)"
        )
    return value


def sign(secret: bytes, timestamp: str, method: str, request_path: str, body: str) -> str:
    """Base64(HMAC-SHA256(secret, timestamp + METHOD + request_path + body)).

    ``request_path`` includes the query string for GET; ``body`` is exactly the
    text sent (the empty string for GET).
    """
    message = f"{timestamp}{method.upper()}{request_path}{body}".encode()
    return base64.b64encode(hmac.new(secret, message, hashlib.sha256).digest()).decode()


def format_timestamp(epoch_seconds: float) -> str:
    """UTC ISO 8601 with milliseconds and ``Z``, as OK-ACCESS-TIMESTAMP wants.

    >>> format_timestamp(1607418537.715)
    '2020-12-08T09:08:57.715Z'
    """
    global _last_second
    second, millis = divmod(round(epoch_seconds * 1000), 1000)
    cached = _last_second
    if cached[0] != second:
        # Formatting the date is most of the cost; it changes once a second.
        cached = _last_second = (
            second,
            f"{datetime.fromtimestamp(second, tz=UTC):%Y-%m-%dT%H:%M:%S}",
        )
    return f"{cached[1]}.{millis:03d}Z"


_last_second: tuple[int, str] = (-1, "")
