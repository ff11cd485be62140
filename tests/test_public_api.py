"""The public surface: exactly the names the package promises, each importable and documented."""

from __future__ import annotations

import importlib.metadata
import inspect
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import okx_grid_async
import okx_grid_async.testing
from okx_grid_async import OKXError, _errors

ROOT = Path(__file__).resolve().parent.parent

EXPECTED = {
    # client, credentials, results
    "GridClient", "Credentials", "GridPosition", "ClosePositionResult",
    "CancelCloseOrderResult", "GridOrder", "SweepResult", "CloseReconciliation",
    "Instrument",
    # rate limiting and time
    "RateLimiter", "LocalRateLimiter", "RedisRateLimiter", "LimiterStats",
    "default_rate_limiter", "Clock", "SystemClock",
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


def test_the_version_is_pyproject_s_as_installed() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert okx_grid_async.__version__ == importlib.metadata.version("okx-grid-async")
    assert okx_grid_async.__version__ == pyproject["project"]["version"]


def test_the_version_is_written_nowhere_else() -> None:
    version = re.escape(okx_grid_async.__version__)
    written = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "okx_grid_async").rglob("*.py")
        if re.search(rf"[\"']{version}[\"']", path.read_text(encoding="utf-8"))
    ]
    assert written == []


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


def test_every_exception_is_defined_in_the_errors_module() -> None:
    """One module holds the whole tree, drawn in its docstring (as httpx's _exceptions.py)."""
    exported = {
        name
        for name in okx_grid_async.__all__
        if isinstance(cls := getattr(okx_grid_async, name), type) and issubclass(cls, OKXError)
    }
    assert exported <= set(_errors.__all__)
    for name in exported:
        assert getattr(_errors, name) is getattr(okx_grid_async, name)
        assert re.search(rf"\b{name}\b", _errors.__doc__ or ""), f"{name} is not in the tree"


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


def test_fake_clock_lives_in_the_testing_module() -> None:
    assert "FakeClock" in okx_grid_async.testing.__all__
    assert "FakeClock" not in okx_grid_async.__all__


def test_the_old_fake_clock_name_still_works_with_a_deprecation_warning() -> None:
    with pytest.warns(DeprecationWarning, match=r"okx_grid_async\.testing"):
        old = okx_grid_async.FakeClock
    assert old is okx_grid_async.testing.FakeClock


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchName"):
        okx_grid_async.NoSuchName  # noqa: B018


def test_the_library_does_not_import_pytest() -> None:
    code = (
        "import sys; sys.modules['pytest'] = None\n"
        "import okx_grid_async, okx_grid_async.simulator, okx_grid_async.testing\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout == "ok\n"
