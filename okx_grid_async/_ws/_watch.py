"""What a `GridClient` needs to watch: its WebSocket URL, its streams, and the two channels.

`Streams` is built once per client. Its `positions()` and `grids()` validate their
arguments, build the channel's subscription arguments and REST resync, and return a
`WatchStream`; its `aclose()` stops every stream the client started.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from typing import Final

from okx_grid_async._clock import Clock, SystemClock
from okx_grid_async._constants import WS_OPS_PER_HOUR, WS_OPS_PERIOD, WS_RESYNC_CONCURRENCY
from okx_grid_async._errors import InvalidArgumentError, OKXError
from okx_grid_async._instruments import check_inst_id
from okx_grid_async._models import GridOrder, GridPosition
from okx_grid_async._sweep import AlgoIds, sweep
from okx_grid_async._transport import Transport
from okx_grid_async._validation import check_id

from ._inbox import WatchFailure, WatchStats
from ._policy import check_heartbeat
from ._protocol import GRIDS, POSITIONS
from ._stream import StreamCore, StreamRegistry, WatchStream
from ._urls import default_ws_url, validate_ws_url

__all__ = ["WATCH_INST_TYPES", "Streams"]

WATCH_INST_TYPES: Final = frozenset({"SWAP", "FUTURES", "ANY"})
# orders-algo-pending's largest page, which a grids resync reads.
_PAGE: Final = 100

FetchPositions = Callable[[str], Awaitable[list[GridPosition]]]
ListGrids = Callable[[], AsyncIterator[GridOrder]]


class Streams:
    """A client's WebSocket URL and clock, and the streams it started (to stop on closing)."""

    __slots__ = ("clock", "jitter", "ops_per_hour", "registry", "transport", "ws_url")

    def __init__(self, transport: Transport, ws_url: str | None, clock: Clock | None) -> None:
        self.transport = transport
        self.ws_url = (
            default_ws_url(transport.base_url, transport.demo)
            if ws_url is None
            else validate_ws_url(ws_url)
        )
        self.clock: Clock = clock or SystemClock()
        self.registry = StreamRegistry()
        # The reconnect backoff's random numbers in [0, 1); None: a random.Random's.
        self.jitter: Callable[[], float] | None = None
        # Operations (login, subscribe) per connection and their window: OKX's 480 an hour.
        self.ops_per_hour = (WS_OPS_PER_HOUR, WS_OPS_PERIOD)

    def positions(
        self,
        algo_ids: AlgoIds,
        fetch: FetchPositions,
        *,
        heartbeat: float,
        pong_timeout: float,
    ) -> WatchStream[GridPosition]:
        """A ``grid-positions`` stream of ``algo_ids``, resynced with ``fetch``."""
        beat, pong = check_heartbeat(heartbeat, pong_timeout)

        async def resync(
            args: list[Mapping[str, str]], stats: WatchStats
        ) -> AsyncGenerator[GridPosition | WatchFailure, None]:
            async def counted(algo_id: str) -> list[GridPosition]:
                stats.resync_requests += 1
                return await fetch(algo_id)

            ids = [arg["algoId"] for arg in args]
            async with contextlib.aclosing(sweep(ids, counted, WS_RESYNC_CONCURRENCY)) as results:
                async for result in results:
                    if result.error is not None:
                        yield WatchFailure(result.algo_id, result.error)
                    for position in result.positions or ():
                        yield position

        core = StreamCore(
            self.transport,
            self.ws_url,
            self.clock,
            POSITIONS,
            args=[],
            ids=algo_ids,
            arg_of=_position_arg,
            resync=resync,
            heartbeat=beat,
            pong_timeout=pong,
            jitter=self.jitter,
            ops_per_hour=self.ops_per_hour,
        )
        return WatchStream[GridPosition](core, self.registry)

    def grids(
        self,
        inst_type: str,
        inst_id: str | None,
        algo_id: str | None,
        list_grids: ListGrids,
        *,
        heartbeat: float,
        pong_timeout: float,
    ) -> WatchStream[GridOrder]:
        """A ``grid-orders-contract`` stream, resynced from the pending listing."""
        if not isinstance(inst_type, str):
            raise TypeError(f"inst_type must be a str, not {type(inst_type).__name__}")
        if inst_type not in WATCH_INST_TYPES:
            raise InvalidArgumentError(
                f"inst_type must be 'SWAP', 'FUTURES' or 'ANY', not {inst_type!r}"
            )
        arg = {"channel": GRIDS.name, "instType": inst_type}
        if inst_id is not None:
            arg["instId"] = check_inst_id(inst_id)
        if algo_id is not None:
            arg["algoId"] = check_id(algo_id, "algo_id")
        beat, pong = check_heartbeat(heartbeat, pong_timeout)

        def wanted(grid: GridOrder) -> bool:
            return (
                inst_type in ("ANY", grid.inst_type)
                and inst_id in (None, grid.inst_id)
                and algo_id in (None, grid.algo_id)
            )

        async def resync(
            args: list[Mapping[str, str]], stats: WatchStats
        ) -> AsyncGenerator[GridOrder | WatchFailure, None]:
            rows = 0
            try:
                async for grid in list_grids():
                    rows += 1
                    if wanted(grid):
                        yield grid
            finally:
                # The listing reads pages of 100 until one comes back short.
                stats.resync_requests += rows // _PAGE + 1

        core = StreamCore(
            self.transport,
            self.ws_url,
            self.clock,
            GRIDS,
            args=[arg],
            ids=None,
            arg_of=None,
            resync=resync,
            heartbeat=beat,
            pong_timeout=pong,
            jitter=self.jitter,
            ops_per_hour=self.ops_per_hour,
        )
        return WatchStream[GridOrder](core, self.registry)

    async def aclose(self) -> None:
        """Stop every stream started; each one's next read raises RuntimeError."""
        await self.registry.aclose()


def _position_arg(item: object) -> Mapping[str, str] | WatchFailure:
    """The ``grid-positions`` argument of one id (or `GridOrder`); an error for a bad id."""
    algo_id = item.algo_id if isinstance(item, GridOrder) else item
    try:
        check_id(algo_id, "algo_id")
    except TypeError as exc:
        return WatchFailure(repr(algo_id), InvalidArgumentError(str(exc)))
    except OKXError as exc:
        return WatchFailure(str(algo_id), exc)
    return {"channel": POSITIONS.name, "algoId": str(algo_id)}
