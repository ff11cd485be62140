"""okx_grid_async.testing: the fake clock, the scenario helpers and the assertions."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable
from decimal import Decimal

import pytest

from okx_grid_async import (
    Credentials,
    GridClient,
    LocalRateLimiter,
    OKXError,
    OutcomeUnknownError,
)
from okx_grid_async._constants import GRID_POSITIONS_PATH
from okx_grid_async.simulator import FaultKind, GridSimulator, SimAccount, SimGrid
from okx_grid_async.testing import (
    ENDPOINTS,
    FakeClock,
    add_running_grid,
    add_stopped_grid,
    add_user,
    assert_no_duplicate_closes,
    assert_no_rate_limit_violations,
    fail_next,
    fill_close_order,
    move_mark_price,
    stop_grid_keeping_position,
)

from .conftest import ClientFactory


async def test_the_fake_clock_moves_only_forward() -> None:
    clock = FakeClock(monotonic=5.0, wall=100.0)
    clock.advance(1.5)
    await clock.sleep(0.5)
    await clock.sleep(-1.0)  # a negative sleep returns at once, as asyncio.sleep does
    assert (clock.monotonic(), clock.time(), clock.sleeps) == (7.0, 102.0, [0.5, -1.0])
    for step in (-0.001, math.nan, math.inf):
        with pytest.raises(ValueError, match="only moves forward"):
            clock.advance(step)
    assert clock.monotonic() == 7.0


# ---------------------------------------------------------------- scenario helpers


async def test_a_user_with_several_keys_shares_one_budget(sim: GridSimulator) -> None:
    keys = add_user(sim, keys=3)
    assert len({k.api_key for k in keys}) == 3
    assert len({k.user_id for k in keys}) == 1
    with pytest.raises(ValueError, match="at least one key"):
        add_user(sim, keys=0)


@pytest.mark.parametrize(
    ("add", "short", "state", "pos", "direction"),
    [
        (add_stopped_grid, False, "no_close_position", Decimal(7), "long"),
        (add_stopped_grid, True, "no_close_position", Decimal(-7), "short"),
        (add_running_grid, False, "running", Decimal(7), "long"),
        (add_running_grid, True, "running", Decimal(-7), "short"),
    ],
)
def test_grids_are_made_long_or_short_running_or_stopped(
    sim: GridSimulator,
    account: SimAccount,
    add: Callable[..., SimGrid],
    short: bool,
    state: str,
    pos: Decimal,
    direction: str,
) -> None:
    grid = add(sim, account.user_id, 7, short=short, inst_id="ETH-USDT-SWAP")
    assert (grid.state, grid.pos, grid.direction, grid.inst_id) == (
        state,
        pos,
        direction,
        "ETH-USDT-SWAP",
    )
    with pytest.raises(ValueError, match="positive"):
        add(sim, account.user_id, 0)


async def test_stop_move_and_fill(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = add_running_grid(sim, account.user_id, 10, mark_px="100")
    assert stop_grid_keeping_position(sim, grid.algo_id).state == "no_close_position"
    with pytest.raises(LookupError, match="no live close order"):
        fill_close_order(sim, grid.algo_id)
    async with make_client() as client:
        await client.close_position(grid.algo_id, mkt_close=False, sz=4, px="110")
    assert move_mark_price(sim, grid.algo_id, "105").pos == 10  # not reached yet
    order = fill_close_order(sim, grid.algo_id)
    assert (order.state, grid.pos, grid.mark_px) == ("filled", Decimal(6), Decimal(110))


async def test_fail_next_takes_a_short_name_or_a_path(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = add_stopped_grid(sim, account.user_id)
    fail_next(sim, "positions", FaultKind.BUSY_50013, count=2)
    fail_next(sim, ENDPOINTS["close-position"], FaultKind.APPLY_THEN_DROP)
    async with make_client() as client:
        await client.get_positions(grid.algo_id)  # retried past both 50013s
        with pytest.raises(OutcomeUnknownError):
            await client.close_position(grid.algo_id, mkt_close=True)
    codes = [a.code for a in sim.arrivals(account.user_id)]
    assert codes == ["50013", "50013", "0", ""]
    with pytest.raises(ValueError, match="unknown endpoint 'nope'"):
        fail_next(sim, "nope", FaultKind.HTTP_503)


# ---------------------------------------------------------------- assertions


async def flood(sim: GridSimulator, account: SimAccount, algo_id: str, each: int) -> None:
    """Two clients with a limiter each: together they send 2 * ``each`` in one window."""
    creds = Credentials(account.api_key, account.secret_key, account.passphrase)
    clients = [
        GridClient(
            creds, base_url=sim.url, user_id=account.user_id, rate_limiter=LocalRateLimiter()
        )
        for _ in range(2)
    ]
    async with clients[0] as a, clients[1] as b:
        await asyncio.gather(
            *(c.get_positions(algo_id) for c in (a, b) for _ in range(each)),
            return_exceptions=True,
        )


async def test_the_window_check_fails_on_a_hand_made_violation() -> None:
    async with GridSimulator(enforce_limits=False) as sim:
        account = sim.add_account()
        grid = add_stopped_grid(sim, account.user_id)
        await flood(sim, account, grid.algo_id, 15)
        with pytest.raises(AssertionError) as failed:
            assert_no_rate_limit_violations(sim)
    message = str(failed.value)
    assert message.startswith("OKX's rate limit was exceeded:")
    assert f"user {account.user_id} on {GRID_POSITIONS_PATH}: 30 requests arrived" in message
    assert "(limit 20 per 2 s)" in message
    assert "50011" not in message  # nothing was enforced


async def test_a_50011_from_the_limiter_fails_the_check(
    sim: GridSimulator, account: SimAccount
) -> None:
    grid = add_stopped_grid(sim, account.user_id)
    await flood(sim, account, grid.algo_id, 15)
    with pytest.raises(AssertionError, match="rate limiter answered 50011 to"):
        assert_no_rate_limit_violations(sim)


async def test_clean_runs_pass_both_checks_an_injected_50011_included(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grids = [add_stopped_grid(sim, account.user_id) for _ in range(3)]
    fail_next(sim, "positions", FaultKind.RATE_LIMIT_50011)
    fail_next(sim, "close-position", FaultKind.APPLY_THEN_DROP)
    async with make_client() as client:
        for grid in grids:
            await client.get_positions(grid.algo_id)
            try:
                await client.close_position(grid.algo_id, mkt_close=True)
            except OutcomeUnknownError:
                assert (await client.reconcile_close(grid.algo_id)).is_closed
    assert_no_rate_limit_violations(sim)
    assert_no_duplicate_closes(sim)


async def test_a_resent_close_fails_the_duplicate_check_naming_the_grid(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = add_stopped_grid(sim, account.user_id)
    fail_next(sim, "close-position", FaultKind.TIMEOUT_50004)
    async with make_client() as client:
        for _ in range(2):
            with contextlib.suppress(OKXError):
                await client.close_position(grid.algo_id, mkt_close=True)
    with pytest.raises(AssertionError) as failed:
        assert_no_duplicate_closes(sim)
    (line,) = str(failed.value).splitlines()[1:]
    assert line.startswith(f"  grid {grid.algo_id} (user {account.user_id}): market close at t=")
    assert "(refused 51059, pos 0 -> 0) repeats market close at t=" in line
    assert line.endswith("(executed, pos 35 -> 0)")


async def test_the_simulators_latency_delays_every_private_answer() -> None:
    with pytest.raises(ValueError, match="latency"):
        GridSimulator(latency=-1.0)
    loop = asyncio.get_running_loop()
    async with GridSimulator(latency=0.3) as sim:
        account = sim.add_account()
        grid = add_stopped_grid(sim, account.user_id)
        started = loop.time()
        await flood(sim, account, grid.algo_id, 1)  # two requests, side by side
        slow = loop.time() - started
        sim.latency = 0.0
        started = loop.time()
        await flood(sim, account, grid.algo_id, 1)
        fast = loop.time() - started
    assert [a.code for a in sim.arrivals()] == ["0"] * 4
    assert slow >= 0.3 > fast
