"""Many callers, one budget: waiting for the rate limiter never fails a call.

The simulator records every arrival, so each test checks what OKX would have
seen: how many requests, how many 50011s, and the most in any 2 s window.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from okx_grid_async import (
    Credentials,
    DeadlineExceededError,
    GridClient,
    LocalRateLimiter,
    NotSentError,
    WaitTimeoutError,
)
from okx_grid_async._constants import (
    ACCOUNT_CONFIG_PATH,
    GRID_CLOSE_POSITION_PATH,
    GRID_POSITIONS_PATH,
    PUBLIC_TIME_PATH,
)
from okx_grid_async.simulator import FaultKind, GridSimulator, SimAccount, max_in_window
from okx_grid_async.testing import FakeClock

from .conftest import ClientFactory

POS, CLOSE = GRID_POSITIONS_PATH, GRID_CLOSE_POSITION_PATH


def _creds(account: SimAccount) -> Credentials:
    return Credentials(account.api_key, account.secret_key, account.passphrase)


def _codes(sim: GridSimulator, path: str) -> list[str]:
    return [a.code for a in sim.arrivals(path=path)]


@pytest.mark.realtime
async def test_300_gathered_polls_with_all_defaults_all_succeed() -> None:
    """The issue's first report: 200 of these failed with DeadlineExceededError at 10 s."""
    async with GridSimulator(seed=11) as sim:  # OKX's figures, strict
        account = sim.add_account()
        grid = sim.add_grid(account.user_id)
        async with GridClient(_creds(account), base_url=sim.url) as client:
            results = await asyncio.gather(
                *(client.get_positions(grid.algo_id) for _ in range(300))
            )
        assert len(results) == 300
        assert all(rows[0].algo_id == grid.algo_id for rows in results)
        arrivals = sim.arrivals(path=POS)
        assert len(arrivals) == 300
        assert [a.code for a in arrivals].count("50011") == 0
        assert max_in_window([a.t for a in arrivals], 2.0) <= 20


async def test_queueing_longer_than_the_deadline_fails_nothing() -> None:
    """timeout bounds the exchange only: 100 polls queue ~1 s behind a 0.1 s window."""
    async with GridSimulator(max_rate=10, time_period=0.1, seed=12) as sim:
        account = sim.add_account()
        grid = sim.add_grid(account.user_id)
        limiter = LocalRateLimiter(10, 0.1, safety_margin=0.01)
        async with GridClient(
            _creds(account), base_url=sim.url, rate_limiter=limiter, timeout=0.5
        ) as client:
            loop = asyncio.get_running_loop()
            started = loop.time()
            results = await asyncio.gather(
                *(client.get_positions(grid.algo_id) for _ in range(100))
            )
            took = loop.time() - started
        assert len(results) == 100
        assert took > 0.5  # longer than any one call's deadline, yet none failed
        assert _codes(sim, POS).count("50011") == 0
        assert max_in_window([a.t for a in sim.arrivals(path=POS)], 0.1) <= 10


async def test_two_clients_of_one_user_share_one_budget(
    sim: GridSimulator, account: SimAccount
) -> None:
    grid = sim.add_grid(account.user_id)
    limiter = LocalRateLimiter(5, 0.3, safety_margin=0.01)
    clients = [
        GridClient(_creds(account), base_url=sim.url, user_id=account.user_id, rate_limiter=limiter)
        for _ in range(2)
    ]
    async with clients[0] as one, clients[1] as two:
        await asyncio.gather(*(c.get_positions(grid.algo_id) for c in (one, two) * 10))
    times = [a.t for a in sim.arrivals(path=POS)]
    assert len(times) == 20
    assert max_in_window(times, 0.3) <= 5


