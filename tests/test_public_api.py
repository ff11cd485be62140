"""The public surface: exactly the names the package promises, each importable and documented."""

from __future__ import annotations

import importlib.metadata
import inspect
import pickle
import re
import subprocess
import sys
import tomllib
import traceback
import typing
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
import pytest

import okx_grid_async
import okx_grid_async.simulator
import okx_grid_async.testing
from okx_grid_async import (
    GridNotFoundError,
    GridPosition,
    InvalidArgumentError,
    OKXError,
    _errors,
)

ROOT = Path(__file__).resolve().parent.parent

EXPECTED = {
    # client, credentials, results
    "GridClient", "Credentials", "GridPosition", "ClosePositionResult",
    "CancelCloseOrderResult", "GridOrder", "SweepResult", "CloseReconciliation",
    "Instrument",
    # streams
    "WatchStream", "WatchFailure", "WatchStats",
    # rate limiting and time
    "RateLimiter", "LocalRateLimiter", "RedisRateLimiter", "LimiterStats",
    "default_rate_limiter", "Clock", "SystemClock", "GridEndpoint",
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
    "NotSentError", "WaitTimeoutError", "ResponseTooLargeError", "LoginRefusedError",
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


PACKAGES = [okx_grid_async, okx_grid_async.simulator, okx_grid_async.testing]


def _published(package: ModuleType) -> list[tuple[str, object]]:
    """The classes and functions a package exports."""
    return [
        (name, value)
        for name in package.__all__
        if inspect.isclass(value := getattr(package, name)) or inspect.isfunction(value)
    ]


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_every_export_names_its_package_as_its_module(package: ModuleType) -> None:
    exported = _published(package)
    assert len(exported) >= 10
    assert {name: getattr(value, "__module__", None) for name, value in exported} == {
        name: package.__name__ for name, _ in exported
    }


@pytest.mark.parametrize(
    "error",
    [GridNotFoundError("51293", "Algo order does not exist", 200), InvalidArgumentError("bad")],
    ids=type,
)
def test_a_traceback_shows_the_public_path(error: OKXError) -> None:
    try:
        raise error
    except OKXError as exc:
        shown = traceback.format_exc().splitlines()[-1]
        repeated = pickle.loads(pickle.dumps(exc))  # noqa: S301 (bytes pickled just above)
    assert shown == f"okx_grid_async.{type(error).__name__}: {error}"
    assert type(repeated) is type(error)  # pickle finds the class by that path too
    assert repeated.args == error.args


@pytest.mark.parametrize(
    "cls",
    [v for p in PACKAGES for _, v in _published(p) if inspect.isclass(v)],
    ids=lambda c: c.__name__,
)
def test_published_classes_still_resolve_their_annotations(cls: type) -> None:
    """The package does not hold Decimal or datetime: annotations were resolved before moving."""
    typing.get_type_hints(cls)
    if issubclass(cls, msgspec.Struct):
        msgspec.inspect.type_info(cls)


def test_a_position_round_trips_through_msgspec() -> None:
    """What a bot that stores positions as JSON does: decode needs the resolved annotations."""
    fields = msgspec.structs.fields(GridPosition)
    empty: dict[str, Any] = {f.name: "" if f.type is str else None for f in fields}
    position = GridPosition(**empty)
    position = msgspec.structs.replace(
        position, pos=Decimal("-35"), c_time=datetime(2026, 11, 30, tzinfo=UTC)
    )
    assert msgspec.json.decode(msgspec.json.encode(position), type=GridPosition) == position


def test_every_exception_is_under_okx_error() -> None:
    errors = [
        getattr(okx_grid_async, n)
        for n in okx_grid_async.__all__
        if n.endswith("Error") and inspect.isclass(getattr(okx_grid_async, n))
    ]
    assert len(errors) == 28
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
    """Only RedisRateLimiter needs redis, and it says which extra brings it."""
    code = (
        "import sys; sys.modules['redis'] = None; sys.modules['redis.asyncio'] = None\n"
        "import okx_grid_async\n"
        "try:\n"
        "    okx_grid_async.RedisRateLimiter('redis://127.0.0.1:1/0')\n"
        "except ImportError as exc:\n"
        "    print('ImportError:', exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=ROOT,
    )
    assert out.stdout == (
        "ImportError: RedisRateLimiter needs the redis package: install okx-grid-async[redis]\n"
    )


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
