"""One business-WebSocket connection of a stream: connect, log in, subscribe, read, ping.

A connection is opened within the process-wide limit of 3 connection requests per
second per host, logs in on OKX's measured clock and waits for the answer, then runs
two tasks: the reader, which owns the socket's receiving side and hands every push to
the stream, and the pinger, which sends ``ping`` after the heartbeat interval without
a message either way and ends the connection when no answer comes. The stream's runner decides
what to do when `Connection.ended` resolves; `Connection.close` cancels and awaits
both tasks and closes the socket, whatever happened before.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Final, Generic, NoReturn, Protocol, TypeVar

import aiohttp
from yarl import URL

from okx_grid_async._clock import Clock
from okx_grid_async._constants import (
    MAX_RESPONSE_BYTES,
    WS_BUSINESS_PATH,
    WS_CLOSE_TIMEOUT,
    WS_CONNECT_MAX_RATE,
    WS_CONNECT_PERIOD,
)
from okx_grid_async._deadline import Deadline, ExpiredError
from okx_grid_async._errors import HTTPStatusError, MalformedResponseError, OKXError, truncate
from okx_grid_async._limiter import LocalRateLimiter
from okx_grid_async._models import UNCONVERTIBLE
from okx_grid_async._transport import Transport

from ._policy import Beat, Heartbeat, OpBudget, subscribe_batches
from ._protocol import (
    NOTICE_UPGRADE,
    UPGRADE_STATUS,
    Channel,
    Message,
    arg_key,
    login_message,
    login_refused,
)

__all__ = ["CONNECT_LIMITER", "Connection", "Sink", "TransientError"]

W = TypeVar("W")
T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)

logger: Final = logging.getLogger("okx_grid_async")

# OKX allows 3 connection requests per second per IP: paced per process and host,
# whichever stream, client, thread or event loop connects (LocalRateLimiter is thread-safe).
CONNECT_LIMITER: Final = LocalRateLimiter(WS_CONNECT_MAX_RATE, WS_CONNECT_PERIOD)
# Login codes that may mean only that our measure of OKX's clock is off.
_CLOCK_CODES: Final = frozenset({"60004", "60006"})
# Errors about the connection, not the message they answer: 60011 not logged in,
# 60014 too many operations. A new connection (logged in, with a fresh budget) cures both.
_CONNECTION_CODES: Final = frozenset({"60011", "60014"})
_TEXT: Final = aiohttp.WSMsgType.TEXT
_CLOSE: Final = aiohttp.WSMsgType.CLOSE
_SEND_FAILED: Final = (aiohttp.ClientError, ConnectionError, RuntimeError)


class TransientError(Exception):
    """A connection failed in a way another connection may not (internal to the streams).

    Attributes:
        reason: a short word for metrics and logs (``dropped``, ``timeout``, ...).
        clock_resynced: OKX refused the login's timestamp and the clock was measured again.
    """

    def __init__(self, reason: str, detail: str, *, clock_resynced: bool = False) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.clock_resynced = clock_resynced


class Sink(Protocol[T_contra]):
    """Where a connection hands what it reads (the stream)."""

    def pushed(self, items: Sequence[T_contra]) -> None:
        """Rows of one push, converted."""

    def failed(self, algo_id: str, error: OKXError) -> None:
        """A grid's update that could not be read."""

    def refused(self, arg: Mapping[str, str], algo_id: str, error: OKXError) -> None:
        """OKX refused a subscription argument: it is not watched any more."""


