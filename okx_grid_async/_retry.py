"""Retry policy as small pure functions: should this failure be retried, and after how long.

GET is read-only, so any failure that may pass is retried. A POST (close-position,
cancel-close-order) is sent again only when OKX certainly did not execute it;
when it may have, the outcome is *unknown* and the caller must reconcile.
"""

from __future__ import annotations

import enum
from typing import Final

from ._constants import BACKOFF_BASE, BACKOFF_CAP
from ._errors import (
    EndpointTimeoutError,
    HTTPStatusError,
    MalformedResponseError,
    OKXError,
    RateLimitError,
    ServiceUnavailableError,
    TimestampExpiredError,
    TransportError,
)

__all__ = ["Decision", "backoff_delay", "decide"]


class Decision(enum.Enum):
    """What to do with a failed attempt."""

    RETRY = "retry"
    RAISE = "raise"
    UNKNOWN = "unknown"  # a POST that may have been executed: never sent again


# Codes whose request OKX certainly did not execute.
_NOT_EXECUTED_CODES: Final = frozenset({"50011", "50013"})


def decide(method: str, error: OKXError) -> Decision:
    """Retry, raise, or report an unknown outcome, for one failed attempt."""
    if isinstance(error, TimestampExpiredError):
        # Rejected at authentication, before execution; the clock is re-synced first.
        return Decision.RETRY
    if isinstance(error, HTTPStatusError) and 300 <= error.http_status < 400:
        # A redirect (never followed) comes from something in front of OKX that
        # forwarded nothing: not executed, and sending again would redirect again.
        return Decision.RAISE
    if method == "GET":
        retryable = isinstance(
            error, RateLimitError | ServiceUnavailableError | EndpointTimeoutError | TransportError
        ) or (isinstance(error, HTTPStatusError) and error.http_status >= 500)
        return Decision.RETRY if retryable else Decision.RAISE
    if isinstance(error, RateLimitError | ServiceUnavailableError):
        return Decision.RETRY if error.code in _NOT_EXECUTED_CODES else Decision.UNKNOWN
    if isinstance(error, TransportError):
        return Decision.UNKNOWN if error.sent else Decision.RETRY
    if isinstance(error, EndpointTimeoutError | HTTPStatusError | MalformedResponseError):
        return Decision.UNKNOWN
    return Decision.RAISE


def backoff_delay(
    attempt: int, jitter: float, *, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    Capped exponential backoff with "equal jitter": half the step is fixed, half
    is ``jitter`` (a number in [0, 1)) times the other half, so clients that
    failed together do not retry together.
    """
    if attempt < 1:
        raise ValueError("attempt is 1-based")
    step = min(cap, base * 2.0 ** (attempt - 1))
    return step / 2 + step / 2 * jitter
