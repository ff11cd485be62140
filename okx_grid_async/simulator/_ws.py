"""The business WebSocket, ``/ws/v5/business``: login, the grid channels, pushes, limits, faults.

A `WsHub` serves every WebSocket of one `GridSimulator`, as OKX documents its
business WebSocket (see docs/simulator.md, "WebSocket"):

- frames are text: JSON op messages, or ``ping`` (answered ``pong``);
- ``login`` is checked as a REST request is (``_auth``), with the 600xx codes;
- ``subscribe`` / ``unsubscribe`` take many args, each acked (or refused with
  60018) in order; a ``grid-positions`` ack is followed by the grid's row, a
  ``grid-orders-contract`` ack by the user's matching pending grids;
- after that, every change of a subscribed grid is pushed (`WsHub.grid_changed`
  is the exchange's change listener);
- limits: a message over 64 KB (60012), 480 ops per connection per hour
  (60014), 3 upgrades per second per IP (HTTP 429), and a connection silent for
  ``idle_timeout`` seconds is closed with 4004.

What the messages say is ``_ws_messages``'s; this module owns the sockets.
Each connection has one writer task fed by an outbox: acks, pushes, pongs and
the close frame leave in the order they were decided, whichever task decided
them (the reader, the price walk, a REST close, a fault). The aiohttp handler
task reads; it ends when the socket does, and then waits for its writer.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from aiohttp import WSMsgType, web

from okx_grid_async.simulator._auth import (
    LOGIN_MESSAGES,
    WS_LOGIN_PREHASH,
    WS_REFUSALS,
    check_signed,
)
from okx_grid_async.simulator._limits import SlidingWindowLimiter
from okx_grid_async.simulator._model import SimError, SimGrid
from okx_grid_async.simulator._state import SimExchange
from okx_grid_async.simulator._ws_messages import (
    POSITIONS_CHANNEL,
    BadRequestError,
    Subscription,
    encode,
    login_fields,
    no_such_channel,
    parse_op,
    subscription_of,
)

__all__ = [
    "DEFAULT_CONNECT_RATE",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_OPS_PER_HOUR",
    "WS_PATH",
    "WsHub",
]

WS_PATH: Final = "/ws/v5/business"
DEFAULT_IDLE_TIMEOUT: Final = 30.0
DEFAULT_CONNECT_RATE: Final = 3
DEFAULT_OPS_PER_HOUR: Final = 480

_OPS_PERIOD: Final = 3600.0
_CONNECT_PERIOD: Final = 1.0
# aiohttp refuses bigger frames itself (close 1009); up to it, the cap is answered 60012.
_READ_LIMIT: Final = 1024 * 1024
# How long a closing side waits for the peer's close frame, in seconds.
_CLOSE_TIMEOUT: Final = 1.0
_NOTICE_MSG: Final = "The connection will soon be closed for a service upgrade. Please reconnect."


@dataclass(frozen=True, slots=True)
class _Close:
    """In an outbox: send a close frame with ``code`` and ``reason``, then stop writing."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class _Pong:
    """In an outbox: answer a protocol-level ping."""

    data: bytes


_Outgoing = str | _Pong | _Close | None  # None: stop writing


class _Connection:
    """One open WebSocket: who logged in, what it subscribed, and its outbox."""

    __slots__ = (
        "closing",
        "conn_id",
        "handler",
        "ops",
        "outbox",
        "subscriptions",
        "transport",
        "user_id",
        "ws",
    )

    def __init__(
        self,
        conn_id: str,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport | None,
        ops_per_hour: int,
    ) -> None:
        self.conn_id = conn_id
        self.ws = ws
        self.transport = transport
        self.handler = asyncio.current_task()
        self.user_id: str | None = None
        self.subscriptions: dict[Subscription, None] = {}  # ordered set
        self.ops = SlidingWindowLimiter(ops_per_hour, _OPS_PERIOD)
        self.outbox: asyncio.Queue[_Outgoing] = asyncio.Queue()
        self.closing = False

    def close_with(self, code: int, reason: str) -> None:
        """Close after what is already in the outbox (once: a later call does nothing)."""
        if not self.closing:
            self.closing = True
            self.outbox.put_nowait(_Close(code, reason))

    def abort(self) -> None:
        """Close the TCP connection at once, no close frame."""
        if self.transport is not None:
            self.transport.abort()

    async def write(self) -> None:
        """Send the outbox in order until a close frame, a stop, or a peer gone."""
        while True:
            item = await self.outbox.get()
            try:
                if item is None:
                    return
                if isinstance(item, _Close):
                    await self.ws.close(code=item.code, message=item.reason.encode())
                    return
                if isinstance(item, _Pong):
                    await self.ws.pong(item.data)
                else:
                    await self.ws.send_str(item)
            except ConnectionError:
                return  # the peer is gone; the reader sees it too