class Connection(Generic[W, T]):
    """One WebSocket connection and its two tasks. Not public: streams use it.

    ``ended`` resolves with the reason the connection stopped serving (``dropped``,
    ``closed``, ``pong_timeout``, ``error``); ``notice`` is set when OKX announces
    a restart (64008), so the stream can connect again ahead of it. ``wake`` is
    called on either, from the reader or the pinger. ``ops`` counts this connection's
    login and subscribe messages (OKX: 480 an hour).
    """

    def __init__(
        self,
        transport: Transport,
        ws_url: str,
        channel: Channel[W, T],
        sink: Sink[T],
        clock: Clock,
        heartbeat: float,
        pong_timeout: float,
        wake: Callable[[], None],
        ops: OpBudget,
    ) -> None:
        self._transport = transport
        self._wake = wake
        self._url = ws_url
        self._host = URL(ws_url).host or ws_url
        self._channel = channel
        self._sink = sink
        self._clock = clock
        self._heartbeat = Heartbeat(heartbeat, pong_timeout, clock.monotonic())
        self._ops = ops
        self._ids = itertools.count(1)
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._unanswered: set[str] = set()
        self._batches: dict[str, list[Mapping[str, str]]] = {}
        self._answered = asyncio.Event()
        self._answered.set()
        self.ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.notice = asyncio.Event()
        self.detail = ""
        self.opened_at = clock.monotonic()

    # ------------------------------------------------------------ opening

    async def open(self, *, may_resync_clock: bool) -> None:
        """Connect within the process's connection limit, log in, start reading and pinging.

        Raises:
            TransientError: a failure another attempt may not meet (network, timeout, HTTP 429
                or 5xx at the upgrade, a drop, a login timestamp refused once).
            LoginRefusedError: OKX refused the login.
            HTTPStatusError: the upgrade was refused with another status (a wrong URL).
        """
        transport = self._transport
        if not transport.clock_is_fresh():
            try:
                await transport.sync_clock()
            except OKXError as error:
                raise TransientError("clock", f"cannot read OKX's time: {error}") from None
        deadline = Deadline(transport.timeout, self._clock)
        try:
            async with CONNECT_LIMITER.slot(self._host, WS_BUSINESS_PATH):
                with deadline:
                    self._ws = await transport.session.ws_connect(
                        self._url,
                        autoclose=True,
                        autoping=True,
                        max_msg_size=MAX_RESPONSE_BYTES,
                        timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=WS_CLOSE_TIMEOUT),
                    )
        except ExpiredError:
            raise TransientError("timeout", f"no upgrade within {transport.timeout} s") from None
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 429 or exc.status >= 500:
                raise TransientError("refused", f"HTTP {exc.status} at the upgrade") from None
            raise HTTPStatusError(exc.status, f"WebSocket upgrade refused: {exc.message}") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise TransientError("connect", f"{type(exc).__name__}: {exc}") from None
        try:
            with deadline:
                await self._login(may_resync_clock)
        except ExpiredError:
            await self.close()
            raise TransientError(
                "timeout", f"no login answer within {transport.timeout} s"
            ) from None
        except BaseException:
            await self.close()
            raise
        self.opened_at = self._clock.monotonic()
        self._heartbeat.last_received = self._heartbeat.last_sent = self.opened_at
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._ping())]

    async def _login(self, may_resync_clock: bool) -> None:
        ws = self._ws
        assert ws is not None, "opened first"
        self._ops.spend(self._clock.monotonic())
        self._heartbeat.last_sent = self._clock.monotonic()
        try:
            await ws.send_str(login_message(self._transport.ws_login_args()))
        except _SEND_FAILED as exc:
            raise TransientError("dropped", f"sending the login: {type(exc).__name__}") from None
        decode = self._channel.decoder.decode
        while True:
            frame = await ws.receive()
            if frame.type is not _TEXT:
                raise TransientError(
                    "dropped", "the connection closed before the login was answered"
                )
            if frame.data == "pong":
                continue
            try:
                message = decode(frame.data)
            except (ValueError, RecursionError):
                raise TransientError(
                    "error", f"unreadable login answer {truncate(frame.data, 200)!r}"
                ) from None
            if message.event == "login":
                if message.code not in ("", "0"):
                    raise login_refused(message.code, message.msg)
                logger.debug("WebSocket %s: logged in", self._url)
                return
            if message.event == "error":
                if message.code in _CLOCK_CODES and may_resync_clock:
                    await self._resync_clock(message)
                raise login_refused(message.code, message.msg)

    async def _resync_clock(self, message: Message[W]) -> NoReturn:
        logger.info(
            "WebSocket login refused (%s %s): measuring OKX's clock again",
            message.code,
            message.msg,
        )
        try:
            await self._transport.sync_clock()
        except OKXError as error:
            raise TransientError("clock", f"cannot read OKX's time: {error}") from None
        raise TransientError(
            "clock", f"login timestamp refused ({message.code})", clock_resynced=True
        )

    # ------------------------------------------------------------ subscribing

    async def subscribe(self, args: Sequence[Mapping[str, str]]) -> None:
        """Send ``args`` in as few messages as fit in 64 KB each, within 480 operations an hour.

        Answers are read by the reader; `answered()` waits for them.

        Raises:
            TransientError: the connection failed while sending.
        """
        ws = self._ws
        assert ws is not None, "opened first"
        clock = self._clock
        for message_id, batch, payload in subscribe_batches("subscribe", args, self._next_id):
            wait = self._ops.wait(clock.monotonic())
            if wait > 0:
                logger.warning(
                    "WebSocket: %d operations this hour on one connection, OKX's limit: "
                    "subscribing %d more in %.0f s",
                    self._ops.spent,
                    len(batch),
                    wait,
                )
                await clock.sleep(wait)
            self._ops.spend(clock.monotonic())
            self._unanswered.update(arg_key(arg) for arg in batch)
            self._batches[message_id] = batch
            self._answered.clear()
            self._heartbeat.last_sent = clock.monotonic()
            try:
                await ws.send_str(payload.decode())
            except _SEND_FAILED as exc:
                raise TransientError(
                    "dropped", f"sending a subscription: {type(exc).__name__}"
                ) from None

    async def answered(self) -> None:
        """Wait until OKX has answered every subscription sent (acknowledged or refused).

        Raises:
            TransientError: the connection ended first, or the answers took longer than the
                client's timeout.
        """
        deadline = Deadline(self._transport.timeout, self._clock)
        try:
            with deadline:
                await self._answered.wait()
        except ExpiredError:
            raise TransientError(
                "timeout", f"subscriptions unanswered after {self._transport.timeout} s"
            ) from None
        if self.ended.done():
            raise TransientError(self.ended.result(), self.detail)

    def _next_id(self) -> str:
        return str(next(self._ids))

    def _answer(self, arg: Mapping[str, str] | None) -> None:
        if arg is not None:
            self._unanswered.discard(arg_key(arg))
        if not self._unanswered:
            self._answered.set()

    # ------------------------------------------------------------ reading and pinging

    async def _read(self) -> None:
        ws = self._ws
        assert ws is not None, "opened first"
        beat, clock, handle = self._heartbeat, self._clock, self._handle
        try:
            while True:
                frame = await ws.receive()
                beat.last_received = clock.monotonic()
                if frame.type is _TEXT:
                    handle(frame.data)
                elif frame.type is _CLOSE:
                    self._finish(
                        "closed", f"closed by the server with code {frame.data} {frame.extra}"
                    )
                    return
                elif frame.type is not aiohttp.WSMsgType.BINARY:
                    self._finish("dropped", f"connection lost ({frame.type.name})")
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a fault of ours: the stream raises it
            if not self.ended.done():
                self.ended.set_exception(exc)
                self._wake()
            self._answered.set()

    async def _ping(self) -> None:
        ws = self._ws
        assert ws is not None, "opened first"
        beat, clock = self._heartbeat, self._clock
        while True:
            action, wait = beat.step(clock.monotonic())
            if action is Beat.WAIT:
                await clock.sleep(wait)
            elif action is Beat.PING:
                beat.pinged(clock.monotonic())
                try:
                    await ws.send_str("ping")
                except _SEND_FAILED:
                    self._finish("dropped", "the connection failed while sending ping")
                    return
            else:
                self._finish("pong_timeout", f"no answer to ping within {beat.pong_timeout} s")
                return

    def _handle(self, text: str) -> None:
        if text == "pong":
            return
        try:
            message = self._channel.decoder.decode(text)
        except (ValueError, RecursionError):
            logger.warning("WebSocket: unreadable message ignored: %r", truncate(text, 200))
            return
        data = message.data
        if data is not None:
            self._push(message.arg, data, text)
        elif message.event == "subscribe":
            self._answer(message.arg)
        elif message.event == "error":
            self._refused(message)
        elif message.event == "notice" and message.code == NOTICE_UPGRADE:
            logger.info("WebSocket %s: OKX notice %s: %s", self._url, message.code, message.msg)
            self.notice.set()
            self._wake()

    def _push(self, arg: Mapping[str, str] | None, data: list[W], text: str) -> None:
        channel = self._channel
        if arg is None or arg.get("channel") != channel.name:
            return
        convert = channel.convert
        try:
            items = [convert(row) for row in data]
        except UNCONVERTIBLE as exc:
            error = MalformedResponseError(str(exc), UPGRADE_STATUS, text)
            self._sink.failed(arg.get("algoId", ""), error)
            return
        if items:  # OKX: ignore a push with empty data
            self._sink.pushed(items)

    def _refused(self, message: Message[W]) -> None:
        arg = message.arg
        if arg is not None:
            algo_id, error = self._channel.arg_error(arg, message.code, message.msg)
            self._sink.refused(arg, algo_id, error)
            self._answer(arg)
            return
        if message.code in _CONNECTION_CODES:
            self._finish("error", f"OKX code {message.code}: {message.msg}")
            return
        batch = self._batches.pop(message.id, None) if message.id else None
        if batch is not None:  # the whole message was refused (60012)
            for each in batch:
                algo_id, error = self._channel.arg_error(each, message.code, message.msg)
                self._sink.refused(each, algo_id, error)
                self._answer(each)
            return
        # Not an answer to one of our messages.
        self._finish("error", f"OKX code {message.code}: {message.msg}")

    def _finish(self, reason: str, detail: str) -> None:
        if not self.ended.done():
            self.detail = detail
            self.ended.set_result(reason)
            self._wake()
        self._answered.set()  # no answer comes any more

    # ------------------------------------------------------------ closing

    async def close(self) -> None:
        """Cancel and await the reader and the pinger, then close the socket. Idempotent."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            ws = self._ws
            if ws is not None and not ws.closed:
                # A close frame; the server's answer is awaited briefly (WS_CLOSE_TIMEOUT).
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    await ws.close()
            self._finish("closed", "closed by the client")
