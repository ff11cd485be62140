"""The exchange deadline: a stretch past it ends in ExpiredError, with a timer of its own or
one `DeadlineTimer` shared by a client's calls, whatever order their deadlines come in.

Real time, on the running loop (the deadline's timer is an event-loop callback); each
test only relies on a short deadline firing long before a long sleep ends.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from okx_grid_async import SystemClock
from okx_grid_async._deadline import Deadline, DeadlineTimer, ExpiredError

SHORT = 0.05  # a deadline, in seconds
LONG = 2.0  # a sleep that a deadline must cut short


async def _stretch(seconds: float, timer: DeadlineTimer | None, sleep: float) -> str:
    """Sleep ``sleep`` inside one stretch of a ``seconds`` deadline: "expired" or "done"."""
    deadline = Deadline(seconds, SystemClock(), timer)
    try:
        with deadline:
            await asyncio.sleep(sleep)
    except ExpiredError:
        return "expired"
    return "done"


@pytest.mark.parametrize("shared", [False, True], ids=["own timer", "shared timer"])
async def test_a_stretch_past_its_deadline_expires_and_one_within_it_does_not(
    shared: bool,
) -> None:
    timer = DeadlineTimer() if shared else None
    assert await _stretch(SHORT, timer, LONG) == "expired"
    assert await _stretch(LONG, timer, 0) == "done"
    # The timer armed for that deadline stays armed: it must not cancel anyone else.
    await asyncio.sleep(SHORT)
    assert await _stretch(LONG, timer, SHORT) == "done"


async def test_a_shorter_deadline_after_a_longer_one_fires_on_time() -> None:
    timer = DeadlineTimer()
    slow = asyncio.create_task(_stretch(10 * LONG, timer, 4 * SHORT))
    await asyncio.sleep(0)  # the long deadline arms the timer first
    assert await _stretch(SHORT, timer, LONG) == "expired"
    assert await slow == "done"


async def test_the_timer_rearms_for_the_next_deadline_after_firing() -> None:
    timer = DeadlineTimer()
    first, second = await asyncio.gather(
        _stretch(SHORT, timer, LONG), _stretch(4 * SHORT, timer, LONG)
    )
    assert (first, second) == ("expired", "expired")
    # And after a firing with no stretch left under way.
    assert await _stretch(SHORT, timer, 0) == "done"
    await asyncio.sleep(2 * SHORT)
    assert await _stretch(SHORT, timer, LONG) == "expired"


async def test_stretches_add_up_and_time_between_them_is_not_charged() -> None:
    deadline = Deadline(4 * SHORT, SystemClock(), DeadlineTimer())
    with deadline:
        await asyncio.sleep(SHORT)
    await asyncio.sleep(8 * SHORT)  # outside any stretch: not charged
    assert 0 < deadline.remaining() < 3.5 * SHORT
    with pytest.raises(ExpiredError), deadline:
        await asyncio.sleep(LONG)


def test_a_timer_serves_one_loop_and_a_deadline_on_another_keeps_its_own() -> None:
    timer = DeadlineTimer()
    assert asyncio.run(_stretch(SHORT, timer, LONG)) == "expired"
    assert asyncio.run(_stretch(SHORT, timer, LONG)) == "expired"


def test_a_deadline_on_another_thread_never_takes_the_timer_loop_s_task() -> None:
    """The timer finds a deadline's task in its own loop only on that loop's thread."""
    timer = DeadlineTimer()
    elsewhere: list[str] = []

    def other_thread() -> None:
        elsewhere.append(asyncio.run(_stretch(SHORT, timer, LONG)))

    async def main() -> None:
        assert await _stretch(LONG, timer, 0) == "done"  # binds the timer here
        thread = threading.Thread(target=other_thread)
        thread.start()
        # Meanwhile this task is the one its loop runs: the other thread's deadline
        # must not take it for its own.
        time.sleep(4 * SHORT)  # noqa: ASYNC251 (blocking on purpose)
        await asyncio.to_thread(thread.join)

    asyncio.run(main())
    assert elsewhere == ["expired"]


async def test_a_cancellation_that_is_not_the_deadline_s_propagates() -> None:
    task = asyncio.create_task(_stretch(LONG, DeadlineTimer(), LONG))
    await asyncio.sleep(SHORT)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
