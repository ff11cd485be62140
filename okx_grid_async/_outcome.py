"""What became of a call's attempt, as the ``okx_grid.outcome`` and ``okx_grid.code`` attributes.

Its own module so that both the transport and the OpenTelemetry recorder (``_otel``,
imported only when the API is installed) read it without importing each other.
"""

from __future__ import annotations

from typing import Final

from ._errors import (
    DeadlineExceededError,
    NotSentError,
    OKXAPIError,
    OKXError,
    OutcomeUnknownError,
    RateLimitError,
    TransportError,
)
from ._retry import Decision, decide

__all__ = ["OUTCOMES", "outcome_of"]

# The values of ``okx_grid.outcome``.
OUTCOMES: Final = ("ok", "api_error", "rate_limited", "unknown", "transport_error", "deadline")


def outcome_of(method: str, error: OKXError | None) -> tuple[str, str]:
    """An attempt's ``okx_grid.outcome`` and ``okx_grid.code`` ("" when OKX gave none).

    ``unknown``: a POST that may have been executed (never resent); ``deadline``:
    the deadline ran out with nothing in doubt, or was too short to send at all;
    ``api_error`` also covers answers that are not OKX's envelope (an HTML error
    page, a malformed body).
    """
    code = error.code if isinstance(error, OKXAPIError) else ""
    if error is None:
        return "ok", ""
    if isinstance(error, OutcomeUnknownError):
        return "unknown", code
    if isinstance(error, DeadlineExceededError | NotSentError):
        return "deadline", ""
    if decide(method, error) is Decision.UNKNOWN:
        return "unknown", code
    if isinstance(error, RateLimitError):
        return "rate_limited", code
    if isinstance(error, TransportError):
        return "transport_error", ""
    return "api_error", code
