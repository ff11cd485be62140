"""Concurrent position sweeps with bounded memory."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Awaitable,
    Callable,
    Iterable,
)
from typing import Final, TypeAlias

import msgspec

from ._errors import InvalidArgumentError, OKXError
from ._models import GridOrder, GridPosition

__all__ = ["AlgoIds", "SweepRegistry", "SweepResult", "sweep"]

AlgoIds: TypeAlias = Iterable[str | GridOrder] | AsyncIterable[str | GridOrder]


class SweepResult(msgspec.Struct, frozen=True):
    """One grid's outcome in a sweep: ``positions`` or ``error``, never both."""

    algo_id: str
    positions: list[GridPosition] | None
    error: OKXError | None

    @property
    def is_empty(self) -> bool:
        """True when the grid was read and holds no position."""
        return self.positions is not None and all(p.is_empty for p in self.positions)


class _WorkerDone:
    __slots__ = ()


_DONE: Final = _WorkerDone()


_Item: TypeAlias = SweepResult | _WorkerDone | BaseException


class _Run:
    """One running sweep's workers and result queue, for its owner to stop from outside."""

    __slots__ = ("__weakref__", "results", "workers")

    def __init__(self, results: asyncio.Queue[_Item]) -> None:
        self.results = results
        self.workers: list[asyncio.Task[None]] = []

    def stop(self, reason: str) -> list[asyncio.Task[None]]:
        """Cancel the workers; the consumer's next result is ``RuntimeError(reason)``."""
        for task in self.workers:
            task.cancel()
        # Cancelled first, so no worker puts again. Emptied, so that the error fits
        # and wakes a consumer waiting for a result; what it would have read is moot.
        while not self.results.empty():
            self.results.get_nowait()
        self.results.put_nowait(RuntimeError(reason))
        return self.workers


class SweepRegistry:
    """The sweeps a client started that may still run, held weakly.

    Closing it stops them, so that a sweep left suspended (a ``break`` while its
    generator is still referenced) does not keep requesting after its client closed.
    """

    __slots__ = ("_closed", "_runs")

    def __init__(self) -> None:
        self._runs: weakref.WeakSet[_Run] = weakref.WeakSet()
        self._closed = False

    def add(self, run: _Run) -> None:
        """Track ``run``; refused once closed."""
        if self._closed:
            raise RuntimeError("this GridClient is closed: a closed client starts no sweep")
        self._runs.add(run)

    async def aclose(self) -> None:
        """Cancel every tracked sweep's workers and wait until they have ended."""
        self._closed = True
        reason = "the GridClient was closed: this sweep was stopped and sends nothing more"
        workers = [task for run in list(self._runs) for task in run.stop(reason)]
        self._runs.clear()
        await asyncio.gather(*workers, return_exceptions=True)


async def _aiter(ids: AlgoIds) -> AsyncGenerator[str | GridOrder, None]:
    if isinstance(ids, AsyncIterable):
        async for item in ids:
            yield item
    else:
        for item in ids:
            yield item


async def sweep(
    ids: AlgoIds,
    fetch: Callable[[str], Awaitable[list[GridPosition]]],
    concurrency: int,
    registry: SweepRegistry | None = None,
) -> AsyncGenerator[SweepResult, None]:
    """Run ``fetch`` over ``ids`` with at most ``concurrency`` in flight, yielding as they finish.

    Ids are pulled lazily, so memory is bounded by ``concurrency`` however many
    there are. Leaving the loop early (or cancelling) cancels the work in flight,
    and so does closing ``registry``, after which the next result raises RuntimeError.
    """
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be a positive int, not {concurrency!r}")
    # Small on purpose: a slow consumer holds the workers back instead of piling up results.
    results: asyncio.Queue[_Item] = asyncio.Queue(concurrency)
    run = _Run(results)
    if registry is not None:
        registry.add(run)
    source = _aiter(ids)
    pull = asyncio.Lock()

    async def one(item: str | GridOrder) -> SweepResult:
        algo_id = item.algo_id if isinstance(item, GridOrder) else item
        try:
            return SweepResult(str(algo_id), await fetch(algo_id), None)
        except OKXError as exc:
            return SweepResult(str(algo_id), None, exc)
        except TypeError as exc:
            return SweepResult(repr(algo_id), None, InvalidArgumentError(str(exc)))

    async def worker() -> None:
        try:
            while True:
                async with pull:
                    try:
                        item = await anext(source)
                    except StopAsyncIteration:
                        break
                await results.put(await one(item))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # a failing id source: hand it to the consumer
            await results.put(exc)
            return
        await results.put(_DONE)

    workers = run.workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    running = len(workers)
    try:
        while running:
            got = await results.get()
            if isinstance(got, _WorkerDone):
                running -= 1
            elif isinstance(got, BaseException):
                raise got
            else:
                yield got
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        await source.aclose()
