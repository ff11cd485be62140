"""The pytest plugin: ``okx_`` fixtures over a real simulator, the ``okx`` marker, strict teardown.

Registered through the ``pytest11`` entry point ``okx_grid_async``, so it is
active wherever the package is installed; ``-p no:okx_grid_async`` turns it
off. Nothing happens unless a test asks for a fixture:

- ``okx_simulator``: a started `GridSimulator`, closed at teardown;
- ``okx_account``: an account (one API key) on it;
- ``okx_client``: an open `GridClient` for that account, with a limiter of
  its own, so that tests never share a budget by accident.

``@pytest.mark.okx(...)`` configures the simulator (see `OkxOptions`). At
teardown, unless the marker says ``strict=False``, the test fails when the
simulator saw a rate-limit violation or a duplicate close (see
`assert_no_rate_limit_violations()` and `assert_no_duplicate_closes()`).

The fixtures are pytest-asyncio fixtures: they work in its strict and auto
modes, on the event loop of ``asyncio_default_fixture_loop_scope``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, fields
from typing import Any, Final

import pytest

from okx_grid_async._client import GridClient
from okx_grid_async._constants import GRID_MAX_RATE, GRID_TIME_PERIOD
from okx_grid_async._credentials import Credentials
from okx_grid_async._limiter import LocalRateLimiter
from okx_grid_async.simulator import FaultKind, GridSimulator, SimAccount
from okx_grid_async.testing._assertions import duplicate_close_problems, rate_limit_problems
from okx_grid_async.testing._scenario import fail_next

__all__ = ["OkxOptions", "okx_account", "okx_client", "okx_simulator"]

MARKER: Final = "okx"
_MARKER_HELP: Final = (
    "okx(*, max_rate=20, time_period=2.0, latency=0.0, seed=None, faults=(), "
    "enforce_limits=True, strict=True): configure the okx_simulator fixture of "
    "okx-grid-async; strict=False skips its teardown checks (rate limit, duplicate closes)"
)
# The client's per-call deadline in the fixture: long enough for a latency marker.
_CLIENT_TIMEOUT: Final = 30.0
_NO_PYTEST_ASYNCIO: Final = (
    "the {name} fixture needs pytest-asyncio: pip install 'okx-grid-async[testing]'. "
    "With anyio instead, start a GridSimulator in a fixture of your own and call "
    "okx_grid_async.testing's assertions after the test (see the docs' Testing your bot)"
)


@dataclass(frozen=True, kw_only=True)
class OkxOptions:
    """What ``@pytest.mark.okx(...)`` may set, and the defaults without it.

    Attributes:
        max_rate: Requests accepted per (user, grid endpoint) per window.
        time_period: The window, in seconds.
        latency: Seconds every private request waits before it is executed.
        seed: Seed of the simulator's ids and price moves.
        faults: Faults injected before the test: ``(endpoint, kind)``,
            ``(endpoint, kind, count)`` or ``(endpoint, kind, count, delay)``,
            each as `fail_next()` takes them.
        enforce_limits: ``False``: the simulator rejects nothing for rate (the
            strict teardown still counts the windows).
        strict: ``False``: no rate-limit or duplicate-close check at teardown.
    """

    max_rate: int = GRID_MAX_RATE
    time_period: float = GRID_TIME_PERIOD
    latency: float = 0.0
    seed: int | None = None
    faults: tuple[tuple[Any, ...], ...] = ()
    enforce_limits: bool = True
    strict: bool = True

    @classmethod
    def from_markers(cls, markers: Iterable[pytest.Mark]) -> OkxOptions:
        """The options of a test's ``okx`` markers, the closest (the function's) winning.

        Raises:
            ValueError: On a positional argument or an unknown keyword.
        """
        known = {f.name for f in fields(cls)}
        chosen: dict[str, Any] = {}
        for mark in reversed(list(markers)):  # farthest first: the closest overrides
            if mark.args:
                raise ValueError(f"@pytest.mark.okx takes keywords only, got {mark.args!r}")
            unknown = sorted(set(mark.kwargs) - known)
            if unknown:
                raise ValueError(
                    f"@pytest.mark.okx got unknown option(s) {unknown}; known: {sorted(known)}"
                )
            chosen.update(mark.kwargs)
        if "faults" in chosen:
            chosen["faults"] = tuple(tuple(f) for f in chosen["faults"])
        return cls(**chosen)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", _MARKER_HELP)


def _inject(sim: GridSimulator, faults: Iterable[tuple[Any, ...]]) -> None:
    for fault in faults:
        if not 2 <= len(fault) <= 4:
            raise ValueError(f"a fault is (endpoint, kind[, count[, delay]]), got {fault!r}")
        endpoint, kind, *rest = fault
        count = rest[0] if rest else 1
        delay = rest[1] if len(rest) > 1 else 0.0
        fail_next(sim, endpoint, FaultKind(kind), count, delay=delay)


def _async_fixture(func: Any) -> Any:
    """``pytest_asyncio.fixture``; without pytest-asyncio, a fixture saying what to install."""
    try:
        import pytest_asyncio  # optional: the plugin loads without it
    except ImportError:

        @pytest.fixture(name=func.__name__)
        def unavailable() -> None:
            pytest.fail(_NO_PYTEST_ASYNCIO.format(name=func.__name__), pytrace=False)

        return unavailable
    return pytest_asyncio.fixture(func)


def _teardown_problems(sim: GridSimulator) -> list[str]:
    return rate_limit_problems(sim) + duplicate_close_problems(sim)


@_async_fixture
async def okx_simulator(request: pytest.FixtureRequest) -> AsyncIterator[GridSimulator]:
    """A started `GridSimulator` on 127.0.0.1, configured by ``@pytest.mark.okx``, closed after.

    At teardown, unless ``strict=False``, the test fails if the simulator saw a
    rate-limit violation or a duplicate close; the message names the window or
    the grid.
    """
    try:
        options = OkxOptions.from_markers(request.node.iter_markers(MARKER))
    except ValueError as exc:
        pytest.fail(str(exc), pytrace=False)
    async with GridSimulator(
        max_rate=options.max_rate,
        time_period=options.time_period,
        enforce_limits=options.enforce_limits,
        seed=options.seed,
        latency=options.latency,
    ) as sim:
        try:
            _inject(sim, options.faults)
        except ValueError as exc:
            pytest.fail(f"@pytest.mark.okx: {exc}", pytrace=False)
        yield sim
        problems = _teardown_problems(sim) if options.strict else []
    if problems:
        pytest.fail(
            "okx-grid-async strict teardown: the simulator saw\n  "
            + "\n  ".join(problems)
            + "\n(opt out with @pytest.mark.okx(strict=False))",
            pytrace=False,
        )


@pytest.fixture
def okx_account(okx_simulator: GridSimulator) -> SimAccount:
    """An account (one API key of a new user) on ``okx_simulator``."""
    return okx_simulator.add_account()


@_async_fixture
async def okx_client(
    okx_simulator: GridSimulator, okx_account: SimAccount
) -> AsyncIterator[GridClient]:
    """An open `GridClient` for ``okx_account``, with its own `LocalRateLimiter`, closed after.

    Its limiter follows the simulator's grid limit (the marker's ``max_rate``
    and ``time_period``); its user id is given, so opening reads no account
    configuration.
    """
    creds = Credentials(okx_account.api_key, okx_account.secret_key, okx_account.passphrase)
    limiter = LocalRateLimiter(okx_simulator.max_rate, okx_simulator.time_period)
    async with GridClient(
        creds,
        base_url=okx_simulator.url,
        user_id=okx_account.user_id,
        rate_limiter=limiter,
        timeout=_CLIENT_TIMEOUT,
    ) as client:
        yield client
