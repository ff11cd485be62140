"""A watch stream: what `GridClient.watch_positions` and `watch_grids` return.

`WatchStream` is the public face: an async iterator and an async context manager.
Behind it, `StreamCore` runs the tasks:

- the runner connects (a `Connection`), subscribes everything watched, and when the
  connection ends (a drop, a missed ``pong``, a close such as 4004) or OKX announces
  a restart (64008) connects again with jittered exponential backoff; after a gap,
  it resyncs over REST once the new subscriptions are answered;
- the puller reads the ids given (an iterable or async iterable) and has new ones
  subscribed on the open connection;
- a resync, started by the runner, reads every watched grid once through the
  client's rate-limited REST path.

Updates wait for the consumer in an `Inbox` (``_inbox``). Leaving the
``async with`` block, `aclose()`, closing the client, or dropping the iterator
(a ``break`` out of ``async for``) cancels and awaits every task and closes the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import weakref
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from types import TracebackType
from typing import Any, Final, Generic, Self, TypeAlias, TypeVar

import msgspec

from okx_grid_async._clock import Clock
from okx_grid_async._constants import WS_OPS_PER_HOUR, WS_OPS_PERIOD
from okx_grid_async._errors import OKXError
from okx_grid_async._transport import Transport

from ._connection import Connection, TransientError
from ._inbox import ENDED, End, Inbox, WatchFailure, WatchStats
from ._policy import Backoff, OpBudget, Versioned
from ._protocol import Channel, arg_key

__all__ = ["Resync", "StreamCore", "StreamRegistry", "WatchStream"]

W = TypeVar("W")
T = TypeVar("T", bound=Versioned)  # GridPosition, GridOrder
Item = TypeVar("Item")  # the same, as the public stream names it

logger: Final = logging.getLogger("okx_grid_async")


# Reads every watched argument's rows over REST; counts its requests in the stats.
Resync: TypeAlias = Callable[
    [list[Mapping[str, str]], WatchStats], AsyncGenerator["T | WatchFailure", None]
]
Ids: TypeAlias = Iterable[object] | AsyncIterable[object]
Arg: TypeAlias = Mapping[str, str]


class StreamRegistry:
    """A client's streams that may still run, held weakly; closing it stops them all."""

    __slots__ = ("_closed", "_closing", "_cores")

    def __init__(self) -> None:
        self._cores: weakref.WeakSet[StreamCore[Any, Any]] = weakref.WeakSet()
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False

    def add(self, core: StreamCore[W, T]) -> None:
        """Track ``core``; refused once closed."""
        if self._closed:
            raise RuntimeError("this GridClient is closed: a closed client starts no stream")
        self._cores.add(core)

    def close_soon(self, core: StreamCore[W, T]) -> None:
        """Close ``core`` in a task (its iterator was dropped); `aclose()` awaits it."""
        if core.closed:
            return
        try:
            task = asyncio.get_running_loop().create_task(core.aclose())
        except RuntimeError:  # no loop runs here any more: its tasks are gone with it
            return
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        """Stop every stream (its next read raises RuntimeError) and wait until all ended."""
        self._closed = True
        reason = RuntimeError("the GridClient was closed: this stream was stopped")
        cores = list(self._cores)
        for core in cores:
            core.inbox.end(reason)
        await asyncio.gather(*(core.aclose() for core in cores), *self._closing)


