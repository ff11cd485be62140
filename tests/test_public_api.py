"""The public surface: exactly the names the package promises, each importable and documented."""

from __future__ import annotations

import inspect
import subprocess
import sys

import okx_grid_async
from okx_grid_async import OKXError

EXPECTED = {
    # client, credentials, results
    "GridClient", "Credentials", "GridPosition", "ClosePositionResult",
    "CancelCloseOrderResult", "GridOrder", "SweepResult", "CloseReconciliation",
    "Instrument",
    # rate limiting and time
    "RateLimiter", "LocalRateLimiter", "RedisRateLimiter", "LimiterStats",
    "default_rate_limiter", "Clock", "SystemClock", "FakeClock",
    # hosts
    "GLOBAL_URL", "US_URL", "EEA_URL", "OPENAPI_URL",
    # errors
    "OKXError", "OKXAPIError", "RateLimitError", "ServiceUnavailableError",
    "EndpointTimeoutError", "ParameterError", "OrderNotFoundError", "AuthenticationError",
    "TimestampExpiredError", "GridError", "NoPositionError", "GridStateError",
    "GridStoppingError", "GridNotFoundError", "ClosingNotAllowedError",
    "ClosingOrderExistsError", "NotGridPolicyError", "HTTPStatusError",
    "MalformedResponseError", "TransportError", "DeadlineExceededError",
    "RateLimiterUnavailableError", "OutcomeUnknownError", "InvalidArgumentError",
    "NotSentError", "WaitTimeoutError", "ResponseTooLargeError",
    "__version__",
}  # fmt: skip


def test_exported_names_are_exactly_the_public_ones() -> None:
    assert set(okx_grid_async.__all__) == EXPECTED
    assert list(okx_grid_async.__all__) == sorted(okx_grid_async.__all__, key=_ruff_order)


def _ruff_order(name: str) -> tuple[int, str]:
    # ruff's RUF022 order: SCREAMING_CASE, then CamelCase, then the rest.
    if name.isupper():
        return (0, name)
    if name[0].isupper():
        return (1, name)
    return (2, name)


def test_every_export_is_importable_and_documented() -> None:
    for name in okx_grid_async.__all__:
        value = getattr(okx_grid_async, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"{name} has no docstring"


def test_every_exception_is_under_okx_error() -> None:
    errors = [
        getattr(okx_grid_async, n)
        for n in okx_grid_async.__all__
        if n.endswith("Error") and inspect.isclass(getattr(okx_grid_async, n))
    ]
    assert len(errors) == 27
    for cls in errors:
        assert issubclass(cls, OKXError), cls


def test_the_package_imports_without_redis_installed() -> None:
    code = (
        "import sys; sys.modules['redis'] = None; sys.modules['redis.asyncio'] = None\n"
        "import okx_grid_async\n"
        "try:\n"
        "    okx_grid_async.RedisRateLimiter('redis://127.0.0.1:1/0')\n"
        "except ImportError as exc:\n"
        "    print('ImportError:', exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "okx-grid-async[redis]" in out.stdout
