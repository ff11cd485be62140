"""Every error the library raises, in one tree::

    OKXError
    ├── OKXAPIError                      a non-zero OKX code (.code, .msg, .http_status)
    │   ├── RateLimitError               50011: not executed, safe to send again
    │   ├── ServiceUnavailableError      50001, 50013, 50026: OKX busy or failing
    │   ├── EndpointTimeoutError         50004: OKX timed out inside; outcome unknown
    │   ├── ParameterError               50014, 51000
    │   ├── OrderNotFoundError           51603: no such (pending) order
    │   ├── AuthenticationError          501xx
    │   │   ├── TimestampExpiredError    50102
    │   │   └── LoginRefusedError        600xx: the WebSocket login was refused
    │   └── GridError                    the grid-bot codes
    │       ├── NoPositionError          51058
    │       ├── GridStateError           51059
    │       ├── GridStoppingError        51288
    │       ├── GridNotFoundError        51289, 51291, 51293
    │       ├── ClosingNotAllowedError   51341
    │       ├── ClosingOrderExistsError  51342
    │       └── NotGridPolicyError       51345
    ├── HTTPStatusError                  HTTP >= 400 without an OKX envelope (an HTML 502 page)
    ├── MalformedResponseError           an answer that is not the envelope we expect (.raw_text)
    │   └── ResponseTooLargeError        the body passed the size cap (read or decompressed)
    ├── TransportError                   the network failed (.sent: whether the request left)
    ├── DeadlineExceededError            the exchange's deadline ran out, nothing in doubt
    ├── NotSentError                     the call ended before its request left (.endpoint)
    │   └── WaitTimeoutError             the wait for a rate-limit slot passed wait_timeout
    ├── RateLimiterUnavailableError      the shared (Redis) limiter cannot be reached
    ├── InvalidArgumentError             bad argument, nothing sent (also a ValueError)
    └── OutcomeUnknownError              a POST that may have taken effect (.algo_id, .request)

Errors carry codes, OKX's message and request shapes; never credentials.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ._constants import RAW_TEXT_LIMIT

__all__ = [
    "AuthenticationError",
    "ClosingNotAllowedError",
    "ClosingOrderExistsError",
    "DeadlineExceededError",
    "EndpointTimeoutError",
    "GridError",
    "GridNotFoundError",
    "GridStateError",
    "GridStoppingError",
    "HTTPStatusError",
    "InvalidArgumentError",
    "LoginRefusedError",
    "MalformedResponseError",
    "NoPositionError",
    "NotGridPolicyError",
    "NotSentError",
    "OKXAPIError",
    "OKXError",
    "OrderNotFoundError",
    "OutcomeUnknownError",
    "ParameterError",
    "RateLimitError",
    "RateLimiterUnavailableError",
    "ResponseTooLargeError",
    "ServiceUnavailableError",
    "TimestampExpiredError",
    "TransportError",
    "WaitTimeoutError",
    "api_error",
    "truncate",
]


def truncate(text: str, limit: int = RAW_TEXT_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, marked when cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters]"


class OKXError(Exception):
    """Base class of every error this library raises."""


class OKXAPIError(OKXError):
    """OKX answered with a non-zero ``code``.

    Attributes:
        code: OKX's code, a string such as ``"51058"``.
        msg: OKX's message.
        http_status: the HTTP status of the answer (OKX uses 200 for most business errors).
    """

    def __init__(self, code: str, msg: str, http_status: int) -> None:
        super().__init__(code, msg, http_status)
        self.code = code
        self.msg = msg
        self.http_status = http_status

    def __str__(self) -> str:
        return f"OKX code {self.code} (HTTP {self.http_status}): {self.msg or '(no message)'}"


class RateLimitError(OKXAPIError):
    """50011: the user's budget for this endpoint was exceeded; the request was not executed."""


class ServiceUnavailableError(OKXAPIError):
    """50001, 50013, 50026: OKX is unavailable, busy, or failed internally."""


class EndpointTimeoutError(OKXAPIError):
    """50004: the endpoint timed out inside OKX; this does not say whether it took effect."""


class ParameterError(OKXAPIError):
    """50014 or 51000: OKX rejected a parameter."""


class OrderNotFoundError(OKXAPIError):
    """51603: the order does not exist (e.g. a close order already filled or cancelled)."""


class AuthenticationError(OKXAPIError):
    """A 501xx code: key, passphrase, signature, timestamp, IP whitelist or environment.

    A refused WebSocket login (600xx) is its subclass `LoginRefusedError`.
    """


class TimestampExpiredError(AuthenticationError):
    """50102: the request's timestamp was more than 30 s from OKX's clock."""


class LoginRefusedError(AuthenticationError):
    """OKX refused the WebSocket login of a stream (60004-60009, 60024, 60032, ...).

    Raised from the stream's iterator; the stream is over. ``http_status`` is 101,
    the status of the WebSocket upgrade the answer came on.
    """

    def __str__(self) -> str:
        return f"WebSocket login refused: OKX code {self.code}: {self.msg or '(no message)'}"


class GridError(OKXAPIError):
    """A grid-bot code: the grid is in no state for what was asked."""


class NoPositionError(GridError):
    """51058: no available position for this algo order."""


class GridStateError(GridError):
    """51059: the strategy in its current state does not support this operation."""


class GridStoppingError(GridError):
    """51288: the bot is stopping."""


class GridNotFoundError(GridError):
    """51289, 51291, 51293: the bot (or its configuration) does not exist or has stopped."""


