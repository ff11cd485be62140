"""What every rate limiter promises, one test body over each implementation.

``LocalRateLimiter`` runs on a `FakeClock`; ``RedisRateLimiter`` against the
session's real redis-server, in real time (its case is marked ``realtime``, and
skips without ``redis-server`` as tests/redis_server.py says).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from okx_grid_async import LocalRateLimiter, RateLimiter, RedisRateLimiter
from okx_grid_async.testing import FakeClock

POS = "/api/v5/tradingBot/grid/positions"
# One request per window: every waiter after the first waits its turn.
MAX_RATE = 1
PERIOD = 0.05


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.realtime)])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    """A limiter of one request per 0.05 s and no safety margin, on a budget of its own."""
    if request.param == "local":
        yield LocalRateLimiter(MAX_RATE, PERIOD, safety_margin=0.0, clock=FakeClock())
        return
    redis_url: str = request.getfixturevalue("redis_url")
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    async with RedisRateLimiter(redis_url, MAX_RATE, PERIOD, prefix, safety_margin=0.0) as redis:
        yield redis


async def test_waiters_are_served_first_come_first_served(limiter: RateLimiter) -> None:
    order: list[int] = []

    async def one(i: int) -> None:
        async with limiter.slot("u", POS):
            order.append(i)

    tasks = []
    for i in range(8):
        tasks.append(asyncio.create_task(one(i)))
        await asyncio.sleep(0)  # each waiter queues before the next is created
    await asyncio.gather(*tasks)
    assert order == list(range(8))
