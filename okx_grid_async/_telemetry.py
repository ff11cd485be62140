"""Telemetry, chosen once per client: OpenTelemetry when its API is installed, else none.

`call_telemetry()` runs when a client is built. Without ``opentelemetry-api``
(the ``otel`` extra) it returns None having imported nothing of it, and the
transport's hot path then tests only that None: no attributes are built, no
clock is read, no ``ImportError`` is caught per request. With the API installed,
the instruments live in `okx_grid_async._otel`, recorded through the providers
given or the global ones; while those are the API's no-ops (no SDK configured),
a call skips them (see `okx_grid_async._otel`).

The outcome of an attempt is a pure function of its error, shared by the metrics,
the spans and the retry log line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

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

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from ._clock import Clock
    from ._otel import Telemetry

__all__ = ["OUTCOMES", "call_telemetry", "outcome_of"]

# The values of ``okx_grid.outcome``.
OUTCOMES: Final = ("ok", "api_error", "rate_limited", "unknown", "transport_error", "deadline")


def call_telemetry(
    clock: Clock,
    meter_provider: MeterProvider | None,
    tracer_provider: TracerProvider | None,
) -> Telemetry | None:
    """The recorder of a client's calls, or None when ``opentelemetry-api`` is not installed."""
    try:
        from ._otel import Telemetry  # only if the API is installed
    except ImportError:
        return None
    return Telemetry(clock, meter_provider, tracer_provider)


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