class _LoginRefusal:
    """The ``ws_refuse_login`` fault: the next ``remaining`` logins (None: all) get ``code``."""

    __slots__ = ("code", "remaining")

    def __init__(self, code: str, remaining: int | None) -> None:
        self.code = code
        self.remaining = remaining

    def take(self) -> bool:
        """Whether this login is refused; uses one of a counted fault."""
        if self.remaining is None:
            return True
        if self.remaining == 0:
            return False
        self.remaining -= 1
        return True


class WsHub:
    """Every WebSocket connection of a simulator, its limits and its faults.

    Args:
        exchange: The exchange whose grids are pushed; register `grid_changed`
            as its listener.
        clock: Monotonic seconds, for the connection and op limits.
        now_ms: The simulator's wall clock in Unix ms (login timestamps, ``pTime``).
        idle_timeout: Seconds of silence from a client before its connection is closed 4004.
        connect_rate: WebSocket upgrades accepted per IP in any second.
        ops_per_hour: Op messages (login, subscribe, unsubscribe) accepted per
            connection in any hour.

    Raises:
        ValueError: If a limit is not positive.
    """

    __slots__ = (
        "_closed",
        "_connect_limit",
        "_connections",
        "_connects",
        "_exchange",
        "_idle_timeout",
        "_login_refusal",
        "_muted",
        "_now_ms",
        "_ops",
        "_ops_per_hour",
        "_pushes",
        "_refusals",
        "_upgrades",
        "clock",
    )

    def __init__(
        self,
        exchange: SimExchange,
        *,
        clock: Callable[[], float],
        now_ms: Callable[[], int],
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        connect_rate: int = DEFAULT_CONNECT_RATE,
        ops_per_hour: int = DEFAULT_OPS_PER_HOUR,
    ) -> None:
        if not 0 < idle_timeout < float("inf"):
            raise ValueError(f"ws_idle_timeout must be a positive number, got {idle_timeout}")
        if ops_per_hour < 1:
            raise ValueError(f"ws_ops_per_hour must be at least 1, got {ops_per_hour}")
        if connect_rate < 1:
            raise ValueError(f"ws_connect_rate must be at least 1, got {connect_rate}")
        self._exchange = exchange
        self.clock = clock
        self._now_ms = now_ms
        self._idle_timeout = idle_timeout
        self._ops_per_hour = ops_per_hour
        self._connect_limit = SlidingWindowLimiter(connect_rate, _CONNECT_PERIOD)
        self._connections: dict[str, _Connection] = {}
        self._connects = 0
        self._refusals = 0
        self._pushes = 0
        self._ops: Counter[str] = Counter()
        self._login_refusal: _LoginRefusal | None = None
        self._muted = False
        self._upgrades: set[asyncio.Task[None]] = set()
        self._closed = False

    # -- the handler ------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Serve one WebSocket upgrade of ``/ws/v5/business`` until the connection ends."""
        ws = web.WebSocketResponse(autoping=False, max_msg_size=_READ_LIMIT, timeout=_CLOSE_TIMEOUT)
        if not ws.can_prepare(request).ok:
            return web.Response(status=400, text="WebSocket upgrade expected")
        if self._closed:
            return web.Response(status=503, text="Service Unavailable")
        if not self._connect_limit.try_acquire(request.remote or "", self.clock()):
            self._refusals += 1
            return web.Response(status=429, text="Too Many Requests")
        await ws.prepare(request)
        conn = _Connection(self._new_conn_id(), ws, request.transport, self._ops_per_hour)
        self._connections[conn.conn_id] = conn
        self._connects += 1
        writer = asyncio.create_task(conn.write())
        try:
            await self._read(conn)
        finally:
            del self._connections[conn.conn_id]
            conn.outbox.put_nowait(None)
            try:
                await writer  # it may still be closing: waiting for the client's close frame
            except asyncio.CancelledError:
                writer.cancel()
                await asyncio.wait({writer})
                raise
        return ws

    def _new_conn_id(self) -> str:
        while True:
            conn_id = secrets.token_hex(4)
            if conn_id not in self._ops and conn_id not in self._connections:
                return conn_id

    async def _read(self, conn: _Connection) -> None:
        while True:
            try:
                # Once closing, wait for the close to finish, however long the client is silent.
                msg = await conn.ws.receive(None if conn.closing else self._idle_timeout)
            except TimeoutError:
                conn.close_with(4004, f"No data received in {self._idle_timeout:g}s")
                continue
            if msg.type is WSMsgType.TEXT:
                self._onencode(conn, msg.data)
            elif msg.type is WSMsgType.PING:
                self._send(conn, _Pong(msg.data))
            elif msg.type is WSMsgType.BINARY:
                self._error(conn, None, "60012", "Invalid request: frames must be text")
            elif msg.type is not WSMsgType.PONG:
                return  # closed, closing, or broken

    def _onencode(self, conn: _Connection, text: str) -> None:
        if text == "ping":
            self._send(conn, "pong")
            return
        try:
            req_id, op, args = parse_op(text)
            login = login_fields(args, req_id) if op == "login" else None
        except BadRequestError as err:
            self._error(conn, err.req_id, "60012", f"Invalid request: {err}")
            return
        if not conn.ops.try_acquire(conn.conn_id, self.clock()):
            self._error(conn, req_id, "60014", "Requests too frequent.")
            return
        self._ops[conn.conn_id] += 1
        if login is not None:
            self._login(conn, req_id, *login)
        elif conn.user_id is None:
            self._error(conn, req_id, "60011", "Please log in")
        else:
            for arg in args:
                self._subscribe(conn, req_id, op, arg)

    # -- ops ----------------------------------------------------------------------

    def _login(
        self,
        conn: _Connection,
        req_id: str | None,
        api_key: str,
        passphrase: str,
        timestamp: str,
        signature: str,
    ) -> None:
        if conn.user_id is not None:
            self._error(conn, req_id, "60031", LOGIN_MESSAGES["60031"])
            return
        refusal = self._login_refusal
        if refusal is not None and refusal.take():
            self._error(
                conn, req_id, refusal.code, LOGIN_MESSAGES.get(refusal.code, "Login failed.")
            )
            return
        try:
            account = check_signed(
                self._exchange,
                WS_REFUSALS,
                api_key=api_key,
                passphrase=passphrase,
                timestamp=timestamp,
                signature=signature,
                signed_after_timestamp=WS_LOGIN_PREHASH,
                now_ms=self._now_ms(),
            )
        except SimError as err:
            self._error(conn, req_id, err.code, err.msg)
            return
        conn.user_id = account.user_id
        self._answer(conn, req_id, {"event": "login", "code": "0", "msg": ""})

    def _subscribe(
        self, conn: _Connection, req_id: str | None, op: str, arg: Mapping[str, object]
    ) -> None:
        user_id = conn.user_id
        assert user_id is not None  # checked by the caller
        sub = subscription_of(arg)
        grid = None
        if sub is not None and op == "subscribe" and sub.channel == POSITIONS_CHANNEL:
            assert sub.algo_id is not None  # _subscription requires it
            try:
                grid = self._exchange.owned_grid(user_id, sub.algo_id)
            except SimError:
                sub = None  # unknown, another user's, or not a grid: OKX's "doesn't exist"
        if sub is None:
            self._answer(
                conn,
                req_id,
                {"event": "error", "code": "60018", "msg": no_such_channel(arg), "arg": arg},
            )
            return
        self._answer(conn, req_id, {"event": op, "arg": arg})
        if op == "unsubscribe":
            conn.subscriptions.pop(sub, None)
            return
        conn.subscriptions[sub] = None
        if grid is not None:
            self._push(conn, sub, [grid])
        else:  # grid-orders-contract: the matching grids orders-algo-pending would list
            pending = self._exchange.user_grids(user_id)
            self._push(conn, sub, [g for g in pending if g.state != "stopped" and sub.matches(g)])

    # -- sending --------------------------------------------------------------------

    def _send(self, conn: _Connection, item: str | _Pong) -> bool:
        """Queue ``item`` for ``conn``, unless pongs are muted (then nothing is sent)."""
        if self._muted:
            return False
        conn.outbox.put_nowait(item)
        return True

    def _answer(self, conn: _Connection, req_id: str | None, event: dict[str, object]) -> None:
        message: dict[str, object] = {} if req_id is None else {"id": req_id}
        message.update(event)
        message["connId"] = conn.conn_id
        self._send(conn, encode(message))

    def _error(self, conn: _Connection, req_id: str | None, code: str, msg: str) -> None:
        self._answer(conn, req_id, {"event": "error", "code": code, "msg": msg})

    def _push(self, conn: _Connection, sub: Subscription, grids: Sequence[SimGrid]) -> None:
        assert conn.user_id is not None
        p_time = str(self._now_ms())
        rows = [{**sub.row(g), "pTime": p_time} for g in grids]
        if self._send(conn, encode({"arg": sub.push_arg(conn.user_id), "data": rows})):
            self._pushes += 1

    def grid_changed(self, grid: SimGrid) -> None:
        """Push ``grid``'s row to every connection subscribed to it: the exchange's listener."""
        for conn in self._connections.values():
            if conn.user_id != grid.user_id or conn.closing:
                continue
            for sub in conn.subscriptions:
                if sub.matches(grid):
                    self._push(conn, sub, [grid])

    # -- faults -----------------------------------------------------------------------

    def drop_all(self) -> None:
        """Abort every open connection: TCP closed, no close frame."""
        for conn in self._connections.values():
            conn.abort()

    def notice_upgrade(self, close_after: float) -> None:
        """Send notice 64008 to every open connection, and close each 1012 ``close_after`` s later.

        Raises:
            ValueError: If ``close_after`` is negative or not finite.
        """
        if not 0 <= close_after < float("inf"):
            raise ValueError(f"close_after must be a finite number >= 0, got {close_after}")
        notified = list(self._connections.values())
        for conn in notified:
            self._answer(conn, None, {"event": "notice", "code": "64008", "msg": _NOTICE_MSG})
        task = asyncio.create_task(self._close_later(notified, close_after))
        self._upgrades.add(task)
        task.add_done_callback(self._upgrades.discard)

    @staticmethod
    async def _close_later(connections: Sequence[_Connection], delay: float) -> None:
        await asyncio.sleep(delay)
        for conn in connections:
            conn.close_with(1012, "Service upgrade")

    def refuse_login(self, code: str, count: int | None) -> None:
        """Refuse the next ``count`` logins (``None``: every one until cleared) with ``code``.

        Raises:
            ValueError: If ``code`` is not five digits or ``count`` is below 1.
        """
        if len(code) != 5 or not code.isascii() or not code.isdigit():
            raise ValueError(f"code must be five digits, like '60009', got {code!r}")
        if count is not None and count < 1:
            raise ValueError(f"count must be at least 1 (or None), got {count}")
        self._login_refusal = _LoginRefusal(code, count)

    def mute(self, muted: bool) -> None:
        """Stop (or resume) sending anything but close frames: no pong, no ack, no push."""
        self._muted = muted

    def clear_faults(self) -> None:
        """Forget login refusals, unmute, and cancel the closes a notice announced."""
        self._login_refusal = None
        self._muted = False
        for task in self._upgrades:
            task.cancel()

    # -- observation ------------------------------------------------------------------

    def connections(self) -> int:
        """Connections open now."""
        return len(self._connections)

    def connects(self) -> int:
        """Upgrades accepted so far."""
        return self._connects

    def refusals(self) -> int:
        """Upgrades refused with HTTP 429 so far."""
        return self._refusals

    def ops(self, conn: str | None = None) -> int:
        """Op messages accepted, on connection ``conn`` (its ``connId``) or on all."""
        return self._ops[conn] if conn is not None else self._ops.total()

    def pushes(self) -> int:
        """Data pushes sent (snapshots and changes)."""
        return self._pushes

    # -- shutdown ---------------------------------------------------------------------

    async def close(self) -> None:
        """Close every connection (1001), abort those that do not finish closing, end every task."""
        self._closed = True
        for task in self._upgrades:
            task.cancel()
        await asyncio.gather(*self._upgrades, return_exceptions=True)
        handlers = set()
        for conn in self._connections.values():
            conn.close_with(1001, "Server shutting down")
            if conn.handler is not None:
                handlers.add(conn.handler)
        if not handlers:
            return
        _, late = await asyncio.wait(handlers, timeout=2 * _CLOSE_TIMEOUT)
        for conn in self._connections.values():
            conn.abort()
        if late:
            await asyncio.wait(late)
