"""An OKX look-alike HTTP server for contract grids: auth, rate limits, faults, moving prices.

Used by the library's tests and benchmarks, the demo, and ``okx-grid simulate``::

    async with GridSimulator(seed=1) as sim:
        account = sim.add_account()
        grid = sim.add_grid(account.user_id)
        ...  # point a client at sim.url with the account's keys
"""

from okx_grid_async._publish import publish
from okx_grid_async.simulator._closes import CloseRecord
from okx_grid_async.simulator._faults import FaultKind
from okx_grid_async.simulator._limits import Arrival, max_in_window
from okx_grid_async.simulator._model import CloseOrder, Direction, GridState, SimAccount, SimGrid
from okx_grid_async.simulator._routing import RecordedRequest
from okx_grid_async.simulator._serve import (
    DEMO_API_KEY,
    DEMO_PASSPHRASE,
    DEMO_SECRET_KEY,
    DEMO_USER_ID,
    serve_forever,
)
from okx_grid_async.simulator._server import GridSimulator

__all__ = [
    "DEMO_API_KEY",
    "DEMO_PASSPHRASE",
    "DEMO_SECRET_KEY",
    "DEMO_USER_ID",
    "Arrival",
    "CloseOrder",
    "CloseRecord",
    "Direction",
    "FaultKind",
    "GridSimulator",
    "GridState",
    "RecordedRequest",
    "SimAccount",
    "SimGrid",
    "max_in_window",
    "serve_forever",
]

# Tracebacks and reprs show okx_grid_async.simulator.GridSimulator, the name users import.
publish(globals())
