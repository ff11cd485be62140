"""Helpers for testing code that uses okx-grid-async, offline, against the simulator.

- `FakeClock`: a clock that moves only when told (or when a task sleeps).

The pytest plugin (fixtures ``okx_simulator``, ``okx_account``, ``okx_client``
and the ``okx`` marker) lives in ``okx_grid_async.testing._plugin`` and is
registered through the ``pytest11`` entry point; importing this module does
not import pytest.
"""

from okx_grid_async.testing._clock import FakeClock

__all__ = ["FakeClock"]
