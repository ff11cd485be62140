"""Helpers for testing code that uses okx-grid-async, offline, against the simulator.

- `FakeClock`: a clock that moves only when told (or when a task sleeps).
- Scenario helpers over `GridSimulator`: `add_user()`, `add_stopped_grid()`,
  `add_running_grid()`, `stop_grid_keeping_position()`, `move_mark_price()`,
  `fill_close_order()`, `fail_next()`.
- Assertions: `assert_no_rate_limit_violations()`, `assert_no_duplicate_closes()`.

The pytest plugin (fixtures ``okx_simulator``, ``okx_account``, ``okx_client``
and the ``okx`` marker) is ``okx_grid_async.testing._plugin``, registered through
the ``pytest11`` entry point; importing this module does not import pytest.
"""

from okx_grid_async._publish import publish
from okx_grid_async.testing._assertions import (
    assert_no_duplicate_closes,
    assert_no_rate_limit_violations,
)
from okx_grid_async.testing._clock import FakeClock
from okx_grid_async.testing._scenario import (
    ENDPOINTS,
    add_running_grid,
    add_stopped_grid,
    add_user,
    fail_next,
    fill_close_order,
    move_mark_price,
    stop_grid_keeping_position,
)

__all__ = [
    "ENDPOINTS",
    "FakeClock",
    "add_running_grid",
    "add_stopped_grid",
    "add_user",
    "assert_no_duplicate_closes",
    "assert_no_rate_limit_violations",
    "fail_next",
    "fill_close_order",
    "move_mark_price",
    "stop_grid_keeping_position",
]

publish(globals())
