"""One call as the transport sends it on every attempt, and the errors that name it.

The request path (with its query string, for GET) and the body are built once
per call: they are what is signed, and signing must cover exactly the bytes sent.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlencode

import msgspec
from yarl import URL

from ._errors import DeadlineExceededError, NotSentError, OKXError, OutcomeUnknownError

__all__ = ["Call", "query_string", "request_line"]

# What urlencode leaves as it is, and the separators it adds.
_SAFE_QUERY: Final = re.compile(r"[A-Za-z0-9_.~=&-]*")


class Call:
    """A call's method, path and parameters; what it signs and sends; its deadline in seconds.

    ``algo_id`` names the grid in an `OutcomeUnknownError` ("" for none).
    """

    __slots__ = ("algo_id", "body", "method", "params", "path", "request_path", "seconds", "url")

    def __init__(
        self,
        base_url: str,
        method: str,
        path: str,
        params: Mapping[str, object],
        algo_id: str,
        seconds: float,
    ) -> None:
        self.method = method
        self.path = path
        self.params = params
        self.algo_id = algo_id
        self.seconds = seconds
        self.request_path, self.body, self.url = request_line(base_url, method, path, params)

    def not_sent(self, left: float, round_trip: float) -> NotSentError:
        """A POST granted with ``left`` seconds of its deadline, less than ``round_trip``."""
        return NotSentError(
            self.path,
            f"{self.method} {self.path}: not sent: {left:.3f} s of the {self.seconds} s "
            f"deadline left at the grant, less than a round trip ({round_trip:.3f} s)",
        )

    def expired(self) -> OKXError:
        """The deadline ran out during the exchange: a POST may have been executed."""
        if self.method != "GET":
            return self.unknown(f"no answer within the {self.seconds} s deadline")
        return self.deadline_exceeded()

    def deadline_exceeded(self) -> DeadlineExceededError:
        """The deadline ran out with nothing in doubt."""
        return DeadlineExceededError(
            f"{self.method} {self.path}: deadline of {self.seconds} s exceeded"
        )

    def unknown(self, reason: str) -> OutcomeUnknownError:
        """The call may have been executed, for ``reason``; the caller must reconcile."""
        return OutcomeUnknownError(self.algo_id, {"path": self.path, **self.params}, reason)


def request_line(
    base_url: str, method: str, path: str, params: Mapping[str, object]
) -> tuple[str, str, URL]:
    """The request path (with the query string, for GET), the body and the URL of a call.

    A bot polls the same grids over and over, so the 1,024 most recent are kept, for
    parameters that are all text: text equals text only if it reads the same,
    which True and 1, or Decimal("1.0") and Decimal("1"), do not.
    """
    items = tuple(params.items())
    for _, value in items:
        if type(value) is not str:
            return _request_line(base_url, method, path, params)
    return _text_request_line(base_url, method, path, items)


@functools.lru_cache(maxsize=1024)
def _text_request_line(
    base_url: str, method: str, path: str, items: tuple[tuple[str, object], ...]
) -> tuple[str, str, URL]:
    return _request_line(base_url, method, path, dict(items))


def _request_line(
    base_url: str, method: str, path: str, params: Mapping[str, object]
) -> tuple[str, str, URL]:
    if method == "GET":
        query = query_string(params)
        request_path = f"{path}?{query}" if query else path
        body = ""
    else:
        request_path = path
        body = msgspec.json.encode(params).decode()
    return request_path, body, URL(base_url + request_path, encoded=True)


def query_string(params: Mapping[str, object]) -> str:
    """``urlencode(params)``, joined directly when nothing needs quoting (ids, enums)."""
    pieces = [f"{key}={value!s}" for key, value in params.items()]
    query = "&".join(pieces)
    # Nothing to quote if every key and value is safe text: then the pieces hold one
    # "=" each and the joins the only "&"s, and nothing else is outside the safe set.
    n = len(pieces)
    if query.count("=") == n and query.count("&") == n - 1 and _SAFE_QUERY.fullmatch(query):
        return query
    return urlencode(params)