async def test_two_api_keys_of_one_user_share_a_budget_without_user_id() -> None:
    """Each key's User ID is read from account/config, so both spend one budget."""
    async with GridSimulator(max_rate=5, time_period=0.3, seed=13) as sim:
        first = sim.add_account()
        second = sim.add_account(user_id=first.user_id)
        grid = sim.add_grid(first.user_id)
        limiter = LocalRateLimiter(5, 0.3, safety_margin=0.01)
        async with (
            GridClient(_creds(first), base_url=sim.url, rate_limiter=limiter) as one,
            GridClient(_creds(second), base_url=sim.url, rate_limiter=limiter) as two,
        ):
            assert one.user_id == two.user_id == first.user_id
            await asyncio.gather(*(c.get_positions(grid.algo_id) for c in (one, two) * 10))
        arrivals = sim.arrivals(path=POS)
        assert len(arrivals) == 20
        assert [a.code for a in arrivals].count("50011") == 0
        assert max_in_window([a.t for a in arrivals], 0.3) <= 5
        # One account/config read per key, and none again for a key already read.
        async with GridClient(_creds(first), base_url=sim.url, rate_limiter=limiter):
            pass
        assert len(sim.arrivals(path=ACCOUNT_CONFIG_PATH)) == 2


async def test_user_id_given_costs_no_account_config_read(
    sim: GridSimulator, make_client: ClientFactory
) -> None:
    async with make_client():
        pass
    assert sim.arrivals(path=ACCOUNT_CONFIG_PATH) == []


async def test_the_user_id_is_unknown_before_opening_without_user_id(
    sim: GridSimulator, creds: Credentials
) -> None:
    client = GridClient(creds, base_url=sim.url)
    with pytest.raises(RuntimeError, match="read when the client opens"):
        _ = client.user_id
    assert creds.api_key not in repr(client)


async def test_the_old_user_key_name_still_works_with_a_deprecation_warning(
    make_client: ClientFactory, account: SimAccount
) -> None:
    client = make_client()
    with pytest.warns(DeprecationWarning, match=r"GridClient\.user_id"):
        old = client.user_key
    assert old == client.user_id == account.user_id


async def test_wait_bound_raises_and_nothing_of_that_call_is_sent(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id)
    limiter = LocalRateLimiter(1, 0.5, safety_margin=0.0)
    async with make_client(rate_limiter=limiter) as client:
        await client.get_positions(grid.algo_id)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(WaitTimeoutError) as caught:
            await client.get_positions(grid.algo_id, wait_timeout=0.2)
        assert loop.time() - started < 0.1  # the next slot is 0.5 s away: it failed at once
        assert caught.value.endpoint == POS
        assert "nothing was sent" in str(caught.value)
    assert len(sim.arrivals(path=POS)) == 1


async def test_client_wait_timeout_is_the_default_and_a_call_overrides_it(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id)
    limiter = LocalRateLimiter(1, 0.3, safety_margin=0.0)
    async with make_client(rate_limiter=limiter, wait_timeout=0.05) as client:
        await client.get_positions(grid.algo_id)
        with pytest.raises(WaitTimeoutError):
            await client.get_positions(grid.algo_id)
        assert await client.get_positions(grid.algo_id, wait_timeout=1.0)
    assert len(sim.arrivals(path=POS)) == 2


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), "1", True])
def test_bad_wait_timeout_is_refused_before_anything(creds: Credentials, bad: object) -> None:
    with pytest.raises(ValueError, match="wait_timeout"):
        GridClient(creds, wait_timeout=bad)  # type: ignore[arg-type]


async def test_a_post_granted_with_less_deadline_than_a_round_trip_is_not_sent(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id)
    async with make_client() as client:
        await client.get_positions(grid.algo_id)
        # Every round trip so far took well over 1 µs: 1 µs of deadline cannot finish one.
        assert client._transport.min_round_trip > 1e-6
        with pytest.raises(NotSentError) as caught:
            await client.close_position(grid.algo_id, mkt_close=True, timeout=1e-6)
        assert not isinstance(caught.value, DeadlineExceededError)
        assert "not sent" in str(caught.value)
    assert sim.close_calls(grid.algo_id) == 0
    assert sim.arrivals(path=CLOSE) == []


