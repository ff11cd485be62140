"""The OpenTelemetry instruments and spans of the transport (imports ``opentelemetry``).

Imported only through `okx_grid_async._telemetry.call_telemetry`, and only when
``opentelemetry-api`` is installed. Attribute sets are built once per endpoint
(and outcome) and reused: no user id, API key or algo id is ever among them.

Until an SDK is configured, the API's providers record nothing, yet a span and
five instrument calls through them cost a call about 5 % more CPU. So a call
records only once a provider that can record is in place: one given to the
client that is not the API's own, or a global one set by the application, even
after the client was built (the instruments are the API's proxies, which then
forward to it).
"""

from __future__ import annotations

from contextvars import Token
from typing import Final

# The API's module that holds the global meter provider; no public name reads it cheaply.
import opentelemetry.metrics._internal as metrics_api
from opentelemetry import context, metrics, trace
from opentelemetry.context import Context
from opentelemetry.util.types import Attributes

from ._clock import Clock
from ._errors import OKXError, OutcomeUnknownError
from ._limiter import Slot
from ._outcome import outcome_of
from ._version import __version__

__all__ = ["CallTrace", "Telemetry"]

ENDPOINT: Final = "okx_grid.endpoint"
OUTCOME: Final = "okx_grid.outcome"
CODE: Final = "okx_grid.code"
REASON: Final = "okx_grid.retry.reason"
ATTEMPT: Final = "okx_grid.attempt"
WS_CHANNEL: Final = "okx_grid.ws.channel"
WS_REASON: Final = "okx_grid.ws.reason"
_SCOPE: Final = "okx_grid_async"
# The API's own providers (its no-ops, its proxies for a global not set yet) live in
# these packages; an SDK's, or any other implementation's, elsewhere.
_API_PACKAGES: Final = ("opentelemetry.metrics", "opentelemetry.trace")
# Whether this API keeps its global providers where `global_provider_set` reads them:
# if not, every call records, as if an SDK were configured.
_CAN_TELL: Final = hasattr(metrics_api, "_METER_PROVIDER") and hasattr(trace, "_TRACER_PROVIDER")


def global_provider_set() -> bool:
    """Whether the application has set a global meter or tracer provider.

    Read from the API's module globals: ``get_meter_provider()`` costs about 2 µs
    per call while none is set (it looks the environment up each time), which
    is half of what skipping the recording saves.
    """
    return metrics_api._METER_PROVIDER is not None or trace._TRACER_PROVIDER is not None


def may_record(provider: object | None) -> bool:
    """Whether ``provider``, given to a client, may record whatever the global providers are.

    None, or one of the API's own providers, records only through a global one.
    """
    return provider is not None and not type(provider).__module__.startswith(_API_PACKAGES)


class Telemetry:
    """The instruments of one client, and a `CallTrace` per call."""

    __slots__ = (
        "_by_endpoint",
        "_by_outcome",
        "_by_reason",
        "_by_ws_reason",
        "_live",
        "clock",
        "queue",
        "request_duration",
        "requests",
        "retries",
        "tracer",
        "wait_duration",
        "ws_reconnects",
    )

    def __init__(
        self,
        clock: Clock,
        meter_provider: metrics.MeterProvider | None,
        tracer_provider: trace.TracerProvider | None,
    ) -> None:
        self.clock = clock
        meter = metrics.get_meter(_SCOPE, __version__, meter_provider)
        self.tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider)
        self.wait_duration = meter.create_histogram(
            "okx_grid.limiter.wait.duration",
            unit="s",
            description="Time a request waited in the rate limiter's queue for its slot.",
        )
        self.queue = meter.create_up_down_counter(
            "okx_grid.limiter.queue",
            unit="{request}",
            description="Requests waiting in the rate limiter's queue.",
        )
        self.requests = meter.create_counter(
            "okx_grid.requests",
            unit="{request}",
            description="Requests granted a rate-limit slot, by outcome.",
        )
        self.request_duration = meter.create_histogram(
            "okx_grid.request.duration",
            unit="s",
            description="Time from the grant of a rate-limit slot to the answer.",
        )
        self.retries = meter.create_counter(
            "okx_grid.retries",
            unit="{retry}",
            description="Requests sent again after a failed attempt, by reason.",
        )
        self.ws_reconnects = meter.create_counter(
            "okx_grid.ws.reconnects",
            unit="{reconnect}",
            description="WebSocket connections of a stream replaced by a new one, by reason.",
        )
        self._by_endpoint: dict[str, dict[str, str]] = {}
        self._by_outcome: dict[tuple[str, str, str], dict[str, str]] = {}
        self._by_reason: dict[tuple[str, str], dict[str, str]] = {}
        self._by_ws_reason: dict[tuple[str, str], dict[str, str]] = {}
        # Once True, for good: providers are given once, and a global one is set once.
        self._live = not _CAN_TELL or may_record(meter_provider) or may_record(tracer_provider)

    def begin(self, method: str, path: str) -> CallTrace | None:
        """Start the span of one call, current until `CallTrace.end`.

        None, and nothing recorded for the call, while no provider that can record
        is in place (see the module's documentation).
        """
        if not self._live:
            if not global_provider_set():
                return None
            self._live = True
        endpoint = self._by_endpoint.get(path)
        if endpoint is None:
            endpoint = self._by_endpoint[path] = {ENDPOINT: path}
        span = self.tracer.start_span(
            path,
            kind=trace.SpanKind.CLIENT,
            attributes={ENDPOINT: path, "http.request.method": method},
        )
        # A span that records nothing (no SDK configured) carries the caller's context
        # already: making it current, and building its events, would be work for nothing.
        token = context.attach(trace.set_span_in_context(span)) if span.is_recording() else None
        return CallTrace(self, method, path, endpoint, span, token)

    def outcome_attributes(self, path: str, outcome: str, code: str) -> dict[str, str]:
        key = (path, outcome, code)
        attributes = self._by_outcome.get(key)
        if attributes is None:
            attributes = {ENDPOINT: path, OUTCOME: outcome}
            if code:
                attributes[CODE] = code
            self._by_outcome[key] = attributes
        return attributes

    def reason_attributes(self, path: str, reason: str) -> dict[str, str]:
        key = (path, reason)
        attributes = self._by_reason.get(key)
        if attributes is None:
            attributes = self._by_reason[key] = {ENDPOINT: path, REASON: reason}
        return attributes

    def ws_reconnected(self, channel: str, reason: str) -> None:
        """Count one reconnect of a stream on ``channel`` (``grid-positions``...) for ``reason``."""
        key = (channel, reason)
        attributes = self._by_ws_reason.get(key)
        if attributes is None:
            attributes = self._by_ws_reason[key] = {WS_CHANNEL: channel, WS_REASON: reason}
        self.ws_reconnects.add(1, attributes)


