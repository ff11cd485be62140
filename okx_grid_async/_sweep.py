"""Concurrent position sweeps with bounded memory."""

from __future__ import annotations

import asyncio
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Awaitable,
    Callable,
    Iterable,
)
from typing import Final, TypeAlias

import msgspec

from ._errors import OKXError
from ._models import GridOrder, GridPosition
from ._validation import InvalidArgumentError

__all__ = ["AlgoIds", "SweepResult", "sweep"]

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
) -> AsyncGenerator[SweepResult, None]:
    """Run ``fetch`` over ``ids`` with at most ``concurrency`` in flight, yielding as they finish.

    Ids are pulled lazily, so memory is bounded by ``concurrency`` however many
    there are. Leaving the loop early (or cancelling) cancels the work in flight.
    """
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be a positive int, not {concurrency!r}")
    source = _aiter(ids)
    pull = asyncio.Lock()
    # Small on purpose: a slow consumer holds the workers back instead of piling up results.
    results: asyncio.Queue[SweepResult | _WorkerDone | BaseException] = asyncio.Queue(concurrency)

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

    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
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
