"""LocalRateLimiter on a fake clock: the sliding-window bound, throughput, FIFO, cancellation."""

from __future__ import annotations

import asyncio

import pytest

from okx_grid_async import LocalRateLimiter, WaitTimeoutError
from okx_grid_async.simulator import max_in_window
from okx_grid_async.testing import FakeClock

POS = "/api/v5/tradingBot/grid/positions"
CLOSE = "/api/v5/tradingBot/grid/close-position"


async def _burst(
    limiter: LocalRateLimiter, clock: FakeClock, n: int, endpoint: str = POS
) -> list[float]:
    granted: list[float] = []

    async def one() -> None:
        async with limiter.slot("user-1", endpoint):
            granted.append(clock.monotonic())

    await asyncio.gather(*(one() for _ in range(n)))
    return granted


async def test_first_twenty_go_at_once_and_the_21st_waits_a_full_window() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(20, 2.0, safety_margin=0.05, clock=clock)
    start = clock.monotonic()
    granted = await _burst(limiter, clock, 21)
    assert granted[:20] == [start] * 20
    assert granted[20] == pytest.approx(start + 2.05)


@pytest.mark.parametrize("n", [21, 80, 400])
async def test_no_window_ever_holds_more_than_max_rate(n: int) -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(20, 2.0, safety_margin=0.0, clock=clock)
    granted = await _burst(limiter, clock, n)
    assert len(granted) == n
    assert max_in_window(granted, 2.0) == 20


async def test_sustained_throughput_uses_at_least_95_percent_of_the_budget() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(20, 2.0, clock=clock)
    start = clock.monotonic()
    granted = await _burst(limiter, clock, 400)
    rate = (len(granted) - 20) / (granted[-1] - start)  # the first 20 cost no time
    assert rate / 10.0 >= 0.95


async def test_a_slot_in_flight_counts_until_its_answer_comes_back() -> None:
    """A request still in flight may arrive late, so it holds its slot however long it takes."""
    clock = FakeClock()
    limiter = LocalRateLimiter(2, 1.0, safety_margin=0.0, clock=clock)
    release = asyncio.Event()
    granted: list[float] = []

    async def slow() -> None:
        async with limiter.slot("u", POS):
            await release.wait()

    holders = [asyncio.create_task(slow()) for _ in range(2)]
    await asyncio.sleep(0)

    async def third() -> None:
        async with limiter.slot("u", POS):
            granted.append(clock.monotonic())

    waiter = asyncio.create_task(third())
    for _ in range(5):
        await asyncio.sleep(0)
    clock.advance(10.0)  # far past the window: still both in flight
    for _ in range(5):
        await asyncio.sleep(0)
    assert granted == []
    answered_at = clock.monotonic()
    release.set()
    await asyncio.gather(*holders, waiter)
    # The slot's time is the answer's: the third waits a full window after it.
    assert granted == [pytest.approx(answered_at + 1.0)]


async def test_cancelled_waiter_takes_no_slot_and_leaves_no_stuck_waiter() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(1, 1.0, safety_margin=0.0, clock=clock)
    release = asyncio.Event()

    async def hold() -> None:
        async with limiter.slot("u", POS):
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    release.set()
    await holder
    stats = limiter.stats("u", POS)
    assert stats.granted == 1
    # The next caller gets the slot one window after the first answer, not later.
    answered = clock.monotonic()
    async with limiter.slot("u", POS):
        assert clock.monotonic() == pytest.approx(answered + 1.0)
    assert limiter.stats("u", POS).granted == 2


async def test_endpoints_have_separate_budgets() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(20, 2.0, clock=clock)
    start = clock.monotonic()
    await _burst(limiter, clock, 20, POS)
    closes = await _burst(limiter, clock, 20, CLOSE)
    assert closes == [start] * 20  # polls did not use up closes


async def test_users_have_separate_budgets() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(1, 2.0, clock=clock)
    async with limiter.slot("alice", POS):
        pass
    start = clock.monotonic()
    async with limiter.slot("bob", POS):
        assert clock.monotonic() == start


async def test_penalize_holds_the_budget_for_a_whole_window() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(20, 2.0, safety_margin=0.05, clock=clock)
    start = clock.monotonic()
    await limiter.penalize("u", POS)
    async with limiter.slot("u", POS):
        assert clock.monotonic() == pytest.approx(start + 2.05)
    assert limiter.stats("u", POS).rejections == 1


def test_limiter_works_across_sequential_event_loops() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(2, 1.0, safety_margin=0.0, clock=clock)

    async def use() -> float:
        async with limiter.slot("u", POS):
            return clock.monotonic()

    first = [asyncio.run(use()) for _ in range(2)]
    third = asyncio.run(use())  # a third loop: the window's history carried over
    assert first == [first[0], first[0]]
    assert third == pytest.approx(first[0] + 1.0)


