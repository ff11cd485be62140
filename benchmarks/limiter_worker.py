"""OS processes that share a RedisRateLimiter: the Redis part of the benchmarks.

The parent side (:mod:`benchmarks.limiter`, :mod:`benchmarks.gathering`,
:mod:`benchmarks.latency`)::

    start_redis, reason = redis_server()  # None and why not, when it cannot run here
    with start_redis() as server:
        outcomes, go = await run_workers(configs, timeout=90)

The child, ``python -m benchmarks.limiter_worker``, talks one line at a time on
stdin and stdout:

1. reads a JSON :class:`WorkerConfig`;
2. opens the limiter and the client (one API key of the shared user), prints ``ready``;
3. waits for ``go``, then sends its polls and closes all at once;
4. prints a JSON :class:`WorkerOutcome` and exits.

Times are ``time.monotonic()``: one clock for every process of a Linux host, the
simulator's included.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Final

import msgspec

from okx_grid_async import Credentials, GridClient, GridEndpoint, RedisRateLimiter
from okx_grid_async._constants import (
    DEFAULT_TIMEOUT,
    GRID_CLOSE_POSITION_PATH,
    GRID_POSITIONS_PATH,
)

if TYPE_CHECKING:
    from tests.redis_server import RedisServer

__all__ = ["WorkerConfig", "WorkerOutcome", "redis_server", "run_workers"]

_START_TIMEOUT: Final = 30.0


class WorkerConfig(msgspec.Struct, frozen=True, kw_only=True):
    """What one worker is told on its first line.

    ``sim_url`` may be a :class:`~okx_grid_async.simulator._proxy.LatencyProxy`'s
    in front of the simulator (a worker on a host far from OKX). ``timeout``:
    the client's ``timeout``, or ``None`` for its default.
    """

    sim_url: str
    redis_url: str
    key_prefix: str
    api_key: str
    secret_key: str
    passphrase: str
    user_id: str
    poll_ids: list[str]
    close_ids: list[str]
    timeout: float | None = None


class WorkerOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What one worker reports.

    Successes and errors (by type) per endpoint path, the 50011s its limiter was
    told of, and when its first and last call finished (``time.monotonic()``,
    successes and errors alike; 0 without calls).
    """

    ok: dict[str, int]
    errors: dict[str, dict[str, int]]
    rejections: dict[str, int]
    first_done: float
    last_done: float


# ---------------------------------------------------------------- the parent


def redis_server() -> tuple[Callable[[], AbstractContextManager[RedisServer]] | None, str]:
    """How to start a throw-away redis-server here, or ``None`` and why it cannot be."""
    executable = shutil.which("redis-server")
    if executable is None:
        return None, "redis-server not installed (apt-get install redis-server)"
    try:
        # The test suite's: 127.0.0.1, a free port, nothing on disk.
        from tests.redis_server import RedisServer
    except ImportError as exc:
        return None, f"tests/redis_server.py not importable: {exc}"
    return lambda: RedisServer(executable), ""


async def run_workers(
    configs: Sequence[WorkerConfig], *, timeout: float
) -> tuple[list[WorkerOutcome], float]:
    """One worker per config, started together once all are ready.

    Returns their outcomes, in the order of ``configs``, and ``time.monotonic()``
    when ``go`` was sent. A worker still running on the way out is killed.

    Raises:
        RuntimeError: a worker did not start, or exited without an outcome.
        TimeoutError: the workers took more than ``timeout`` seconds after ``go``.
    """
    processes: list[asyncio.subprocess.Process] = []
    try:
        for config in configs:
            processes.append(await _start(config))
        go = time.monotonic()
        for process in processes:
            assert process.stdin is not None
            process.stdin.write(b"go\n")
        async with asyncio.timeout(timeout):
            outcomes = await asyncio.gather(*(_outcome(p) for p in processes))
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
    return list(outcomes), go


async def _start(config: WorkerConfig) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.limiter_worker",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write(msgspec.json.encode(config) + b"\n")
    async with asyncio.timeout(_START_TIMEOUT):
        ready = await process.stdout.readline()
    if ready.strip() != b"ready":
        process.kill()
        await process.wait()
        raise RuntimeError(f"limiter_worker did not start (said {ready!r})")
    return process


async def _outcome(process: asyncio.subprocess.Process) -> WorkerOutcome:
    assert process.stdout is not None
    line = await process.stdout.readline()
    await process.wait()
    if not line:
        raise RuntimeError(f"limiter_worker exited with code {process.returncode} and no outcome")
    return msgspec.json.decode(line, type=WorkerOutcome)


# ---------------------------------------------------------------- the child


async def _finished(call: Awaitable[object]) -> tuple[Exception | None, float]:
    """The call's error (``None`` for a success) and when it finished."""
    try:
        await call
    except Exception as exc:  # counted by type, as gather(return_exceptions=True) would
        return exc, time.monotonic()
    return None, time.monotonic()


async def _run(config: WorkerConfig) -> WorkerOutcome:
    credentials = Credentials(config.api_key, config.secret_key, config.passphrase)
    async with (
        RedisRateLimiter(config.redis_url, key_prefix=config.key_prefix) as limiter,
        GridClient(
            credentials,
            base_url=config.sim_url,
            user_id=config.user_id,
            rate_limiter=limiter,
            timeout=DEFAULT_TIMEOUT if config.timeout is None else config.timeout,
        ) as client,
    ):
        print("ready", flush=True)
        go = await asyncio.to_thread(sys.stdin.readline)
        if go.strip() != "go":
            raise SystemExit(f"limiter_worker: expected 'go', got {go!r}")
        polls = [client.get_positions(algo_id) for algo_id in config.poll_ids]
        closes = [client.close_position(algo_id, mkt_close=True) for algo_id in config.close_ids]
        results = await asyncio.gather(*(_finished(call) for call in (*polls, *closes)))
        paths = [GRID_POSITIONS_PATH] * len(polls) + [GRID_CLOSE_POSITION_PATH] * len(closes)
        endpoints: dict[str, GridEndpoint] = {
            GRID_POSITIONS_PATH: "positions",
            GRID_CLOSE_POSITION_PATH: "close-position",
        }
        ok: Counter[str] = Counter()
        errors: dict[str, Counter[str]] = {p: Counter() for p in set(paths)}
        for path, (error, _) in zip(paths, results, strict=True):
            if error is None:
                ok[path] += 1
            else:
                errors[path][type(error).__name__] += 1
        done = [t for _, t in results]
        return WorkerOutcome(
            ok=dict(ok),
            errors={p: dict(c) for p, c in errors.items()},
            rejections={p: client.limiter_stats(endpoints[p]).rejections for p in set(paths)},
            first_done=min(done, default=0.0),
            last_done=max(done, default=0.0),
        )


def main() -> None:
    """Read the configuration, run, print the outcome."""
    config = msgspec.json.decode(sys.stdin.readline(), type=WorkerConfig)
    outcome = asyncio.run(_run(config))
    print(msgspec.json.encode(outcome).decode(), flush=True)


if __name__ == "__main__":
    main()
