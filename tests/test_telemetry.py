"""OpenTelemetry (issue 15): every instrument's counts and attributes, the spans, the hooks.

The SDK's in-memory reader and span exporter watch a client driven against the
simulator through a known mix of calls; a subprocess without ``opentelemetry``
shows that the client then works and imports nothing of it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from okx_grid_async import (
    DeadlineExceededError,
    EndpointTimeoutError,
    GridNotFoundError,
    HTTPStatusError,
    LocalRateLimiter,
    NotSentError,
    OKXError,
    OutcomeUnknownError,
    RateLimitError,
    TransportError,
)
from okx_grid_async._constants import GRID_CLOSE_POSITION_PATH, GRID_POSITIONS_PATH
from okx_grid_async._otel import may_record
from okx_grid_async._outcome import OUTCOMES, outcome_of
from okx_grid_async.simulator import FaultKind, GridSimulator, SimAccount

from .conftest import ClientFactory

POS, CLOSE = GRID_POSITIONS_PATH, GRID_CLOSE_POSITION_PATH
POLLS, CLOSES = 3, 2
ALLOWED_KEYS = {"okx_grid.endpoint", "okx_grid.outcome", "okx_grid.code", "okx_grid.retry.reason"}

Attrs = frozenset[tuple[str, object]]

# The contract of issue 15: each instrument's name, kind and unit.
INSTRUMENTS = {
    "okx_grid.limiter.wait.duration": ("histogram", "s"),
    "okx_grid.limiter.queue": ("up-down counter", "{request}"),
    "okx_grid.requests": ("counter", "{request}"),
    "okx_grid.request.duration": ("histogram", "s"),
    "okx_grid.retries": ("counter", "{retry}"),
    "okx_grid.ws.reconnects": ("counter", "{reconnect}"),
}
OBSERVABILITY_PAGE = Path(__file__).parent.parent / "docs" / "observability.md"


@dataclass
class Otel:
    reader: InMemoryMetricReader
    exporter: InMemorySpanExporter
    meter_provider: MeterProvider
    tracer_provider: TracerProvider

    def points(self) -> dict[str, tuple[str, dict[Attrs, object]]]:
        """Each instrument's unit and, per attribute set, its sum or its histogram count."""
        data = self.reader.get_metrics_data()
        assert data is not None
        found: dict[str, tuple[str, dict[Attrs, object]]] = {}
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                assert scope.scope.name == "okx_grid_async"
                for metric in scope.metrics:
                    values: dict[Attrs, object] = {}
                    for point in metric.data.data_points:
                        key = frozenset((point.attributes or {}).items())
                        if isinstance(point, HistogramDataPoint):
                            values[key] = point.count
                        else:
                            assert isinstance(point, NumberDataPoint)
                            values[key] = point.value
                    found[metric.name] = (metric.unit or "", values)
        return found


@pytest.fixture
def otel() -> Iterator[Otel]:
    reader = InMemoryMetricReader()
    exporter = InMemorySpanExporter()
    meters = MeterProvider(metric_readers=[reader])
    tracers = TracerProvider()
    tracers.add_span_processor(SimpleSpanProcessor(exporter))
    yield Otel(reader, exporter, meters, tracers)
    meters.shutdown()
    tracers.shutdown()


def _attrs(**named: str) -> Attrs:
    return frozenset((f"okx_grid.{k.replace('_', '.')}", v) for k, v in named.items())