async def test_a_close_retried_late_in_its_deadline_is_not_sent_twice_nor_unknown(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    """50013 (not executed), then a retry whose grant leaves less than a round trip."""
    grid = sim.add_grid(account.user_id)
    # OKX 200 ms away, as the client measures it: on reading the time, and on the close.
    sim.inject_fault(FaultKind.LATENCY, PUBLIC_TIME_PATH, delay=0.2)
    sim.inject_fault(FaultKind.BUSY_50013, CLOSE, delay=0.2)
    async with make_client() as client:
        assert client._transport.min_round_trip >= 0.2
        # Sent with 0.5 s left; answered at 0.2 s; a backoff of 0.125-0.25 s leaves
        # less than a 0.2 s round trip for the retry, which is not sent.
        with pytest.raises(NotSentError):
            await client.close_position(grid.algo_id, mkt_close=True, timeout=0.5)
    assert _codes(sim, CLOSE) == ["50013"]
    assert sim.close_calls(grid.algo_id) == 0


async def test_cancelling_a_queued_call_takes_no_slot(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id)
    limiter = LocalRateLimiter(1, 0.3, safety_margin=0.0)
    async with make_client(rate_limiter=limiter) as client:
        await client.get_positions(grid.algo_id)
        queued = asyncio.create_task(client.get_positions(grid.algo_id))
        await asyncio.sleep(0.05)
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        assert limiter.stats(client.user_id, POS).granted == 1
        await client.get_positions(grid.algo_id)
    assert len(sim.arrivals(path=POS)) == 2


async def test_the_deadline_does_not_run_while_a_retry_queues(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    """A 50011 holds the budget for a window (0.6 s) longer than the whole deadline."""
    grid = sim.add_grid(account.user_id)
    sim.inject_fault(FaultKind.RATE_LIMIT_50011, POS)
    limiter = LocalRateLimiter(20, 0.6, safety_margin=0.0)
    async with make_client(rate_limiter=limiter) as client:
        (position,) = await client.get_positions(grid.algo_id, timeout=0.4)
    assert position.algo_id == grid.algo_id
    assert _codes(sim, POS) == ["50011", "0"]


async def test_sixty_clients_opened_at_once_all_open_and_read_the_time_once(
    sim: GridSimulator, account: SimAccount
) -> None:
    others = [sim.add_account() for _ in range(5)]
    clients = [
        GridClient(_creds(a), base_url=sim.url, timeout=2.0) for a in [account] * 55 + others
    ]
    opened = await asyncio.gather(*(c.__aenter__() for c in clients), return_exceptions=True)
    for client in clients:
        await client.aclose()
    assert all(isinstance(c, GridClient) for c in opened), opened
    # The offset of this base URL is shared, and each key's User ID read once.
    assert len([r for r in sim.requests if r.path == PUBLIC_TIME_PATH]) <= 1
    assert len(sim.arrivals(path=ACCOUNT_CONFIG_PATH)) <= 6
    assert {c.user_id for c in clients} == {account.user_id, *(a.user_id for a in others)}


async def test_a_fake_clock_client_measures_its_own_offset(
    sim: GridSimulator, make_client: ClientFactory
) -> None:
    """Only the real clock's offset is shared: a FakeClock's wall time is its own."""
    clock = FakeClock(wall=1_000.0)
    async with make_client(clock=clock) as client:
        assert client.clock_offset_ms > 1e12  # OKX's clock minus the fake 1970 one
    async with make_client() as real:
        assert abs(real.clock_offset_ms) < 1_000


async def test_closes_and_polls_keep_separate_queues(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grids = [sim.add_grid(account.user_id, pos=Decimal(2)) for _ in range(3)]
    limiter = LocalRateLimiter(2, 0.5, safety_margin=0.0)
    async with make_client(rate_limiter=limiter) as client:
        polls = asyncio.gather(*(client.get_positions(grids[0].algo_id) for _ in range(6)))
        await asyncio.sleep(0.05)
        # Polls are queued for a second; a close waits for nothing of theirs.
        await asyncio.wait_for(
            client.close_position(grids[1].algo_id, mkt_close=True, wait_timeout=0.1), 0.5
        )
        await polls
