"""Telemetry, chosen once per client: OpenTelemetry when its API is installed, else none.

`call_telemetry()` runs when a client is built. Without ``opentelemetry-api``
(the ``otel`` extra) it returns None having imported nothing of it, and the
transport's hot path then tests only that None: no attributes are built, no
clock is read, no ``ImportError`` is caught per request. With the API installed,
the instruments live in `okx_grid_async._otel`, recorded through the providers
given or the global ones; while those are the API's no-ops (no SDK configured),
a call skips them (see `okx_grid_async._otel`). The outcome attribute of an
attempt is `okx_grid_async._outcome.outcome_of`, shared with the retry log line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from ._clock import Clock
    from ._otel import Telemetry

__all__ = ["call_telemetry"]


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