class CallTrace:
    """What one call records: its wait for each slot, each attempt, its retries, its end."""

    __slots__ = ("_endpoint", "_granted_at", "_method", "_path", "_span", "_telemetry", "_token")

    def __init__(
        self,
        telemetry: Telemetry,
        method: str,
        path: str,
        endpoint: Attributes,
        span: trace.Span,
        token: Token[Context] | None,
    ) -> None:
        self._telemetry = telemetry
        self._method = method
        self._path = path
        self._endpoint = endpoint
        self._span = span
        self._token = token  # None: the span records nothing, so no events are built
        self._granted_at: float | None = None  # set while an attempt is under way

    async def wait(self, slot: Slot) -> None:
        """Queue for ``slot``: counted in the queue meanwhile, the wait recorded once granted."""
        telemetry = self._telemetry
        telemetry.queue.add(1, self._endpoint)
        started = telemetry.clock.monotonic()
        try:
            await slot.__aenter__()
        finally:
            telemetry.queue.add(-1, self._endpoint)
        granted = self._granted_at = telemetry.clock.monotonic()
        waited = granted - started
        telemetry.wait_duration.record(waited, self._endpoint)
        if self._token is not None:
            self._span.add_event("okx_grid.limiter.wait", {"okx_grid.wait.duration": waited})

    def answered(self, error: OKXError | None) -> None:
        """Record the attempt under way: its outcome, its OKX code and its duration."""
        granted, self._granted_at = self._granted_at, None
        if granted is None:
            return
        telemetry = self._telemetry
        duration = telemetry.clock.monotonic() - granted
        outcome, code = outcome_of(self._method, error)
        attributes = telemetry.outcome_attributes(self._path, outcome, code)
        telemetry.requests.add(1, attributes)
        telemetry.request_duration.record(duration, attributes)
        if self._token is None:
            return
        event: dict[str, str | float] = {OUTCOME: outcome, "okx_grid.request.duration": duration}
        if code:
            event[CODE] = code
        self._span.add_event(ATTEMPT, event)

    def retry(self, reason: str) -> None:
        """Count a retry about to be made, after an attempt that failed for ``reason``."""
        self._telemetry.retries.add(1, self._telemetry.reason_attributes(self._path, reason))

    def end(self, error: BaseException | None) -> None:
        """End the span: an attempt under way ends with ``error``; any error sets ERROR status.

        A cancelled attempt is not counted: it has no outcome.
        """
        span = self._span
        try:
            if isinstance(error, OKXError):
                self.answered(error)
            if isinstance(error, Exception):
                # Not record_exception(): an OutcomeUnknownError's text names the algo id.
                span.set_attribute("error.type", type(error).__name__)
                description = (
                    f"outcome unknown: {error.reason}"
                    if isinstance(error, OutcomeUnknownError)
                    else f"{type(error).__name__}: {error}"
                )
                span.set_status(trace.Status(trace.StatusCode.ERROR, description))
        finally:
            if self._token is not None:
                context.detach(self._token)
            span.end()