class ClosingNotAllowedError(GridError):
    """51341: position closing not allowed."""


class ClosingOrderExistsError(GridError):
    """51342: a closing order already exists; try later (or cancel it)."""


class NotGridPolicyError(GridError):
    """51345: the algo order is not a grid."""


class HTTPStatusError(OKXError):
    """An HTTP error status whose body is not OKX's envelope (a proxy's HTML page, say).

    Attributes:
        http_status: the HTTP status.
        raw_text: the body, truncated.
    """

    def __init__(self, http_status: int, raw_text: str) -> None:
        self.http_status = http_status
        self.raw_text = truncate(raw_text)
        super().__init__(http_status, self.raw_text)

    def __str__(self) -> str:
        return f"HTTP {self.http_status} without an OKX answer: {self.raw_text!r}"


class MalformedResponseError(OKXError):
    """OKX's answer could not be read as the expected envelope and rows.

    Attributes:
        reason: what was wrong.
        http_status: the HTTP status.
        raw_text: the body as received, truncated, for debugging.
    """

    def __init__(self, reason: str, http_status: int, raw_text: str) -> None:
        self.reason = reason
        self.http_status = http_status
        self.raw_text = truncate(raw_text)
        super().__init__(reason, http_status, self.raw_text)

    def __str__(self) -> str:
        return f"malformed answer (HTTP {self.http_status}): {self.reason}; body: {self.raw_text!r}"


class ResponseTooLargeError(MalformedResponseError):
    """The answer's body was larger than the cap (as sent, or once decompressed).

    No OKX answer to these endpoints comes near the cap; a body past it is a
    fault or an attack, and it is not read further.
    """


class TransportError(OKXError):
    """The network failed.

    Attributes:
        sent: False when the failure certainly happened before the request left
            (so it was not executed); True when it may have reached OKX.
    """

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class DeadlineExceededError(OKXError, TimeoutError):
    """The exchange's deadline (``timeout``) ran out, with nothing in doubt.

    The deadline runs from the grant of a rate-limit slot: sending, retries,
    their backoff and reading the answer count; waiting in the limiter's queue
    does not. For a request that may have been executed, `OutcomeUnknownError`
    is raised instead.
    """


class NotSentError(OKXError):
    """The call ended before its request was sent: nothing reached OKX.

    Raised, for example, for a POST granted a slot with less of its deadline
    left than a round trip takes. It is safe to call again.

    Attributes:
        endpoint: the request path (``/api/v5/...``).
    """

    def __init__(self, endpoint: str, message: str) -> None:
        super().__init__(message)
        self.endpoint = endpoint


class WaitTimeoutError(NotSentError, TimeoutError):
    """The wait for a rate-limit slot would pass ``wait_timeout``; nothing was sent.

    Raised at once, without waiting, when the queue already ahead of the call
    makes the bound impossible.

    Attributes:
        endpoint: the request path.
        waited: seconds the call waited before giving up (0 when it failed at once).
        wait_timeout: the bound, in seconds.
    """

    def __init__(self, endpoint: str, waited: float, wait_timeout: float) -> None:
        super().__init__(
            endpoint,
            f"{endpoint}: gave up waiting for a rate-limit slot after {waited:.3f} s "
            f"(wait_timeout={wait_timeout} s); nothing was sent",
        )
        self.waited = waited
        self.wait_timeout = wait_timeout


class RateLimiterUnavailableError(OKXError):
    """The shared rate limiter (Redis) cannot be reached; nothing was sent."""


class InvalidArgumentError(OKXError, ValueError):
    """An argument failed validation; the request it was for was not sent. A ``ValueError`` too."""


class OutcomeUnknownError(OKXError):
    """A POST may or may not have taken effect; it was not sent again.

    Reconcile by reading the grid (``GridClient.reconcile_close``) before acting again.

    Attributes:
        algo_id: the grid concerned.
        request: what was sent: path and the body's fields (no credentials).
        reason: why the outcome is unknown.
    """

    def __init__(self, algo_id: str, request: Mapping[str, object], reason: str) -> None:
        self.algo_id = algo_id
        self.request = dict(request)
        self.reason = reason
        super().__init__(algo_id, self.request, reason)

    def __str__(self) -> str:
        return (
            f"outcome unknown for algo {self.algo_id}: {self.reason}; "
            f"sent {self.request!r}; read the grid's position before acting again"
        )


# One table from OKX code to exception class.
_CODE_TO_ERROR: Final[Mapping[str, type[OKXAPIError]]] = {
    "50011": RateLimitError,
    "50001": ServiceUnavailableError,
    "50013": ServiceUnavailableError,
    "50026": ServiceUnavailableError,
    "50004": EndpointTimeoutError,
    "50014": ParameterError,
    "51000": ParameterError,
    "51603": OrderNotFoundError,
    "50102": TimestampExpiredError,
    "51058": NoPositionError,
    "51059": GridStateError,
    "51288": GridStoppingError,
    "51289": GridNotFoundError,
    "51291": GridNotFoundError,
    "51293": GridNotFoundError,
    "51341": ClosingNotAllowedError,
    "51342": ClosingOrderExistsError,
    "51345": NotGridPolicyError,
}


def api_error(code: str, msg: str, http_status: int) -> OKXAPIError:
    """The exception for an OKX ``code``: from the table, any other 501xx is authentication."""
    cls = _CODE_TO_ERROR.get(code)
    if cls is None:
        cls = AuthenticationError if code.startswith("501") and len(code) == 5 else OKXAPIError
    return cls(code, msg, http_status)