async def test_every_instrument_counts_polls_closes_a_50011_and_an_unknown_outcome(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory, otel: Otel
) -> None:
    polled = sim.add_grid(account.user_id)
    closed = [sim.add_grid(account.user_id) for _ in range(CLOSES)]
    hung = sim.add_grid(account.user_id)
    sim.inject_fault(FaultKind.RATE_LIMIT_50011, POS)  # the first poll is retried once
    async with make_client(
        meter_provider=otel.meter_provider, tracer_provider=otel.tracer_provider
    ) as client:
        for _ in range(POLLS):
            await client.get_positions(polled.algo_id)
        for grid in closed:
            await client.close_position(grid.algo_id, mkt_close=True)
        sim.inject_fault(FaultKind.APPLY_THEN_HANG, CLOSE)
        with pytest.raises(OutcomeUnknownError):
            await client.close_position(hung.algo_id, mkt_close=True, timeout=0.3)

    pos_ok = _attrs(endpoint=POS, outcome="ok")
    pos_50011 = _attrs(endpoint=POS, outcome="rate_limited", code="50011")
    close_ok = _attrs(endpoint=CLOSE, outcome="ok")
    close_unknown = _attrs(endpoint=CLOSE, outcome="unknown")
    by_outcome = {pos_ok: POLLS, pos_50011: 1, close_ok: CLOSES, close_unknown: 1}
    # One slot per attempt: the polls' POLLS + 1, the closes' CLOSES + 1.
    waits = {_attrs(endpoint=POS): POLLS + 1, _attrs(endpoint=CLOSE): CLOSES + 1}
    expected = {
        "okx_grid.limiter.wait.duration": waits,
        "okx_grid.limiter.queue": {_attrs(endpoint=POS): 0, _attrs(endpoint=CLOSE): 0},
        "okx_grid.requests": by_outcome,
        "okx_grid.request.duration": by_outcome,
        "okx_grid.retries": {_attrs(endpoint=POS, retry_reason="rate_limited"): 1},
    }
    assert otel.points() == {
        name: (INSTRUMENTS[name][1], values) for name, values in expected.items()
    }
    secrets = {account.user_id, account.api_key, polled.algo_id, hung.algo_id}
    secrets.update(g.algo_id for g in closed)
    for _, values in otel.points().values():
        for attributes in values:
            assert {k for k, _ in attributes} <= ALLOWED_KEYS
            assert not {str(v) for _, v in attributes} & secrets

    spans = otel.exporter.get_finished_spans()
    assert Counter(s.name for s in spans) == {POS: POLLS, CLOSE: CLOSES + 1}
    first_poll, unknown_close = spans[0], spans[-1]
    assert _events(first_poll) == [
        ("okx_grid.limiter.wait", None, None),
        ("okx_grid.attempt", "rate_limited", "50011"),
        ("okx_grid.limiter.wait", None, None),
        ("okx_grid.attempt", "ok", None),
    ]
    assert first_poll.status.status_code is StatusCode.UNSET
    assert _events(unknown_close) == [
        ("okx_grid.limiter.wait", None, None),
        ("okx_grid.attempt", "unknown", None),
    ]
    assert unknown_close.status.status_code is StatusCode.ERROR
    assert (
        unknown_close.status.description == "outcome unknown: no answer within the 0.3 s deadline"
    )
    for span in spans:
        assert span.attributes is not None
        assert not {str(v) for v in span.attributes.values()} & secrets
        assert span.attributes["okx_grid.endpoint"] == span.name


def _events(span: ReadableSpan) -> list[tuple[str, object, object]]:
    return [
        (
            e.name,
            (e.attributes or {}).get("okx_grid.outcome"),
            (e.attributes or {}).get("okx_grid.code"),
        )
        for e in span.events
    ]


@pytest.mark.parametrize(
    ("method", "error", "expected"),
    [
        ("GET", None, ("ok", "")),
        ("GET", RateLimitError("50011", "too many", 429), ("rate_limited", "50011")),
        ("POST", RateLimitError("50011", "too many", 429), ("rate_limited", "50011")),
        ("GET", GridNotFoundError("51289", "no grid", 200), ("api_error", "51289")),
        ("GET", EndpointTimeoutError("50004", "timeout", 200), ("api_error", "50004")),
        ("POST", EndpointTimeoutError("50004", "timeout", 200), ("unknown", "50004")),
        ("GET", TransportError("reset", sent=True), ("transport_error", "")),
        ("POST", TransportError("refused", sent=False), ("transport_error", "")),
        ("POST", TransportError("reset", sent=True), ("unknown", "")),
        ("POST", OutcomeUnknownError("1", {}, "no answer"), ("unknown", "")),
        ("GET", DeadlineExceededError("late"), ("deadline", "")),
        ("POST", NotSentError(CLOSE, "too late to send"), ("deadline", "")),
        ("GET", HTTPStatusError(502, "bad gateway"), ("api_error", "")),
    ],
)
def test_outcome_of_each_kind_of_failure(
    method: str, error: OKXError | None, expected: tuple[str, str]
) -> None:
    assert outcome_of(method, error) == expected
    assert expected[0] in OUTCOMES


