"""What a stream hands its reader: updates, per-grid failures, and the end.

`Inbox` holds the updates waiting for the reader, one per grid, newest version
only (older and duplicate versions dropped by ``uTime``); `WatchFailure` is a grid
that cannot be watched; `WatchStats` the stream's figures.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Hashable
from typing import Final, Generic, TypeVar

import msgspec

from okx_grid_async._errors import OKXError
from okx_grid_async._ws._policy import Versioned, is_stale
from okx_grid_async._ws._protocol import Channel

__all__ = ["ENDED", "End", "Inbox", "WatchFailure", "WatchStats"]

W = TypeVar("W")
T = TypeVar("T", bound=Versioned)  # GridPosition, GridOrder


class WatchFailure(msgspec.Struct, frozen=True):
    """A grid the stream cannot watch or read, yielded in place of an update.

    The same shape as a failed `SweepResult`: ``algo_id`` and ``error``. An unknown
    grid (OKX answers the subscription with 60018) is a `GridNotFoundError` and is
    watched no more; an id that is not a string of digits is an
    `InvalidArgumentError` (``algo_id`` is then its ``repr``); a resync read that
    failed carries that read's error. ``algo_id`` is ``""`` when the error concerns
    no one grid (a ``watch_grids`` subscription or listing). The stream goes on.
    """

    algo_id: str
    error: OKXError


class WatchStats(msgspec.Struct, kw_only=True):
    """A stream's figures so far.

    Attributes:
        connects: connections opened and logged in.
        reconnects: connections replaced: dropped, silent, closed by OKX, or ahead of
            a restart (64008).
        pushes: push messages received.
        updates: updates and errors handed to the iterator.
        dropped: rows not handed on because an equal or newer version was (by ``uTime``).
        conflated: versions replaced by a newer one of the same grid before being read.
        resync_requests: REST requests spent on resyncs (each through the rate limiter).
        watching: subscription arguments watched now (grids, for ``watch_positions``).
    """

    connects: int = 0
    reconnects: int = 0
    pushes: int = 0
    updates: int = 0
    dropped: int = 0
    conflated: int = 0
    resync_requests: int = 0
    watching: int = 0


class End:
    """The stream ended normally (closed by its owner, or nothing left to watch)."""

    __slots__ = ()


ENDED: Final = End()


class Inbox(Generic[T]):
    """Updates waiting for the consumer: the newest version of each key, oldest key first.

    A newer version of a key that is still waiting takes its place (so a slow
    consumer reads the latest state, and memory is bounded by the number of keys);
    a version that is not news (`is_stale`) is dropped.
    """

    __slots__ = ("_channel", "_end", "_held", "_waiter", "_waiting", "stats")

    def __init__(self, channel: Channel[W, T], stats: WatchStats) -> None:
        self._channel: Channel[object, T] = channel  # type: ignore[assignment]
        self.stats = stats
        self._held: dict[Hashable, T] = {}
        self._waiting: OrderedDict[Hashable, T | WatchFailure] = OrderedDict()
        self._waiter: asyncio.Future[None] | None = None
        self._end: BaseException | End | None = None

    def offer(self, item: T) -> None:
        """Hand on ``item`` unless a version as new of its key was already handed on."""
        channel = self._channel
        key = channel.key(item)
        held = self._held.get(key)
        if held is not None and is_stale(held, item, channel.same):
            self.stats.dropped += 1
            return
        self._held[key] = item
        if key in self._waiting:
            self.stats.conflated += 1
        self._waiting[key] = item
        self._wake()

    def fail(self, error: WatchFailure) -> None:
        """Hand on a grid's error."""
        self._waiting[("error", error.algo_id, id(error))] = error
        self._wake()

    def close(self) -> None:
        """Drop what waits; the next read ends the iteration (or raises an end set before)."""
        self._waiting.clear()
        self.end(ENDED)

    def end(self, reason: BaseException | End) -> None:
        """No more updates after those waiting: then raise ``reason`` (or stop). First wins."""
        if self._end is None:
            self._end = reason
            self._wake()

    @property
    def ended(self) -> bool:
        return self._end is not None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> T | WatchFailure:
        """The next update; raises the end's exception (once), then StopAsyncIteration."""
        while not self._waiting:
            end = self._end
            if isinstance(end, BaseException):
                self._end = ENDED
                raise end
            if end is not None:
                raise StopAsyncIteration
            if self._waiter is not None:
                raise RuntimeError("a stream has one reader at a time: another task awaits it")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        self.stats.updates += 1
        return self._waiting.popitem(last=False)[1]
