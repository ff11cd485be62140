"""One "process" of the multi-process tests: a RedisRateLimiter in an OS process of its own.

Run as ``python -W error tests/redis_worker.py``. Protocol on stdin/stdout, one
JSON or word per line:

1. reads its configuration (a JSON object: :class:`Config` or :class:`SlotsConfig`);
2. opens the limiter (and, for a :class:`Config`, a client), prints ``ready``;
3. waits for ``go``, then, all at once: a :class:`Config` sends ``calls``
   ``get_positions`` to the simulator; a :class:`SlotsConfig` takes ``calls`` slots
   of one budget and notes when each was granted;
4. prints a JSON :class:`Outcome` and exits.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence

import msgspec

from okx_grid_async import Credentials, GridClient, RedisRateLimiter, SystemClock


class Config(msgspec.Struct, kw_only=True, tag="client"):
    """A worker that sends ``get_positions`` through a GridClient."""

    sim_url: str
    redis_url: str
    key_prefix: str
    api_key: str
    secret_key: str
    passphrase: str
    user_id: str
    algo_id: str
    calls: int
    max_rate: int
    time_period: float
    timeout: float = 10.0


class SlotsConfig(msgspec.Struct, kw_only=True, tag="slots"):
    """A worker that only takes slots of the budget (``user_id``, ``endpoint``).

    ``late``: seconds added to every wait for a slot, as for a process whose event
    loop is busy or whose host is far from Redis: it asks Redis late each time.
    """

    redis_url: str
    key_prefix: str
    user_id: str
    endpoint: str
    calls: int
    max_rate: int
    time_period: float
    late: float = 0.0


class LateClock(SystemClock):
    """The system clock, but every sleep lasts ``late`` seconds longer."""

    __slots__ = ("late",)

    def __init__(self, late: float) -> None:
        self.late = late

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds + self.late)


class Outcome(msgspec.Struct, kw_only=True):
    """What a worker reports on its last line.

    ``grant_times``: for a :class:`SlotsConfig`, ``time.monotonic()`` at each grant
    (one clock for every process of a Linux host), in the order granted.
    """

    ok: int
    errors: list[str]
    granted: int
    rejections: int
    grant_times: list[float] = msgspec.field(default_factory=list)


async def wait_for_go() -> None:
    print("ready", flush=True)
    go = await asyncio.to_thread(sys.stdin.readline)
    if go.strip() != "go":
        raise SystemExit(f"expected 'go', got {go!r}")


def outcome(
    results: Sequence[object], granted: int, rejections: int, grant_times: list[float]
) -> Outcome:
    errors = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
    return Outcome(
        ok=len(results) - len(errors),
        errors=errors,
        granted=granted,
        rejections=rejections,
        grant_times=grant_times,
    )


async def run_client(config: Config) -> Outcome:
    """Open, signal ready, wait for go, fire the calls, report."""
    credentials = Credentials(config.api_key, config.secret_key, config.passphrase)
    async with (
        RedisRateLimiter(
            config.redis_url, config.max_rate, config.time_period, config.key_prefix
        ) as limiter,
        GridClient(
            credentials,
            base_url=config.sim_url,
            user_id=config.user_id,
            rate_limiter=limiter,
            timeout=config.timeout,
        ) as client,
    ):
        await wait_for_go()
        results = await asyncio.gather(
            *(client.get_positions(config.algo_id) for _ in range(config.calls)),
            return_exceptions=True,
        )
        stats = client.limiter_stats()
    return outcome(results, stats.granted, stats.rejections, [])


async def run_slots(config: SlotsConfig) -> Outcome:
    """Open, signal ready, wait for go, take the slots, report when each was granted."""
    granted: list[float] = []
    async with RedisRateLimiter(
        config.redis_url,
        config.max_rate,
        config.time_period,
        config.key_prefix,
        clock=LateClock(config.late),
    ) as limiter:

        async def one() -> None:
            async with limiter.slot(config.user_id, config.endpoint):
                granted.append(time.monotonic())

        await wait_for_go()
        results = await asyncio.gather(
            *(one() for _ in range(config.calls)), return_exceptions=True
        )
        stats = limiter.stats(config.user_id, config.endpoint)
    return outcome(results, stats.granted, stats.rejections, grant_times=granted)


def main() -> None:
    """Read the configuration line, run, print the outcome."""
    config = msgspec.json.decode(sys.stdin.readline(), type=Config | SlotsConfig)
    if isinstance(config, Config):
        result = asyncio.run(run_client(config))
    else:
        result = asyncio.run(run_slots(config))
    print(msgspec.json.encode(result).decode(), flush=True)


if __name__ == "__main__":
    main()