class StreamCore(Generic[W, T]):
    """The tasks of one stream and what they share. Not public: `WatchStream` is."""

    def __init__(
        self,
        transport: Transport,
        ws_url: str,
        clock: Clock,
        channel: Channel[W, T],
        *,
        args: list[Arg],
        ids: Ids | None,
        arg_of: Callable[[object], Arg | WatchFailure] | None,
        resync: Resync[T],
        heartbeat: float,
        pong_timeout: float,
        jitter: Callable[[], float] | None = None,
        ops_per_hour: tuple[int, float] = (WS_OPS_PER_HOUR, WS_OPS_PERIOD),
    ) -> None:
        self.transport = transport
        self.ws_url = ws_url
        self.clock = clock
        self.channel = channel
        self.stats = WatchStats()
        self.inbox: Inbox[T] = Inbox(channel, self.stats)
        self._args: dict[str, Arg] = {arg_key(a): a for a in args}
        self._new: list[Arg] = []
        self._ids = ids
        self._arg_of = arg_of
        self._ids_done = ids is None
        self._resync = resync
        self._heartbeat = heartbeat
        self._pong_timeout = pong_timeout
        self._backoff = Backoff(jitter or random.Random().random)  # noqa: S311 (jitter)
        self._ops_per_hour = ops_per_hour
        self._tasks: list[asyncio.Task[None]] = []
        self._resyncing: asyncio.Task[None] | None = None
        self._wakeup: asyncio.Future[None] | None = None
        self._state = "new"

    # ------------------------------------------------------------ life cycle

    def start(self) -> None:
        """Start the runner (and the puller), once.

        Raises:
            RuntimeError: the client is not open.
        """
        if self._state != "new" or self.inbox.ended:
            return
        self.transport.session  # noqa: B018 (raises RuntimeError unless the client is open)
        self._state = "running"
        self._tasks.append(asyncio.create_task(self._run(), name=f"okx-ws {self.channel.name}"))
        if self._ids is not None:
            self._tasks.append(asyncio.create_task(self._pull(self._ids)))

    async def next(self) -> T | WatchFailure:
        """The stream's next update, starting it if need be."""
        self.start()
        try:
            return await self.inbox.get()
        except Exception:
            # The stream ended (an error, or nothing left to watch): its tasks were told
            # to stop; let them finish, so that nothing of it outlives this raise.
            await self._settle()
            raise

    @property
    def closed(self) -> bool:
        """Whether `aclose()` was called."""
        return self._state == "closed"

    @property
    def watching(self) -> int:
        """Subscription arguments watched now."""
        return len(self._args)

    async def aclose(self) -> None:
        """Cancel and await every task; the socket is closed; nothing more is read. Idempotent."""
        self._state = "closed"
        self.inbox.close()
        self._cancel_tasks()
        await self._settle()

    def _terminate(self, reason: BaseException | End) -> None:
        """End the stream from inside: its consumer sees ``reason``; every task stops."""
        self.inbox.end(reason)
        self._cancel_tasks()

    def _others(self) -> list[asyncio.Task[None]]:
        current = asyncio.current_task()
        tasks = [*self._tasks, *([self._resyncing] if self._resyncing else [])]
        return [task for task in tasks if task is not current]

    def _cancel_tasks(self) -> None:
        for task in self._others():
            task.cancel()

    async def _settle(self) -> None:
        """Wait until every task but the caller's has ended (each closes what it opened)."""
        await asyncio.gather(*self._others(), return_exceptions=True)

    # ------------------------------------------------------------ what is watched

    def _wake(self) -> None:
        waiter = self._wakeup
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _pull(self, ids: Ids) -> None:
        """Read the ids given; have each new one subscribed."""
        try:
            if isinstance(ids, AsyncIterable):
                async for item in ids:
                    self._watch(item)
            else:
                for item in ids:
                    self._watch(item)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # a failing id source ends the stream, as it ends a sweep
            self._terminate(exc)
            return
        self._ids_done = True
        self._end_if_idle()

    def _watch(self, item: object) -> None:
        assert self._arg_of is not None
        arg = self._arg_of(item)
        if isinstance(arg, WatchFailure):
            self.inbox.fail(arg)
            return
        key = arg_key(arg)
        if key not in self._args:
            self._args[key] = arg
            self._new.append(arg)
            self._wake()

    def _end_if_idle(self) -> None:
        if self._ids_done and not self._args:
            self._terminate(ENDED)  # nothing (left) to watch

    # ------------------------------------------------------------ the connection's sink

    def pushed(self, items: Sequence[T]) -> None:
        self.stats.pushes += 1
        offer = self.inbox.offer
        for item in items:
            offer(item)

    def failed(self, algo_id: str, error: OKXError) -> None:
        self.inbox.fail(WatchFailure(algo_id, error))

    def refused(self, arg: Mapping[str, str], algo_id: str, error: OKXError) -> None:
        logger.warning("WebSocket: %s refused: %s", arg_key(arg), error)
        self._args.pop(arg_key(arg), None)
        self.inbox.fail(WatchFailure(algo_id, error))
        self._end_if_idle()

    # ------------------------------------------------------------ the runner

    async def _run(self) -> None:
        conn: Connection[W, T] | None = None
        gap = False  # a change may have been missed: resync once subscribed again
        clock_resynced = False
        attempts = 0
        try:
            while True:
                if attempts:
                    delay = self._backoff.next_delay()
                    logger.info("WebSocket %s: connecting again in %.2f s", self.ws_url, delay)
                    await self.clock.sleep(delay)
                attempts += 1
                new = self._connection()
                try:
                    await new.open(may_resync_clock=not clock_resynced)
                    self.stats.connects += 1
                    self._new.clear()  # everything watched is in this subscription
                    await new.subscribe(list(self._args.values()))
                    await new.answered()
                except TransientError as failure:
                    await new.close()
                    clock_resynced = failure.clock_resynced
                    logger.warning("WebSocket %s: connection failed (%s)", self.ws_url, failure)
                    continue
                except BaseException:
                    await new.close()
                    raise
                clock_resynced = False
                logger.info("WebSocket %s: connected, %d subscribed", self.ws_url, len(self._args))
                old, conn = conn, new
                if old is not None:
                    gap = gap or old.ended.done()
                    await old.close()
                if gap:
                    await self._start_resync()
                    gap = False
                reason = await self._serve(conn)
                logger.warning(
                    "WebSocket %s: %s (%s)",
                    self.ws_url,
                    "OKX will restart: connecting ahead of it" if reason == "notice" else reason,
                    conn.detail or reason,
                )
                self._backoff.connection_ended(self.clock.monotonic() - conn.opened_at)
                self.stats.reconnects += 1
                telemetry = self.transport.telemetry
                if telemetry is not None:
                    telemetry.ws_reconnected(self.channel.name, reason)
                if reason != "notice":
                    await conn.close()
                    conn = None
                    gap = True
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # a refused login, a refused upgrade, a fault of ours
            self._terminate(exc)
        finally:
            if conn is not None:
                await conn.close()

    def _connection(self) -> Connection[W, T]:
        return Connection(
            self.transport,
            self.ws_url,
            self.channel,
            self,
            self.clock,
            self._heartbeat,
            self._pong_timeout,
            self._wake,
            OpBudget(*self._ops_per_hour),
        )

    async def _serve(self, conn: Connection[W, T]) -> str:
        """Subscribe new ids as they come until the connection ends ("notice": ahead of 64008)."""
        loop = asyncio.get_running_loop()
        while True:
            if conn.ended.done():
                return conn.ended.result()
            if conn.notice.is_set():
                return "notice"
            if self._new:
                args, self._new = self._new, []
                try:
                    await conn.subscribe(args)
                except TransientError:
                    continue  # the reader has seen it too: ended is (about to be) set
                continue
            self._wakeup = loop.create_future()
            try:
                await self._wakeup
            finally:
                self._wakeup = None

    async def _start_resync(self) -> None:
        previous, self._resyncing = self._resyncing, None
        if previous is not None:
            previous.cancel()
            await asyncio.wait({previous})
        args = list(self._args.values())
        self._resyncing = asyncio.create_task(self._resync_all(args))

    async def _resync_all(self, args: list[Arg]) -> None:
        """Read every watched argument once over REST and offer what it says."""
        logger.info("WebSocket %s: resyncing %d over REST", self.ws_url, len(args))
        try:
            async with contextlib.aclosing(self._resync(args, self.stats)) as rows:
                async for item in rows:
                    if isinstance(item, WatchFailure):
                        self.inbox.fail(item)
                    else:
                        self.inbox.offer(item)
        except asyncio.CancelledError:
            raise
        except OKXError as error:  # the listing as a whole failed (watch_grids)
            self.inbox.fail(WatchFailure("", error))
        except BaseException as exc:
            self._terminate(exc)


