"""A GridSimulator in its own OS process, so that what a benchmark measures is the client's alone.

The parent side::

    async with SimulatorProcess(SimulatorConfig(grids=100, enforce_limits=False)) as sim:
        ...  # sim.url, sim.account, sim.algo_ids
        arrivals = await sim.arrivals(GRID_POSITIONS_PATH)

The child, ``python -m benchmarks.simulator_process``, talks one line at a time:
it reads a JSON :class:`SimulatorConfig` on stdin, creates one account and
``grids`` grids (algoIds ``first_algo_id``, ``first_algo_id + 1``, ...), starts
on a free port of 127.0.0.1 and prints a JSON :class:`Started`. Then it answers
``arrivals PATH`` with a JSON list of :class:`~okx_grid_async.simulator.Arrival`
(that account's, on that path), ``call NAME ARG...`` by calling a method such as
``ws_drop_all`` or ``set_mark_price`` (answering ``null``), and stops on ``stop`` or
at end of input, so it never outlives its parent.
"""

from __future__ import annotations

import asyncio
import sys
from types import TracebackType
from typing import Final, Self

import msgspec

from okx_grid_async import Credentials
from okx_grid_async.simulator import Arrival, GridSimulator

__all__ = ["SimulatorConfig", "SimulatorProcess", "Started"]

_START_TIMEOUT: Final = 30.0
_ANSWER_TIMEOUT: Final = 30.0
_STOP_TIMEOUT: Final = 10.0
_LINE_LIMIT: Final = 64 * 1024 * 1024  # an arrivals answer for 100,000 requests fits
# The simulator's methods a parent may call (``call NAME ARG...``, str arguments).
_CALLABLE: Final = frozenset({"ws_drop_all", "ws_clear_faults", "set_mark_price"})


class SimulatorConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How to set up the simulator: its limits, and how many grids the one account has."""

    max_rate: int = 20
    time_period: float = 2.0
    enforce_limits: bool = True
    grids: int = 1
    first_algo_id: int = 500_000_000_000_000_000
    history_limit: int | None = 200_000
    seed: int = 1
    price_tick_interval: float | None = None


class SimAccountInfo(msgspec.Struct, frozen=True, kw_only=True):
    """The account's keys (fake, made by the simulator)."""

    api_key: str
    secret_key: str
    passphrase: str
    user_id: str

    def credentials(self) -> Credentials:
        """The keys as the client takes them."""
        return Credentials(self.api_key, self.secret_key, self.passphrase)


class Started(msgspec.Struct, frozen=True, kw_only=True):
    """What the child prints once it listens."""

    url: str
    account: SimAccountInfo


class SimulatorProcess:
    """Start a simulator in a child process; stop it (and wait for it) on exit.

    Raises (on entering):
        RuntimeError: if the child exits or does not report its URL in time.
    """

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self._process: asyncio.subprocess.Process | None = None
        self._started: Started | None = None

    @property
    def url(self) -> str:
        """The simulator's base URL (``http://127.0.0.1:PORT``)."""
        return self._info().url

    @property
    def account(self) -> SimAccountInfo:
        """The one account's keys and user id."""
        return self._info().account

    @property
    def algo_ids(self) -> range:
        """The grids' algoIds, as ints (``str()`` each one)."""
        first = self.config.first_algo_id
        return range(first, first + self.config.grids)

    async def __aenter__(self) -> Self:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.simulator_process",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=_LINE_LIMIT,
        )
        try:
            self._send(msgspec.json.encode(self.config).decode())
            line = await self._line(_START_TIMEOUT)
            self._started = msgspec.json.decode(line, type=Started)
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()

    async def arrivals(self, path: str) -> list[Arrival]:
        """The account's answered requests to ``path``, in arrival order (child's clock)."""
        self._send(f"arrivals {path}")
        return msgspec.json.decode(await self._line(_ANSWER_TIMEOUT), type=list[Arrival])

    async def command(self, name: str, *args: str) -> None:
        """Call one of the simulator's methods in ``_CALLABLE`` (``ws_drop_all``...)."""
        self._send(" ".join(("call", name, *args)))
        await self._line(_ANSWER_TIMEOUT)

    def _info(self) -> Started:
        if self._started is None:
            raise RuntimeError("the simulator process is not running")
        return self._started

    def _send(self, line: str) -> None:
        assert self._process is not None
        assert self._process.stdin is not None
        self._process.stdin.write(line.encode() + b"\n")

    async def _line(self, timeout: float) -> bytes:
        assert self._process is not None
        assert self._process.stdout is not None
        async with asyncio.timeout(timeout):
            line = await self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"the simulator process exited (code {await self._process.wait()})")
        return line

    async def _stop(self) -> None:
        process, self._process = self._process, None
        self._started = None
        if process is None:
            return
        if process.stdin is not None and not process.stdin.is_closing():
            process.stdin.close()  # end of input: the child stops
        try:
            async with asyncio.timeout(_STOP_TIMEOUT):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()


# ---------------------------------------------------------------- the child


async def _serve(config: SimulatorConfig) -> None:
    async with GridSimulator(
        "127.0.0.1",
        0,
        max_rate=config.max_rate,
        time_period=config.time_period,
        enforce_limits=config.enforce_limits,
        seed=config.seed,
        history_limit=config.history_limit,
        price_tick_interval=config.price_tick_interval,
    ) as sim:
        account = sim.add_account()
        for i in range(config.grids):
            sim.add_grid(account.user_id, algo_id=str(config.first_algo_id + i))
        info = SimAccountInfo(
            api_key=account.api_key,
            secret_key=account.secret_key,
            passphrase=account.passphrase,
            user_id=account.user_id,
        )
        _answer(msgspec.json.encode(Started(url=sim.url, account=info)))
        while True:
            line = (await asyncio.to_thread(sys.stdin.readline)).strip()
            command, _, argument = line.partition(" ")
            if command == "arrivals":
                _answer(msgspec.json.encode(sim.arrivals(account.user_id, argument)))
            elif command == "call" and argument.split(" ")[0] in _CALLABLE:
                name, *args = argument.split(" ")
                getattr(sim, name)(*args)
                _answer(b"null")
            elif command in ("stop", ""):
                return
            else:
                raise SystemExit(f"simulator_process: unknown command {line!r}")


def _answer(line: bytes) -> None:
    sys.stdout.buffer.write(line + b"\n")
    sys.stdout.buffer.flush()


def main() -> None:
    """The child's entry point: read the configuration, serve until stopped."""
    config = msgspec.json.decode(sys.stdin.readline(), type=SimulatorConfig)
    asyncio.run(_serve(config))


if __name__ == "__main__":
    main()