def test_one_budget_across_threads_each_waiter_woken_on_its_own_loop() -> None:
    """Two threads, two loops, one limiter: one budget, and nobody stalls.

    Thread B's waiter is queued behind thread A's held slot; A's release must wake
    B on B's own loop (it once set an Event of the wrong loop and B waited forever).
    """
    import threading
    import time

    limiter = LocalRateLimiter(2, 0.2, safety_margin=0.0)
    granted: list[float] = []
    a_holds = threading.Event()
    b_queued = threading.Event()

    async def thread_a() -> None:
        async with limiter.slot("u", POS), limiter.slot("u", POS):
            granted.extend([time.monotonic()] * 2)
            a_holds.set()
            await asyncio.to_thread(b_queued.wait, 5)
            await asyncio.sleep(0.05)  # B is parked in the queue by now

    async def thread_b() -> float:
        await asyncio.to_thread(a_holds.wait, 5)
        entered = time.monotonic()
        waiting = asyncio.ensure_future(limiter.slot("u", POS).__aenter__())
        await asyncio.sleep(0.01)
        assert not waiting.done()  # both slots are in flight in thread A
        b_queued.set()
        await asyncio.wait_for(waiting, 5)
        granted.append(time.monotonic())
        return time.monotonic() - entered

    results: list[float] = []
    a = threading.Thread(target=asyncio.run, args=(thread_a(),))
    b = threading.Thread(target=lambda: results.append(asyncio.run(thread_b())))
    a.start()
    b.start()
    a.join(10)
    b.join(10)
    assert results, "thread B never got its slot"
    assert results[0] < 1.0  # woken by A's release, a window later
    assert len(granted) == 3
    # One budget: B's grant came a whole window after A's two answers.
    assert granted[2] - granted[0] >= 0.2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_rate": 0}, "max_rate"),
        ({"max_rate": 2.5}, "max_rate"),
        ({"max_rate": True}, "max_rate"),
        ({"time_period": 0}, "time_period"),
        ({"safety_margin": -0.1}, "safety_margin"),
    ],
)
def test_bad_configuration_is_refused(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LocalRateLimiter(**kwargs)  # type: ignore[arg-type]


def test_stats_of_an_unused_budget_are_zero() -> None:
    stats = LocalRateLimiter().stats("nobody", POS)
    assert (stats.granted, stats.waited, stats.rejections) == (0, 0.0, 0)


async def test_wait_bound_fails_at_once_when_the_queue_ahead_makes_it_impossible() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(20, 2.0, safety_margin=0.0, clock=clock)
    release = asyncio.Event()

    async def hold() -> None:
        async with limiter.slot("user-1", POS):
            await release.wait()

    holders = [asyncio.create_task(hold()) for _ in range(20)]
    queued = [asyncio.create_task(hold()) for _ in range(40)]
    await asyncio.sleep(0)
    assert limiter.stats("user-1", POS).max_waiting == 40
    start = clock.monotonic()
    # All 20 in flight and 40 queued ahead: the first answer frees a slot a span
    # after it comes, and the 40 take two more spans, so at least 6 s from now.
    with pytest.raises(WaitTimeoutError) as caught:
        await limiter.slot("user-1", POS, wait_timeout=5.9).__aenter__()
    assert caught.value.waited == 0.0
    assert caught.value.endpoint == POS
    assert "nothing was sent" in str(caught.value)
    assert clock.monotonic() == start
    assert clock.sleeps == []  # it failed at once, without sleeping
    release.set()
    await asyncio.gather(*holders, *queued)
    assert limiter.stats("user-1", POS).granted == 60


async def test_wait_bound_that_the_queue_allows_is_met() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(20, 2.0, safety_margin=0.0, clock=clock)
    start = clock.monotonic()
    await _burst(limiter, clock, 20)
    async with limiter.slot("user-1", POS, wait_timeout=2.5):
        assert clock.monotonic() == pytest.approx(start + 2.0)


async def test_wait_bound_passes_while_queued_behind_requests_in_flight() -> None:
    """The bound cannot be judged at the start (the answer may come soon): it is waited out."""
    limiter = LocalRateLimiter(1, 0.05, safety_margin=0.0)
    release = asyncio.Event()

    async def hold() -> None:
        async with limiter.slot("u", POS):
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(WaitTimeoutError) as caught:
        async with limiter.slot("u", POS, wait_timeout=0.1):
            pytest.fail("granted past its bound")
    assert 0.1 <= loop.time() - started < 1.0
    assert caught.value.waited >= 0.1
    release.set()
    await holder
    assert limiter.stats("u", POS).granted == 1  # the timed-out waiter took no slot


@pytest.mark.parametrize("bad", [0, -1, float("nan"), "1", True])
def test_bad_wait_timeout_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="wait_timeout"):
        LocalRateLimiter().slot("u", POS, wait_timeout=bad)  # type: ignore[arg-type]
