"""``okx-grid simulate``: a simulator with the demo account, served until cancelled."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import Final, TextIO

from okx_grid_async.simulator._server import GridSimulator

__all__ = [
    "DEMO_API_KEY",
    "DEMO_PASSPHRASE",
    "DEMO_SECRET_KEY",
    "DEMO_USER_ID",
    "serve_forever",
]

# Fake, well-known credentials of the demo account that serve_forever creates.
DEMO_API_KEY: Final = "0kx9r1d0-de30-4000-8000-000000000001"
DEMO_SECRET_KEY: Final = "DEMO0000000000000000000000000001"  # noqa: S105 - public by design
DEMO_PASSPHRASE: Final = "Demo-Passphrase-1"  # noqa: S105 - public by design
DEMO_USER_ID: Final = "100000000000001"


async def serve_forever(
    port: int = 8000,
    grids: int = 50,
    *,
    host: str = "127.0.0.1",
    seed: int | None = 0,
    price_tick_interval: float | None = 1.0,
    out: TextIO | None = None,
) -> None:
    """Run a simulator with the demo account and ``grids`` demo grids until cancelled.

    Prints the URL and the demo credentials (`DEMO_API_KEY` and
    friends, fake and public) to ``out`` (default stdout). ``port`` 0 picks a
    free port. Marks move every ``price_tick_interval`` seconds.
    """
    stream = sys.stdout if out is None else out
    async with GridSimulator(
        host, port, seed=seed, price_tick_interval=price_tick_interval, history_limit=10_000
    ) as sim:
        sim.add_account(DEMO_API_KEY, DEMO_SECRET_KEY, DEMO_PASSPHRASE, DEMO_USER_ID)
        sim.add_demo_grids(DEMO_USER_ID, grids)
        lines: Sequence[str] = (
            f"OKX grid simulator listening on {sim.url}",
            f"  api key:    {DEMO_API_KEY}",
            f"  secret key: {DEMO_SECRET_KEY}",
            f"  passphrase: {DEMO_PASSPHRASE}",
            f"  user id:    {DEMO_USER_ID} ({grids} grids)",
        )
        print(*lines, sep="\n", file=stream, flush=True)
        await asyncio.Event().wait()
