"""One OS process of the limiter benchmark's Redis part: a GridClient paced by a RedisRateLimiter.

Run by :mod:`benchmarks.limiter` as ``python -m benchmarks.limiter_worker``; one
line at a time on stdin and stdout:

1. reads a JSON :class:`WorkerConfig`;
2. opens the limiter and the client (one API key of the shared user), prints ``ready``;
3. waits for ``go``, then sends its polls and closes all at once;
4. prints a JSON :class:`WorkerOutcome` and exits.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter

import msgspec

from okx_grid_async import Credentials, GridClient, RedisRateLimiter
from okx_grid_async._constants import GRID_CLOSE_POSITION_PATH, GRID_POSITIONS_PATH

__all__ = ["WorkerConfig", "WorkerOutcome"]


class WorkerConfig(msgspec.Struct, frozen=True, kw_only=True):
    """What one worker is told on its first line."""

    sim_url: str
    redis_url: str
    key_prefix: str
    api_key: str
    secret_key: str
    passphrase: str
    user_id: str
    poll_ids: list[str]
    close_ids: list[str]
    timeout: float


class WorkerOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What one worker reports: successes and errors (by type) per endpoint path."""

    ok: dict[str, int]
    errors: dict[str, dict[str, int]]
    rejections: dict[str, int]


async def _run(config: WorkerConfig) -> WorkerOutcome:
    credentials = Credentials(config.api_key, config.secret_key, config.passphrase)
    async with (
        RedisRateLimiter(config.redis_url, key_prefix=config.key_prefix) as limiter,
        GridClient(
            credentials,
            base_url=config.sim_url,
            user_id=config.user_id,
            rate_limiter=limiter,
            timeout=config.timeout,
        ) as client,
    ):
        print("ready", flush=True)
        go = await asyncio.to_thread(sys.stdin.readline)
        if go.strip() != "go":
            raise SystemExit(f"limiter_worker: expected 'go', got {go!r}")
        polls = [client.get_positions(algo_id) for algo_id in config.poll_ids]
        closes = [client.close_position(algo_id, mkt_close=True) for algo_id in config.close_ids]
        results = await asyncio.gather(*polls, *closes, return_exceptions=True)
        paths = [GRID_POSITIONS_PATH] * len(polls) + [GRID_CLOSE_POSITION_PATH] * len(closes)
        ok: Counter[str] = Counter()
        errors: dict[str, Counter[str]] = {p: Counter() for p in set(paths)}
        for path, result in zip(paths, results, strict=True):
            if isinstance(result, BaseException):
                errors[path][type(result).__name__] += 1
            else:
                ok[path] += 1
        return WorkerOutcome(
            ok=dict(ok),
            errors={p: dict(c) for p, c in errors.items()},
            rejections={p: client.limiter_stats(p).rejections for p in set(paths)},
        )


def main() -> None:
    """Read the configuration, run, print the outcome."""
    config = msgspec.json.decode(sys.stdin.readline(), type=WorkerConfig)
    outcome = asyncio.run(_run(config))
    print(msgspec.json.encode(outcome).decode(), flush=True)


if __name__ == "__main__":
    main()
