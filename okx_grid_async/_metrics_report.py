"""``okx-grid ... --metrics``: the figures of a run, printed when it ends.

Through the OpenTelemetry SDK's in-memory reader when ``opentelemetry-sdk`` is
installed (the same instruments a service exports, see Observability), else
from the rate limiter's own counters, per endpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from ._constants import GRID_ENDPOINT_PATHS, GridEndpoint

if TYPE_CHECKING:
    from ._client import GridClient

__all__ = ["MetricsReport"]

_ENDPOINTS: Final[tuple[GridEndpoint, ...]] = (
    "orders-algo-pending",
    "orders-algo-history",
    "positions",
    "close-position",
    "cancel-close-order",
)


class MetricsReport:
    """A meter provider for the run's client (None without the SDK), and the report at its end."""

    __slots__ = ("_reader", "meter_provider")

    def __init__(self) -> None:
        self.meter_provider: Any = None
        self._reader: Any = None
        try:
            from opentelemetry.sdk.metrics import MeterProvider
            from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        except ImportError:
            return
        self._reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self._reader])

    def render(self, client: GridClient) -> str:
        """The report's lines: one per instrument and attribute set, or per endpoint used."""
        if self._reader is None:
            return self._limiter_figures(client)
        lines = ["metrics (OpenTelemetry):"]
        data = self._reader.get_metrics_data()
        self.meter_provider.shutdown()
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        labels = ",".join(
                            f"{k.removeprefix('okx_grid.')}={v}"
                            for k, v in sorted((point.attributes or {}).items())
                        )
                        if hasattr(point, "count"):  # a histogram: its count and sum
                            value = f"count={point.count} sum={point.sum:.6f} {metric.unit}"
                        else:
                            value = f"{point.value} {metric.unit}"
                        lines.append(f"  {metric.name}{{{labels}}} {value}")
        return "\n".join(lines)

    @staticmethod
    def _limiter_figures(client: GridClient) -> str:
        lines = ["metrics (rate limiter; install opentelemetry-sdk for all of them):"]
        for endpoint in _ENDPOINTS:
            stats = client.limiter_stats(endpoint)
            if stats.granted:
                lines.append(
                    f"  {GRID_ENDPOINT_PATHS[endpoint]}: granted={stats.granted} "
                    f"waited={stats.waited:.6f} s "
                    f"rejections={stats.rejections} max_waiting={stats.max_waiting}"
                )
        return "\n".join(lines)