class WatchStream(Generic[Item]):
    """Updates pushed by OKX's business WebSocket: an async iterator and context manager.

    Made by `GridClient.watch_positions()` (items: `GridPosition`) and
    `GridClient.watch_grids()` (items: `GridOrder`); a grid that cannot be watched
    is a `WatchFailure` item, and the stream goes on. Use it as::

        async with client.watch_positions(ids) as stream:
            async for item in stream:
                ...

    The connection opens on entering (or on the first read), logs in and
    subscribes. It is kept alive with ``ping`` and replaced, with jittered
    exponential backoff, when it drops, goes silent, is closed by OKX or OKX
    announces a restart (64008); after a gap every watched grid is read once over
    REST, so no change made meanwhile is lost. Per grid, updates come in ``uTime``
    order without duplicates; a newer version of a grid not yet read replaces the
    waiting one.

    The stream does not end by itself while something is watched. Leaving the
    ``async with`` block, `aclose()`, closing the client, cancelling the reading
    task or dropping the iterator (``break``) closes the socket and every task.

    Raises (from the iteration):
        LoginRefusedError: OKX refused the login (never retried).
        HTTPStatusError: the WebSocket upgrade was refused (other than 429 or 5xx).
        RuntimeError: the client is not open, or was closed (the stream with it); or
            a second task reads while one waits (a stream has one reader).
        Exception: whatever the id source raised.
    """

    __slots__ = ("__weakref__", "_core")

    def __init__(self, core: StreamCore[Any, Any], registry: StreamRegistry) -> None:
        self._core = core
        registry.add(core)
        # Dropped unclosed (a ``break`` out of ``async for``): close it on the loop.
        weakref.finalize(self, registry.close_soon, core)

    async def __aenter__(self) -> Self:
        self._core.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._core.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Item | WatchFailure:
        item: Item | WatchFailure = await self._core.next()
        return item

    async def aclose(self) -> None:
        """Close the socket and stop every task of the stream; its next read ends. Idempotent."""
        await self._core.aclose()

    @property
    def ws_url(self) -> str:
        """The WebSocket URL the stream connects to."""
        return self._core.ws_url

    @property
    def stats(self) -> WatchStats:
        """A copy of the stream's figures so far."""
        core = self._core
        return msgspec.structs.replace(core.stats, watching=core.watching)

    def __repr__(self) -> str:
        core = self._core
        return f"WatchStream({core.channel.name!r}, {core.ws_url!r}, watching={core.watching})"
