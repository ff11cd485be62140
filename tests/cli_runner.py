"""``okx-grid`` run in process for the tests: ``main(argv)``, its output captured.

`Cli` runs ``main`` in a worker thread, so that the simulator, served by the
test's event loop, keeps answering while the command runs its own loop. The
environment holds the account's credentials (and no other ``OKX_`` variable);
every run is checked for the account's secret key and passphrase in its output:
they must never appear. Each test starts with a fresh process-wide rate
limiter, as a new ``okx-grid`` process would. `SimulatorThread` serves a
simulator from another thread, for the tests where ``main`` runs in the main
thread (Ctrl-C).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Self, TypeVar

import pytest

from okx_grid_async import _limiter
from okx_grid_async.cli import main
from okx_grid_async.simulator import GridSimulator, SimAccount

__all__ = ["CLI_VARIABLES", "Cli", "Run", "SimulatorThread", "clean_environment", "cli"]

T = TypeVar("T")

_THREAD_TIMEOUT = 30.0


@dataclass(frozen=True)
class Run:
    """One finished ``okx-grid`` run."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class Cli:
    """``okx-grid`` with the account's credentials in the environment."""

    def __init__(
        self, sim: GridSimulator, account: SimAccount, capsys: pytest.CaptureFixture[str]
    ) -> None:
        self.sim = sim
        self.account = account
        self._capsys = capsys

    async def __call__(self, *args: str) -> Run:
        """Run a command against the simulator (``--base-url`` its URL)."""
        return await self.run("--base-url", self.sim.url, *args)

    async def run(self, *args: str) -> Run:
        """Run ``okx-grid ARGS`` to its end."""
        self._capsys.readouterr()
        code = await asyncio.to_thread(main, list(args))
        out, err = self._capsys.readouterr()
        for secret in (self.account.secret_key, self.account.passphrase):
            assert secret not in out
            assert secret not in err
        return Run(code, out, err)


# Every variable okx-grid reads.
CLI_VARIABLES = (
    "OKX_API_KEY",
    "OKX_SECRET_KEY",
    "OKX_PASSPHRASE",
    "OKX_BASE_URL",
    "OKX_GRID_REDIS_URL",
)


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """None of okx-grid's variables in the environment, and a fresh process-wide limiter."""
    for name in CLI_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(_limiter, "_DEFAULT", None)
    return monkeypatch


# ``sim`` (a started GridSimulator) and ``account`` (an account on it) come from conftest.py.
@pytest.fixture
def cli(
    sim: GridSimulator,
    account: SimAccount,
    clean_environment: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Cli:
    clean_environment.setenv("OKX_API_KEY", account.api_key)
    clean_environment.setenv("OKX_SECRET_KEY", account.secret_key)
    clean_environment.setenv("OKX_PASSPHRASE", account.passphrase)
    return Cli(sim, account, capsys)


class SimulatorThread:
    """A started `GridSimulator` served by an event loop in a thread of its own.

    For the tests that run ``main`` in the main thread, where Ctrl-C arrives:
    `call` runs a function on the simulator in its loop and returns the result.
    """

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="simulator")
        self._sim: GridSimulator | None = None

    def __enter__(self) -> Self:
        self._thread.start()
        self._sim = self._wait(GridSimulator(seed=7).__aenter__())
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            if self._sim is not None:
                self._wait(self._sim.__aexit__(None, None, None))
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    def call(self, function: Callable[[GridSimulator], T]) -> T:
        """``function(sim)``, run in the simulator's loop."""
        sim = self._sim
        assert sim is not None

        async def run() -> T:
            return function(sim)

        return self._wait(run())

    def _wait(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(_THREAD_TIMEOUT)
