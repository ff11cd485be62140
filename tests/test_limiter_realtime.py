"""The limiter proved in real time: arrivals as the strict simulator recorded them."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from okx_grid_async import Credentials, GridClient, LocalRateLimiter
from okx_grid_async._constants import (
    GRID_CLOSE_POSITION_PATH,
    GRID_POSITIONS_PATH,
    PUBLIC_TIME_PATH,
)
from okx_grid_async.simulator import GridSimulator, max_in_window

pytestmark = pytest.mark.realtime
POS, CLOSE = GRID_POSITIONS_PATH, GRID_CLOSE_POSITION_PATH


async def test_concurrent_polls_and_closes_are_never_rejected_and_closes_do_not_queue() -> None:
    async with GridSimulator(max_rate=10, time_period=1.0, seed=3) as sim:
        acct = sim.add_account()
        grids = [sim.add_grid(acct.user_id, pos=Decimal(3)) for _ in range(10)]
        creds = Credentials(acct.api_key, acct.secret_key, acct.passphrase)
        limiter = LocalRateLimiter(10, 1.0)
        async with GridClient(
            creds, base_url=sim.url, user_id=acct.user_id, rate_limiter=limiter
        ) as client:
            polls = [client.get_positions(grids[i % 10].algo_id) for i in range(40)]
            closes = [client.close_position(g.algo_id, mkt_close=True) for g in grids]
            results = await asyncio.gather(*polls, *closes)
        assert len(results) == 50
        arrivals = sim.arrivals(user_id=acct.user_id)
        assert [a.code for a in arrivals].count("50011") == 0
        for path in (POS, CLOSE):
            times = [a.t for a in arrivals if a.path == path]
            assert max_in_window(times, 1.0) <= 10
        poll_times = [a.t for a in arrivals if a.path == POS]
        close_times = [a.t for a in arrivals if a.path == CLOSE]
        # All ten closes went out in the first window, beside (not behind) 40 queued polls.
        assert max(close_times) < sorted(poll_times)[10]


async def test_two_keys_of_one_user_share_the_default_budget() -> None:
    async with GridSimulator(seed=4) as sim:  # OKX's figures: 20 per 2 s
        acct = sim.add_account()
        second = sim.add_account(user_id=acct.user_id)
        grid = sim.add_grid(acct.user_id)
        clients = [
            GridClient(
                Credentials(a.api_key, a.secret_key, a.passphrase),
                base_url=sim.url,
                user_id=acct.user_id,
            )
            for a in (acct, second)
        ]
        async with clients[0] as one, clients[1] as two:
            await asyncio.gather(*(c.get_positions(grid.algo_id) for c in (one, two) * 15))
        arrivals = sim.arrivals(user_id=acct.user_id, path=POS)
        assert len(arrivals) == 30
        assert all(a.code == "0" for a in arrivals)
        assert max_in_window([a.t for a in arrivals], 2.0) <= 20


async def test_the_same_credentials_twice_share_a_budget_through_the_default_limiter() -> None:
    async with GridSimulator(max_rate=20, time_period=2.0, seed=5) as sim:
        acct = sim.add_account()
        grid = sim.add_grid(acct.user_id)
        creds = Credentials(acct.api_key, acct.secret_key, acct.passphrase)
        async with (
            GridClient(creds, base_url=sim.url) as one,
            GridClient(creds, base_url=sim.url) as two,
        ):
            assert one.rate_limiter is two.rate_limiter
            await asyncio.gather(*(c.get_positions(grid.algo_id) for c in (one, two) * 12))
        arrivals = sim.arrivals(user_id=acct.user_id, path=POS)
        assert [a.code for a in arrivals].count("0") == 24


async def test_public_time_is_read_once_for_many_clients_and_paced_per_process() -> None:
    """Fourteen clients share one measured offset; forced re-reads from two threads,
    each with its own loop, still keep to OKX's 10 per 2 s per IP."""
    import threading

    async with GridSimulator(seed=6) as sim:
        acct = sim.add_account()
        creds = Credentials(acct.api_key, acct.secret_key, acct.passphrase)
        clients = [GridClient(creds, base_url=sim.url, user_id=acct.user_id) for _ in range(14)]
        await asyncio.gather(*(c.__aenter__() for c in clients))
        for client in clients:
            await client.aclose()
        assert len([r for r in sim.requests if r.path == PUBLIC_TIME_PATH]) == 1

        def resync(times: int) -> None:
            async def work() -> None:
                async with GridClient(creds, base_url=sim.url, user_id=acct.user_id) as client:
                    for _ in range(times):
                        await client._transport.sync_clock()

            asyncio.run(work())

        def both() -> None:
            threads = [threading.Thread(target=resync, args=(7,)) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(20)

        await asyncio.to_thread(both)
        times = sorted(r.t for r in sim.requests if r.path == PUBLIC_TIME_PATH)
    assert len(times) == 15
    # Counting both ends of the window: no 11th call on the far edge either.
    assert max(sum(1 for u in times if t <= u <= t + 2.0) for t in times) <= 10
