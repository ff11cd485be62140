"""One "process" of the multi-process test: a GridClient paced by a RedisRateLimiter.

Run as ``python -W error tests/redis_worker.py``. Protocol on stdin/stdout, one
JSON or word per line:

1. reads its configuration (a JSON object, see :class:`Config`);
2. opens the limiter and the client, prints ``ready``;
3. waits for ``go``, sends ``calls`` concurrent ``get_positions``;
4. prints a JSON :class:`Outcome` and exits.
"""

from __future__ import annotations

import asyncio
import sys

import msgspec

from okx_grid_async import Credentials, GridClient, RedisRateLimiter


class Config(msgspec.Struct, kw_only=True):
    """What a worker is told on its first line."""

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


class Outcome(msgspec.Struct, kw_only=True):
    """What a worker reports on its last line."""

    ok: int
    errors: list[str]
    granted: int
    rejections: int


async def run(config: Config) -> Outcome:
    """Open, signal ready, wait for go, fire the calls, report."""
    credentials = Credentials(config.api_key, config.secret_key, config.passphrase)
    async with (
        RedisRateLimiter(
            config.redis_url, config.max_rate, config.time_period, config.key_prefix
        ) as limiter,
        GridClient(
            credentials, base_url=config.sim_url, user_id=config.user_id, rate_limiter=limiter
        ) as client,
    ):
        print("ready", flush=True)
        go = await asyncio.to_thread(sys.stdin.readline)
        if go.strip() != "go":
            raise SystemExit(f"expected 'go', got {go!r}")
        results = await asyncio.gather(
            *(client.get_positions(config.algo_id) for _ in range(config.calls)),
            return_exceptions=True,
        )
        stats = client.limiter_stats()
    errors = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
    return Outcome(
        ok=len(results) - len(errors),
        errors=errors,
        granted=stats.granted,
        rejections=stats.rejections,
    )


def main() -> None:
    """Read the configuration line, run, print the outcome."""
    config = msgspec.json.decode(sys.stdin.readline(), type=Config)
    outcome = asyncio.run(run(config))
    print(msgspec.json.encode(outcome).decode(), flush=True)


if __name__ == "__main__":
    main()
