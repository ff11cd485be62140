"""The arrival model in virtual time: no window of T ever holds more than max_rate arrivals.

Each simulated request takes a slot of a real LocalRateLimiter, travels to "OKX"
for its way-there delay, is counted there (its arrival), travels back for its
way-back delay, and releases its slot with the credit that RoundTrips gives it,
exactly as the transport does. The delays are chosen adversarially: all of the
round trip on the way there, all on the way back, a sudden jump, new connections
whose handshakes inflate the round trip, and abandoned requests.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
from collections.abc import Callable

import pytest

from okx_grid_async import LocalRateLimiter
from okx_grid_async._round_trips import RoundTrips
from okx_grid_async.simulator import GridSimulator, SimAccount, max_in_window

from .conftest import ClientFactory

POS = "/api/v5/tradingBot/grid/positions"
RATE, PERIOD, MARGIN = 20, 2.0, 0.05


class VirtualClock:
    """Time moves only when every task is blocked: it jumps to the next sleeper's wake-up."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(seconds, 0.0), next(self._order), future))
        await future

    async def run(self, main: asyncio.Future[None]) -> None:
        """Drive ``main`` to its end, jumping time whenever everything waits."""
        while not main.done():
            for _ in range(50):  # let every runnable task run
                await asyncio.sleep(0)
            while self._sleepers and self._sleepers[0][2].cancelled():
                heapq.heappop(self._sleepers)
            if self._sleepers:
                wake, _, future = heapq.heappop(self._sleepers)
                self.now = max(self.now, wake)
                future.set_result(None)


Delays = Callable[[int], tuple[float, float, bool]]  # request i -> (there, back, reused)


async def _run(n: int, delays: Delays, *, abandon_after: float | None = None) -> list[float]:
    """Send ``n`` requests at once; the arrival times at OKX."""
    clock = VirtualClock()
    limiter = LocalRateLimiter(RATE, PERIOD, safety_margin=MARGIN, clock=clock)
    trips = RoundTrips()
    arrivals: list[float] = []

    async def one(i: int) -> None:
        there, back, reused = delays(i)
        slot = limiter.slot("u", POS)
        await slot.__aenter__()
        sent = clock.now
        if abandon_after is not None and abandon_after < there:
            # Abandoned in flight: its bytes still reach OKX later; the client holds
            # the slot for a connect timeout, as the transport does.
            asyncio.get_running_loop().call_soon(arrive_later, sent + there)
            await clock.sleep(abandon_after)
            slot.arrived(-5.0)  # type: ignore[attr-defined]
            await slot.__aexit__(None, None, None)
            return
        await clock.sleep(there)
        arrivals.append(clock.now)
        await clock.sleep(back)
        credit = trips.credit(clock.now, clock.now - sent, reused=reused)
        slot.arrived(credit)  # type: ignore[attr-defined]
        await slot.__aexit__(None, None, None)

    pending: list[asyncio.Task[None]] = []

    def arrive_later(at: float) -> None:
        async def later() -> None:
            await clock.sleep(at - clock.now)
            arrivals.append(clock.now)

        pending.append(asyncio.ensure_future(later()))

    async def everything() -> None:
        await asyncio.gather(*(one(i) for i in range(n)))
        await asyncio.gather(*pending)

    main = asyncio.ensure_future(everything())
    await clock.run(main)
    await main
    return sorted(arrivals)


def _sustained(arrivals: list[float]) -> float:
    """Arrivals per second past the first burst, as a share of the limit (10/s)."""
    return (len(arrivals) - RATE) / (arrivals[-1] - arrivals[0]) / (RATE / PERIOD)


_JITTER = random.Random(7)


def _jittered(i: int) -> tuple[float, float, bool]:
    # 100 ms each way, +-20 % on each direction independently (the benchmark's proxy).
    return (0.1 * _JITTER.uniform(0.8, 1.2), 0.1 * _JITTER.uniform(0.8, 1.2), True)


@pytest.mark.parametrize(
    ("name", "delays"),
    [
        ("all of it on the way there", lambda i: (0.2, 0.0, True)),
        ("all of it on the way back", lambda i: (0.0, 0.2, True)),
        ("evenly split", lambda i: (0.1, 0.1, True)),
        ("+-20 % jitter each way", _jittered),
    ],
)
async def test_no_window_holds_more_than_max_rate_whatever_the_split(
    name: str, delays: Delays
) -> None:
    arrivals = await _run(300, delays)
    assert len(arrivals) == 300
    assert max_in_window(arrivals, PERIOD) <= RATE, name
    # The credit is what buys the speed: near the 20 / 2.05 s of an instant answer,
    # where counting each request until its answer would give 20 / 2.25 s (89 %).
    assert _sustained(arrivals) > 0.95, name


async def test_a_sudden_jump_of_the_round_trip_keeps_the_bound() -> None:
    """50 ms for 100 requests, then 500 ms on the way there, then 50 ms again."""

    def delays(i: int) -> tuple[float, float, bool]:
        if 100 <= i < 200:
            return (0.475, 0.025, True)
        return (0.025, 0.025, True)

    arrivals = await _run(300, delays)
    assert max_in_window(arrivals, PERIOD) <= RATE


async def test_handshakes_of_new_connections_earn_no_credit() -> None:
    """Every request on a new connection: 0.6 s of handshakes before it leaves, none reused.

    Were those round trips samples, a 0.7 s floor would be credited while a request
    takes 0.05 s to arrive: the next ones would land inside the window.
    """

    def delays(i: int) -> tuple[float, float, bool]:
        return (0.65 if i < 20 else 0.05, 0.05, i >= 20 and i % 3 == 0)

    arrivals = await _run(200, delays)
    assert max_in_window(arrivals, PERIOD) <= RATE


async def test_abandoned_requests_keep_their_slots_until_they_can_no_longer_arrive() -> None:
    """The review's case: 20 reads abandoned at 0.1 s, each delayed 0.3 s on the way in;
    20 more follow over a direct path."""
    arrivals = await _run(40, lambda i: (0.3 if i < 20 else 0.0, 0.0, True), abandon_after=0.1)
    assert len(arrivals) == 40
    assert max_in_window(arrivals, PERIOD) <= RATE


def test_round_trips_forget_old_samples_and_need_a_few() -> None:
    trips = RoundTrips(window=60.0, min_samples=3)
    assert trips.credit(0.0, 0.2, reused=True) == 0.0  # one sample: no credit yet
    assert trips.credit(1.0, 0.3, reused=True) == 0.0
    assert trips.credit(2.0, 0.25, reused=True) == 0.2  # three: the minimum
    assert trips.credit(3.0, 0.15, reused=False) == 0.15  # never more than its own
    assert trips.floor(59.0) == 0.2
    assert trips.floor(60.5) == 0.0  # the 0.2 sample aged out, and only two are left
    assert trips.credit(61.5, 0.4, reused=True) == 0.0  # two recent: 0.25 and 0.4
    assert trips.credit(61.9, 0.35, reused=True) == 0.25  # three again


async def test_a_real_client_measures_round_trips_on_reused_connections_only(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    """The credit needs samples: aiohttp hands a short answer's connection back before
    the response is returned, so reuse is told from the response's protocol object."""
    grid = sim.add_grid(account.user_id)
    async with make_client() as client:
        transport = client._transport
        for _ in range(5):
            await client.get_positions(grid.algo_id)
        now = transport._clock.monotonic()
        # Reading OKX's time opened the one connection; the five reads reused it.
        assert len(transport._connections) == 1
        assert len(transport._round_trips._times) == 5
        assert 0 < transport._round_trips.floor(now) <= transport.min_round_trip * 50
