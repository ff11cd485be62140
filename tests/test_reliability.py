"""Faults from the simulator: what is retried, what is never sent twice, deadlines, cancellation."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from okx_grid_async import (
    Credentials,
    DeadlineExceededError,
    GridClient,
    HTTPStatusError,
    MalformedResponseError,
    OutcomeUnknownError,
    RateLimitError,
    TransportError,
)
from okx_grid_async._constants import GRID_CLOSE_POSITION_PATH, GRID_POSITIONS_PATH
from okx_grid_async.simulator import FaultKind, GridSimulator, SimAccount

from .conftest import ClientFactory

POS, CLOSE = GRID_POSITIONS_PATH, GRID_CLOSE_POSITION_PATH


def _codes(sim: GridSimulator, path: str) -> list[str]:
    return [a.code for a in sim.arrivals(path=path)]


@pytest.mark.parametrize(
    "fault",
    [
        FaultKind.RATE_LIMIT_50011,
        FaultKind.BUSY_50013,
        FaultKind.HTTP_503,
        FaultKind.HTTP_500_HTML,
        FaultKind.TIMEOUT_50004,
        FaultKind.DROP_CONNECTION,
    ],
)
async def test_get_is_retried_through_transient_faults(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory, fault: FaultKind
) -> None:
    grid = sim.add_grid(account.user_id)
    sim.inject_fault(fault, POS, count=2)
    async with make_client() as client:
        (position,) = await client.get_positions(grid.algo_id)
    assert position.algo_id == grid.algo_id
    assert len(sim.arrivals(path=POS)) == 3


@pytest.mark.parametrize("fault", [FaultKind.RATE_LIMIT_50011, FaultKind.BUSY_50013])
async def test_close_is_retried_only_when_certainly_not_executed(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory, fault: FaultKind
) -> None:
    grid = sim.add_grid(account.user_id)
    sim.inject_fault(fault, CLOSE)
    async with make_client() as client:
        result = await client.close_position(grid.algo_id, mkt_close=True)
    assert result.algo_id == grid.algo_id
    assert sim.close_calls(grid.algo_id) == 1
    assert _codes(sim, CLOSE)[-1] == "0"


@pytest.mark.parametrize(
    "fault",
    [
        FaultKind.APPLY_THEN_DROP,
        FaultKind.TIMEOUT_50004,
        FaultKind.HTTP_500_HTML,
        FaultKind.HTTP_503,
        FaultKind.MALFORMED_JSON,
    ],
)
async def test_close_with_unknown_outcome_is_never_sent_twice(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory, fault: FaultKind
) -> None:
    grid = sim.add_grid(account.user_id, pos=Decimal(8))
    sim.inject_fault(fault, CLOSE)
    async with make_client() as client:
        with pytest.raises(OutcomeUnknownError) as info:
            await client.close_position(grid.algo_id, mkt_close=False, sz=2, px="29300")
        assert info.value.algo_id == grid.algo_id
        assert info.value.request == {
            "path": CLOSE,
            "algoId": grid.algo_id,
            "mktClose": False,
            "sz": "2",
            "px": "29300",
        }
        # The way out: read the grid, never resend blindly.
        reconciled = await client.reconcile_close(grid.algo_id)
    assert len(sim.arrivals(path=CLOSE)) == 1
    assert reconciled.positions
    assert not reconciled.is_closed  # a partial close leaves the position until it fills


async def test_close_whose_answer_never_comes_is_unknown_at_the_deadline(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id)
    sim.inject_fault(FaultKind.APPLY_THEN_HANG, CLOSE)
    async with make_client() as client:
        with pytest.raises(OutcomeUnknownError, match="deadline"):
            await client.close_position(grid.algo_id, mkt_close=True, timeout=0.3)
        reconciled = await client.reconcile_close(grid.algo_id)
    assert reconciled.is_closed  # it did take effect
    assert sim.close_calls(grid.algo_id) == 1


async def test_get_deadline_covers_slow_answers(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id)
    sim.inject_fault(FaultKind.LATENCY, POS, delay=2.0)
    loop = asyncio.get_running_loop()
    async with make_client() as client:
        start = loop.time()
        with pytest.raises(DeadlineExceededError):
            await client.get_positions(grid.algo_id, timeout=0.3)
        assert loop.time() - start < 1.0
        sim.clear_faults()
        assert await client.get_positions(grid.algo_id)  # still usable


async def test_the_deadline_excludes_rate_limit_waits(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    from okx_grid_async import LocalRateLimiter

    grid = sim.add_grid(account.user_id)
    limiter = LocalRateLimiter(1, 0.5)
    async with make_client(rate_limiter=limiter) as client:
        await client.get_positions(grid.algo_id)
        # Half a second in the queue, then an exchange well within 0.2 s.
        assert await client.get_positions(grid.algo_id, timeout=0.2)
    assert len(sim.arrivals(path=POS)) == 2


async def test_malformed_get_answer_is_typed_and_keeps_raw_text(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id)
    sim.inject_fault(FaultKind.MALFORMED_JSON, POS)
    async with make_client() as client:
        with pytest.raises(MalformedResponseError) as info:
            await client.get_positions(grid.algo_id)
    assert info.value.raw_text.startswith("{")


async def test_persistent_5xx_ends_as_http_status_error(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id)
    sim.inject_fault(FaultKind.HTTP_500_HTML, POS, count=10)
    async with make_client(max_attempts=3) as client:
        with pytest.raises(HTTPStatusError) as info:
            await client.get_positions(grid.algo_id)
    assert info.value.http_status == 500
    assert len(sim.arrivals(path=POS)) == 3


async def test_persistent_50011_slows_the_limiter_down(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    from okx_grid_async import LocalRateLimiter
    from okx_grid_async.testing import FakeClock

    grid = sim.add_grid(account.user_id)
    clock = FakeClock()
    limiter = LocalRateLimiter(clock=clock)
    sim.inject_fault(FaultKind.RATE_LIMIT_50011, POS, count=10)
    async with make_client(rate_limiter=limiter, clock=clock, max_attempts=3) as client:
        with pytest.raises(RateLimitError):
            await client.get_positions(grid.algo_id)
    stats = limiter.stats(client.user_id, POS)
    assert stats.rejections == 3  # every 50011 told the limiter, the last one too
    # Each penalty held the budget for a whole window (backoff sleeps count towards it).
    assert sum(clock.sleeps) >= 2 * 2.05 - 1e-9


async def test_connection_refused_is_a_transport_error_not_sent(
    sim: GridSimulator, account: SimAccount, closed_port: int
) -> None:
    creds = Credentials(account.api_key, account.secret_key, account.passphrase)
    client = GridClient(creds, base_url=f"http://127.0.0.1:{closed_port}", timeout=2.0)
    with pytest.raises(TransportError) as info:
        await client.__aenter__()
    assert info.value.sent is False
    await client.aclose()


async def test_cancelling_mid_request_leaves_client_and_limiter_usable(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    from okx_grid_async import LocalRateLimiter

    grid = sim.add_grid(account.user_id)
    limiter = LocalRateLimiter(2, 2.0)
    sim.inject_fault(FaultKind.LATENCY, POS, delay=5.0)
    async with make_client(rate_limiter=limiter) as client:
        task = asyncio.create_task(client.get_positions(grid.algo_id))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The cancelled request's slot was answered (released); the second slot is free.
        assert await client.get_positions(grid.algo_id)
    assert limiter.stats(client.user_id, POS).granted == 2


async def test_a_dropped_get_is_not_resent_behind_the_limiters_back(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id)
    async with make_client(max_attempts=1) as client:
        await client.get_positions(grid.algo_id)  # the next request reuses this connection
        sim.inject_fault(FaultKind.DROP_CONNECTION, POS)
        with pytest.raises(TransportError) as info:
            await client.get_positions(grid.algo_id)
    assert info.value.sent is True
    assert len(sim.arrivals(path=POS)) == 2  # one good, one dropped: no hidden third


async def test_close_acknowledged_without_its_row_is_unknown_keeping_the_raw_text(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id)
    sim.inject_fault(FaultKind.EMPTY_DATA, CLOSE)
    async with make_client() as client:
        with pytest.raises(OutcomeUnknownError) as info:
            await client.close_position(grid.algo_id, mkt_close=True)
    cause = info.value.__cause__
    assert isinstance(cause, MalformedResponseError)
    assert "expected one row, got 0" in cause.reason
    assert cause.raw_text == '{"code":"0","msg":"","data":[]}'
    assert sim.close_calls(grid.algo_id) == 1


async def test_a_call_may_wait_longer_than_the_client_default_when_asked(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id)
    async with make_client(timeout=0.5, max_attempts=1) as client:
        sim.inject_fault(FaultKind.LATENCY, POS, delay=0.8)
        with pytest.raises(DeadlineExceededError):
            await client.get_positions(grid.algo_id)
        sim.inject_fault(FaultKind.LATENCY, POS, delay=0.8)
        # The call's own deadline replaces the client's: no other bound (a socket
        # read timeout, say) cuts it short at 0.5 s.
        assert await client.get_positions(grid.algo_id, timeout=3.0)


async def test_opening_is_bounded_by_the_client_timeout(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    sim.inject_fault(FaultKind.LATENCY, "/api/v5/public/time", delay=2.0)
    client = make_client(timeout=0.3)
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(DeadlineExceededError, match="OKX's time"):
        await client.__aenter__()
    assert loop.time() - start < 1.0


async def test_an_outer_timeout_is_the_callers_not_a_deadline_error(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id)
    sim.inject_fault(FaultKind.LATENCY, POS, delay=2.0)
    async with make_client() as client:
        with pytest.raises(TimeoutError) as info:
            async with asyncio.timeout(0.2):  # shorter than the call's own 5 s deadline
                await client.get_positions(grid.algo_id)
        assert not isinstance(info.value, DeadlineExceededError)
        sim.clear_faults()
        assert await client.get_positions(grid.algo_id)


async def test_an_outer_cancel_stays_a_cancel(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id)
    sim.inject_fault(FaultKind.LATENCY, POS, delay=2.0)
    async with make_client() as client:
        task = asyncio.create_task(client.get_positions(grid.algo_id, timeout=5.0))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()