async def test_a_retry_logs_one_info_line_with_nothing_secret(
    sim: GridSimulator,
    account: SimAccount,
    make_client: ClientFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    grid = sim.add_grid(account.user_id)
    sim.inject_fault(FaultKind.RATE_LIMIT_50011, POS)
    with caplog.at_level(logging.INFO, logger="okx_grid_async"):
        async with make_client() as client:
            await client.get_positions(grid.algo_id)
    (line,) = [r for r in caplog.records if r.levelno == logging.INFO]
    assert line.name == "okx_grid_async"
    assert line.getMessage().startswith(
        f"GET {POS} attempt 1 failed (rate_limited 50011, RateLimitError); retrying in "
    )
    text = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (account.api_key, account.secret_key, account.passphrase, account.user_id):
        assert secret not in text


async def test_trace_configs_reach_the_session_the_client_creates(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id)
    started: list[str] = []

    async def on_request_start(
        session: aiohttp.ClientSession,
        context: object,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        started.append(params.url.path)

    hooks = aiohttp.TraceConfig()
    hooks.on_request_start.append(on_request_start)
    async with make_client(trace_configs=[hooks]) as client:
        await client.get_positions(grid.algo_id)
    assert started[-1] == POS


async def test_the_call_s_span_is_current_in_the_aiohttp_hooks(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory, otel: Otel
) -> None:
    """So an aiohttp instrumentation's spans are children of the call's."""
    grid = sim.add_grid(account.user_id)
    seen: list[str] = []  # the current span's name at each request ("" for none)

    async def on_request_start(
        session: aiohttp.ClientSession,
        context: object,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        current = trace.get_current_span()
        seen.append(current.name if isinstance(current, ReadableSpan) else "")

    hooks = aiohttp.TraceConfig()
    hooks.on_request_start.append(on_request_start)
    async with make_client(tracer_provider=otel.tracer_provider, trace_configs=[hooks]) as client:
        await client.get_positions(grid.algo_id)
    assert seen == ["", POS]  # reading OKX's clock on opening is no call of its own
    assert trace.get_current_span() is trace.INVALID_SPAN  # detached after the call


async def test_a_borrowed_session_keeps_its_own_trace_configs(make_client: ClientFactory) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ValueError, match="borrowed session keeps its own"):
            make_client(session=session, trace_configs=[aiohttp.TraceConfig()])


def test_without_opentelemetry_the_client_works_and_imports_none_of_it() -> None:
    program = textwrap.dedent(
        """
        import asyncio, sys
        sys.modules["opentelemetry"] = None  # as if the otel extra were not installed

        from okx_grid_async import Credentials, GridClient, LocalRateLimiter
        from okx_grid_async.simulator import GridSimulator

        async def main() -> None:
            async with GridSimulator() as sim:
                account = sim.add_account()
                grid = sim.add_grid(account.user_id)
                creds = Credentials(account.api_key, account.secret_key, account.passphrase)
                async with GridClient(
                    creds, base_url=sim.url, user_id=account.user_id,
                    rate_limiter=LocalRateLimiter(),
                ) as client:
                    assert client._transport._telemetry is None
                    (position,) = await client.get_positions(grid.algo_id)
                    assert position.algo_id == grid.algo_id

        asyncio.run(main())
        loaded = sorted(
            name for name, module in sys.modules.items()
            if module is not None and (name.startswith("opentelemetry") or name.endswith("_otel"))
        )
        print(loaded)
        """
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", program],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_docs_metric_table_is_the_contract() -> None:
    rows = re.findall(
        r"^\| `(okx_grid\.[a-z._]+)` \| ([a-z -]+) \| (\S+) \|",
        OBSERVABILITY_PAGE.read_text(encoding="utf-8"),
        re.MULTILINE,
    )
    assert {name: (kind, unit) for name, kind, unit in rows} == INSTRUMENTS


async def test_the_queue_counts_the_calls_waiting_for_a_slot(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory, otel: Otel
) -> None:
    grid = sim.add_grid(account.user_id)
    queue = frozenset({("okx_grid.endpoint", POS)})
    async with make_client(
        rate_limiter=LocalRateLimiter(max_rate=1, time_period=0.5),
        meter_provider=otel.meter_provider,
    ) as client:
        calls = [asyncio.create_task(client.get_positions(grid.algo_id)) for _ in range(3)]
        await calls[0]  # the other two wait half a second for the budget's next slot
        assert otel.points()["okx_grid.limiter.queue"] == ("{request}", {queue: 2})
        await asyncio.gather(*calls)
    assert otel.points()["okx_grid.limiter.queue"] == ("{request}", {queue: 0})
    assert otel.points()["okx_grid.limiter.wait.duration"][1] == {queue: 3}


def test_by_default_the_client_records_through_the_global_providers() -> None:
    program = textwrap.dedent(
        """
        import asyncio
        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        from okx_grid_async import Credentials, GridClient, LocalRateLimiter
        from okx_grid_async.simulator import GridSimulator

        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

        async def main() -> None:
            async with GridSimulator() as sim:
                account = sim.add_account()
                grid = sim.add_grid(account.user_id)
                creds = Credentials(account.api_key, account.secret_key, account.passphrase)
                async with GridClient(
                    creds, base_url=sim.url, user_id=account.user_id,
                    rate_limiter=LocalRateLimiter(),
                ) as client:
                    await client.get_positions(grid.algo_id)

        asyncio.run(main())
        data = reader.get_metrics_data()
        print(sorted(m.name for r in data.resource_metrics for s in r.scope_metrics
                     for m in s.metrics))
        """
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", program],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # A retry and a reconnect are counted only when they happen; none did here.
    unrecorded = {"okx_grid.retries", "okx_grid.ws.reconnects"}
    assert done.stdout.strip() == str(sorted(INSTRUMENTS.keys() - unrecorded))


def test_an_sdk_configured_after_the_client_was_built_still_records() -> None:
    """Before any SDK, a call records nothing (and costs no span); set one, and the next records."""
    program = textwrap.dedent(
        """
        import asyncio
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        from okx_grid_async import Credentials, GridClient, LocalRateLimiter
        from okx_grid_async.simulator import GridSimulator

        reader, exporter = InMemoryMetricReader(), InMemorySpanExporter()

        def configure_the_sdk() -> None:
            metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
            tracers = TracerProvider()
            tracers.add_span_processor(SimpleSpanProcessor(exporter))
            trace.set_tracer_provider(tracers)

        async def main() -> None:
            async with GridSimulator() as sim:
                account = sim.add_account()
                grid = sim.add_grid(account.user_id)
                creds = Credentials(account.api_key, account.secret_key, account.passphrase)
                async with GridClient(
                    creds, base_url=sim.url, user_id=account.user_id,
                    rate_limiter=LocalRateLimiter(),
                ) as client:
                    telemetry = client._transport._telemetry
                    await client.get_positions(grid.algo_id)
                    print("before:", telemetry.begin("GET", "/probe") is None)
                    configure_the_sdk()
                    await client.get_positions(grid.algo_id)
                    await client.get_positions(grid.algo_id)

        asyncio.run(main())
        data = reader.get_metrics_data()
        points = {
            m.name: sum(getattr(p, "count", getattr(p, "value", 0)) for p in m.data.data_points)
            for r in data.resource_metrics for s in r.scope_metrics for m in s.metrics
        }
        print("requests:", points["okx_grid.requests"])
        print("spans:", [s.name for s in exporter.get_finished_spans()])
        """
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", program],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "before: True",  # no SDK yet: the call is not traced at all
        "requests: 2",  # the two calls made after the SDK was set, not the one before
        f"spans: {[POS, POS]}",
    ]


@pytest.mark.parametrize(
    ("provider", "records"),
    [
        (None, False),  # the global one decides
        (metrics.NoOpMeterProvider(), False),
        (metrics.get_meter_provider(), False),  # the API's proxy while no global is set
        (trace.NoOpTracerProvider(), False),
        (trace.ProxyTracerProvider(), False),
        (MeterProvider(), True),
        (TracerProvider(), True),
    ],
)
def test_only_a_provider_of_an_sdk_records_without_a_global_one(
    provider: object, records: bool
) -> None:
    assert may_record(provider) is records
    if isinstance(provider, MeterProvider | TracerProvider):
        provider.shutdown()
