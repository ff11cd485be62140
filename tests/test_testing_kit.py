"""okx_grid_async.testing: the fake clock, the scenario helpers and the assertions."""

from __future__ import annotations

import math

import pytest

from okx_grid_async.testing import FakeClock


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
