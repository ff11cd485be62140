"""The arrival model in real time, through a proxy that delays each direction.

The simulator sits behind a `LatencyProxy`, so it records each arrival after the
way-there delay, as OKX's gateway would; it enforces OKX's strict 20 per 2 s.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from okx_grid_async import Credentials, DeadlineExceededError, GridClient, LocalRateLimiter
from okx_grid_async._constants import GRID_POSITIONS_PATH
from okx_grid_async.simulator import GridSimulator, max_in_window
from okx_grid_async.simulator._proxy import LatencyProxy

pytestmark = pytest.mark.realtime
POS = GRID_POSITIONS_PATH


async def test_polls_200_ms_away_are_never_rejected() -> None:
    async with GridSimulator(seed=21) as sim:
        account = sim.add_account()
        grid = sim.add_grid(account.user_id)
        creds = Credentials(account.api_key, account.secret_key, account.passphrase)
        port = int(sim.url.rsplit(":", 1)[1])
        async with (
            LatencyProxy("127.0.0.1", port, up=0.1, down=0.1, jitter=0.2, seed=1) as proxy,
            GridClient(
                creds,
                base_url=f"http://127.0.0.1:{proxy.port}",
                user_id=account.user_id,
                rate_limiter=LocalRateLimiter(),
            ) as client,
        ):
            results = await asyncio.gather(*(client.get_positions(grid.algo_id) for _ in range(70)))
        assert len(results) == 70
        arrivals = sim.arrivals(path=POS)
        assert [a.code for a in arrivals].count("50011") == 0
        assert max_in_window([a.t for a in arrivals], 2.0) <= 20


async def test_abandoned_requests_do_not_let_the_next_ones_into_their_window() -> None:
    """The review's case: 20 reads abandoned at timeout=0.1, each 300 ms on the way in,
    then 20 more over a direct path as soon as the limiter allows."""
    async with GridSimulator(seed=22) as sim:
        account = sim.add_account()
        grid = sim.add_grid(account.user_id)
        creds = Credentials(account.api_key, account.secret_key, account.passphrase)
        port = int(sim.url.rsplit(":", 1)[1])
        limiter = LocalRateLimiter()
        options: dict[str, Any] = {
            "user_id": account.user_id,
            "rate_limiter": limiter,
            "connect_timeout": 0.5,
        }
        async with (
            LatencyProxy("127.0.0.1", port, up=0.3) as proxy,
            GridClient(creds, base_url=f"http://127.0.0.1:{proxy.port}", **options) as far,
            GridClient(creds, base_url=sim.url, **options) as near,
        ):
            abandoned = await asyncio.gather(
                *(far.get_positions(grid.algo_id, timeout=0.1) for _ in range(20)),
                return_exceptions=True,
            )
            assert all(isinstance(r, DeadlineExceededError) for r in abandoned)
            await asyncio.gather(*(near.get_positions(grid.algo_id) for _ in range(20)))
            await asyncio.sleep(0.4)  # let the proxy deliver what it still holds
        arrivals = sim.arrivals(path=POS)
        assert len(arrivals) == 40
        assert [a.code for a in arrivals].count("50011") == 0
        assert max_in_window([a.t for a in arrivals], 2.0) <= 20
