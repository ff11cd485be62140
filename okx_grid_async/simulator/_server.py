"""`GridSimulator`: the OKX look-alike's public face.

It owns the parts and starts them on one aiohttp server:

- ``_routing``: every REST request, through authentication (``_auth``), the
  rate limit (``_limits``) and injected faults (``_faults``) to its handler;
- ``_rest``: the REST endpoints' handlers, over the exchange;
- ``_state``: the exchange itself (accounts, grids, prices, closes), which
  tells the WebSocket about every change;
- ``_ws``: the business WebSocket.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from decimal import Decimal
from types import TracebackType
from typing import Final, Self

from aiohttp import web

from okx_grid_async._constants import (
    ACCOUNT_CONFIG_MAX_RATE,
    ACCOUNT_CONFIG_PATH,
    ACCOUNT_CONFIG_TIME_PERIOD,
    GRID_MAX_RATE,
    GRID_TIME_PERIOD,
)
from okx_grid_async.simulator._closes import CloseLog, CloseRecord
from okx_grid_async.simulator._faults import (
    FaultKind,
    FaultPlan,
)
from okx_grid_async.simulator._limits import Arrival, ArrivalLog, PathLimits
from okx_grid_async.simulator._model import (
    DecimalLike,
    Direction,
    GridState,
    SimAccount,
    SimGrid,
)
from okx_grid_async.simulator._rest import RestEndpoints
from okx_grid_async.simulator._routing import RATE_LIMIT_MSG, RecordedRequest, Router
from okx_grid_async.simulator._state import SimExchange
from okx_grid_async.simulator._ws import (
    DEFAULT_CONNECT_RATE,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_OPS_PER_HOUR,
    WS_PATH,
    WsHub,
)

__all__ = ["GridSimulator"]

_SHUTDOWN_TIMEOUT: Final = 1.0
# OKX's own limits for the endpoints that do not follow the grid endpoints' rule.
_PATH_LIMITS: Final[Mapping[str, tuple[int, float]]] = {
    ACCOUNT_CONFIG_PATH: (ACCOUNT_CONFIG_MAX_RATE, ACCOUNT_CONFIG_TIME_PERIOD),
}


class GridSimulator:
    """An OKX look-alike for contract grids, served over real HTTP on ``host:port``.

    Use it as an async context manager (or call `start()` and
    `close()`); it cannot be restarted once closed.

    Args:
        host: Interface to listen on.
        port: TCP port; 0 picks a free one (see `url`).
        max_rate: Requests accepted per (user, grid endpoint) in any window
            of ``time_period`` seconds (OKX: 20 per 2 s). The account
            configuration keeps OKX's 5 per 2 s (see `rate_limit()`).
        time_period: The window, in seconds.
        enforce_limits: If false, nothing is rejected for rate, but every
            arrival is still logged.
        rate_limit_http_status: 429 (``Too Many Requests``) or 200 (the
            ``Rate limit reached...`` message): both forms OKX uses for 50011.
        clock_offset_ms: Milliseconds added to real time for the simulator's
            clock (public time, the 30 s timestamp check). Settable later.
        seed: Seed for ids and price moves, for reproducible runs.
        price_tick_interval: If set, every grid's mark takes a random step
            of up to 10 basis points every this many seconds (see
            `SimExchange.walk_prices()`), filling close orders it reaches.
        clock: Monotonic clock for arrival times and the limiter, in seconds.
        history_limit: Keep only this many recent arrivals and requests
            (``None``: keep all), for long-running servers.
        latency: Seconds every private request waits, once the rate limiter
            has accepted it, before it is executed (an injected fault's
            ``delay`` adds to it). Settable later.
        ws_idle_timeout: Seconds without a message from a WebSocket client
            before its connection is closed with code 4004 (OKX: 30).
        ws_connect_rate: WebSocket upgrades accepted per IP in any second
            (OKX: 3); more are answered HTTP 429.
        ws_ops_per_hour: Op messages (login, subscribe, unsubscribe) accepted
            per WebSocket connection in any hour (OKX: 480); more are answered 60014.

    Raises:
        ValueError: On a bad limit, status, interval, latency or WebSocket limit.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_rate: int = GRID_MAX_RATE,
        time_period: float = GRID_TIME_PERIOD,
        enforce_limits: bool = True,
        rate_limit_http_status: int = 429,
        clock_offset_ms: int = 0,
        seed: int | None = None,
        price_tick_interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        history_limit: int | None = None,
        latency: float = 0.0,
        ws_idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        ws_connect_rate: int = DEFAULT_CONNECT_RATE,
        ws_ops_per_hour: int = DEFAULT_OPS_PER_HOUR,
    ) -> None:
        if rate_limit_http_status not in RATE_LIMIT_MSG:
            raise ValueError(
                f"rate_limit_http_status must be 429 or 200, got {rate_limit_http_status}"
            )
        if price_tick_interval is not None and price_tick_interval <= 0:
            raise ValueError(f"price_tick_interval must be positive, got {price_tick_interval}")
        self.host = host
        self.port = port
        self.enforce_limits = enforce_limits
        self.rate_limit_http_status = rate_limit_http_status
        self.clock_offset_ms = clock_offset_ms
        self.price_tick_interval = price_tick_interval
        if not 0 <= latency < float("inf"):
            raise ValueError(f"latency must be a finite number of seconds >= 0, got {latency}")
        self.latency = latency
        self._clock = clock
        self._limits = PathLimits((max_rate, time_period), _PATH_LIMITS)
        self._exchange = SimExchange(random.Random(seed), self.server_time_ms)  # noqa: S311
        self._ws = WsHub(
            self._exchange,
            clock=clock,
            now_ms=self.server_time_ms,
            idle_timeout=ws_idle_timeout,
            connect_rate=ws_connect_rate,
            ops_per_hour=ws_ops_per_hour,
        )
        self._exchange.add_listener(self._ws.grid_changed)
        self._arrivals = ArrivalLog(history_limit)
        self._requests: deque[RecordedRequest] = deque(maxlen=history_limit)
        self._faults = FaultPlan()
        self._closes = CloseLog(history_limit)
        endpoints = RestEndpoints(
            self._exchange, self._closes, clock=clock, now_ms=self.server_time_ms
        )
        self._router = Router(
            self,
            self._exchange,
            endpoints.routes(),
            clock=clock,
            limits=self._limits,
            faults=self._faults,
            arrivals=self._arrivals,
            requests=self._requests,
        )
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._closed = False

    # -- lifecycle ----------------------------------------------------------

    async def start(self) -> None:
        """Start listening (and moving prices, if configured).

        Raises:
            RuntimeError: If already started, or closed.
            OSError: If the address cannot be bound.
        """
        if self._closed:
            raise RuntimeError("a closed GridSimulator cannot be started again")
        if self._runner is not None:
            raise RuntimeError("GridSimulator is already started")
        app = web.Application()
        app.router.add_get(WS_PATH, self._ws.handle)  # before the catch-all, which would take it
        app.router.add_route("*", "/{tail:.*}", self._router.handle)
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=_SHUTDOWN_TIMEOUT
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        if self.price_tick_interval is not None:
            self._ticker = asyncio.create_task(self._walk_prices(self.price_tick_interval))

    async def close(self) -> None:
        """Stop serving: WebSockets close (1001), hanging requests drop, prices stop. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._router.closing.set()
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.wait({self._ticker})
        await self._ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321``.

        Raises:
            RuntimeError: If the simulator is not started.
        """
        if self._runner is None:
            raise RuntimeError("GridSimulator is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """The business WebSocket's URL, e.g. ``ws://127.0.0.1:54321/ws/v5/business``.

        Raises:
            RuntimeError: If the simulator is not started.
        """
        return "ws" + self.url.removeprefix("http") + WS_PATH

    @property
    def max_rate(self) -> int:
        """Requests accepted per (user, grid endpoint) in any window of `time_period`."""
        return self._limits.default.max_rate

    @property
    def time_period(self) -> float:
        """The grid endpoints' rate-limit window, in seconds."""
        return self._limits.default.time_period

    def rate_limit(self, path: str) -> tuple[int, float]:
        """``(max_rate, time_period)`` of the endpoint ``path``, per user.

        `max_rate` per `time_period` for the grid endpoints; OKX's 5 per 2 s
        for ``/api/v5/account/config``.
        """
        return self._limits.limit(path)

    def server_time_ms(self) -> int:
        """The simulator's clock in Unix ms: real time plus `clock_offset_ms`."""
        return time.time_ns() // 1_000_000 + self.clock_offset_ms

    # -- accounts and grids -------------------------------------------------

    def add_account(
        self,
        api_key: str | None = None,
        secret_key: str | None = None,
        passphrase: str | None = None,
        user_id: str | None = None,
        *,
        label: str = "simulator",
        demo: bool | None = None,
    ) -> SimAccount:
        """Register an API key; values left ``None`` are random.

        Give an existing ``user_id`` to add a second key of the same user:
        both then share that user's rate-limit budget. ``label`` is the key's
        name in the account configuration. ``demo`` is the key's environment:
        ``True`` demo trading, ``False`` live, each answering 50101 to a
        request of the other kind; ``None`` takes both.

        Raises:
            ValueError: If ``api_key`` is already registered or a value is empty.
        """
        return self._exchange.add_account(
            api_key, secret_key, passphrase, user_id, label=label, demo=demo
        )

    def add_api_key(
        self, user_id: str, *, label: str = "simulator", demo: bool | None = None
    ) -> SimAccount:
        """A new API key of the existing user ``user_id``, with random credentials.

        Requests signed with any of a user's keys share that user's rate-limit
        budgets, as at OKX, and see the same grids. ``label`` and ``demo`` as
        in `add_account()`.

        Raises:
            ValueError: If ``user_id`` has no key yet (see `add_account()`).
        """
        return self._exchange.add_api_key(user_id, label=label, demo=demo)

    def add_grid(
        self,
        user_id: str,
        algo_id: str | None = None,
        inst_id: str = "BTC-USDT-SWAP",
        state: GridState = "no_close_position",
        pos: DecimalLike = Decimal(35),
        avg_px: DecimalLike = Decimal("29215.01"),
        mark_px: DecimalLike = Decimal("29213.9"),
        lever: DecimalLike = Decimal(5),
        *,
        algo_cl_ord_id: str = "",
        direction: Direction | None = None,
        grid_num: int = 10,
        min_px: DecimalLike | None = None,
        max_px: DecimalLike | None = None,
        investment: DecimalLike | None = None,
        close_allowed: bool = True,
    ) -> SimGrid:
        """Create a contract grid for ``user_id`` (``pos`` in contracts, negative for short).

        ``algo_id`` defaults to a new unique 18-digit id, larger than every
        earlier one (so the newest grid lists first). ``close_allowed``
        false makes close-position answer 51341 "Position closing not
        allowed" (settable later on the grid).

        Raises:
            ValueError: See `SimExchange.add_grid()`.
        """
        return self._exchange.add_grid(
            user_id,
            algo_id,
            inst_id,
            state,
            pos,
            avg_px,
            mark_px,
            lever,
            algo_cl_ord_id=algo_cl_ord_id,
            direction=direction,
            grid_num=grid_num,
            min_px=min_px,
            max_px=max_px,
            investment=investment,
            close_allowed=close_allowed,
        )

    def add_demo_grids(self, user_id: str, count: int) -> list[SimGrid]:
        """Add ``count`` varied grids (mostly stopped with a position kept) to ``user_id``."""
        return self._exchange.add_demo_grids(user_id, count)

    def grid(self, algo_id: str) -> SimGrid:
        """The grid ``algo_id`` (live object: changes show in later answers).

        Raises:
            KeyError: If there is no such grid.
        """
        return self._exchange.grid(algo_id)

    def set_grid_state(self, algo_id: str, state: GridState) -> SimGrid:
        """Put a grid in ``state`` (its position is kept), and return it.

        ``"stopping"`` makes close-position answer 51288; ``"starting"``
        makes every request naming the grid answer 51289 "Bot configuration
        does not exist"; ``"running"`` and ``"stopped"`` make close answer
        51059.

        Raises:
            KeyError: If there is no such grid.
            ValueError: If ``state`` is not a `GridState`.
        """
        return self._exchange.set_grid_state(algo_id, state)

    def remove_grid(self, algo_id: str) -> SimGrid:
        """Forget a grid, as OKX forgets old stopped bots, and return it.

        It leaves both listings, and its owner's requests naming it answer
        51291 "This Bot does not exist or has been stopped" (another user's
        get 51293, as for any unknown id).

        Raises:
            KeyError: If there is no such grid.
        """
        return self._exchange.remove_grid(algo_id)

    def add_non_grid_algo(self, user_id: str, algo_id: str | None = None) -> str:
        """Register an algo order of ``user_id`` that is not a grid; return its algoId.

        Grid requests of ``user_id`` naming it answer 51345 "Policy type is
        not grid policy". ``algo_id`` defaults to a new id, as in `add_grid()`.

        Raises:
            ValueError: On an unknown user, or a non-numeric or taken ``algo_id``.
        """
        return self._exchange.add_non_grid_algo(user_id, algo_id)

    def set_mark_price(self, algo_id: str, px: DecimalLike) -> None:
        """Move a grid's mark price; a live close order whose price it reaches fills.

        Raises:
            KeyError: If there is no such grid.
            ValueError: If ``px`` is not a positive number.
        """
        self._exchange.set_mark_price(algo_id, px)

    def close_calls(self, algo_id: str) -> int:
        """How many close-position requests were executed for the grid (any answer sent).

        Raises:
            KeyError: If there is no such grid.
        """
        return self._exchange.grid(algo_id).close_calls

    def closes(self, algo_id: str | None = None) -> list[CloseRecord]:
        """The close-position requests the exchange processed, oldest first, executed or refused.

        Only requests for the signing user's own grid are kept, each with the
        executed close it repeats, if any (``duplicate_of``: see "Duplicate
        closes" in the simulator's guide). Optionally of one grid only.
        """
        return self._closes.records(algo_id)

    def rate_limit_refusals(self) -> dict[tuple[str, str], int]:
        """How many requests the rate limiter answered 50011, per ``(user_id, path)``.

        An injected RATE_LIMIT_50011 fault is not counted: it is the test's
        doing, not the bot's.
        """
        return self._limits.refusals()

    # -- observation and faults ---------------------------------------------

    def arrivals(self, user_id: str | None = None, path: str | None = None) -> list[Arrival]:
        """Answered requests to private endpoints in arrival order, optionally filtered."""
        return self._arrivals.snapshot(user_id, path)

    def reset_arrivals(self) -> None:
        """Forget logged arrivals (the rate-limit windows are not reset)."""
        self._arrivals.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received (any path), oldest first."""
        return list(self._requests)

    def clear_requests(self) -> None:
        """Forget recorded requests."""
        self._requests.clear()

    def inject_fault(
        self,
        kind: FaultKind,
        path: str | None = None,
        count: int = 1,
        delay: float = 0.0,
        *,
        location: str | None = None,
        size: int | None = None,
    ) -> None:
        """Make the next ``count`` requests to ``path`` fail as ``kind``.

        ``path`` ``None`` means any private endpoint.

        Every fault first waits ``delay`` seconds. A fault is taken after
        authentication and only by a request the rate limiter accepts
        (except RATE_LIMIT_50011, which stands in for the limiter).

        ``location`` is where a REDIRECT points (default: the request's own
        URL on this simulator). ``size`` is the body size in bytes of a
        HUGE_BODY (default 8 MiB) or, decompressed, of a GZIP_BOMB (default
        1 GiB).

        Raises:
            ValueError: If ``count`` < 1 or ``delay`` < 0; if ``location`` is
                given to another kind than REDIRECT or is not one line; if
                ``size`` is given to another kind than HUGE_BODY or GZIP_BOMB,
                or is below 1; if CURSOR_CYCLE's ``path`` is not
                orders-algo-pending's or orders-algo-history's.
        """
        self._faults.inject(kind, path, count, delay, location=location, size=size)

    def clear_faults(self) -> None:
        """Forget every fault not yet used."""
        self._faults.clear()

    # -- the WebSocket: faults and observation ---------------------------------

    def ws_drop_all(self) -> None:
        """Abort every open WebSocket connection: the TCP connection closes, no close frame."""
        self._ws.drop_all()

    def ws_notice_upgrade(self, close_after: float = 60.0) -> None:
        """Tell every open WebSocket that a service upgrade comes, then close it.

        Each open connection gets ``{"event":"notice","code":"64008",...}``
        now and is closed with code 1012 ``close_after`` seconds later
        (`ws_clear_faults()` cancels those closes).

        Raises:
            ValueError: If ``close_after`` is negative or not finite.
        """
        self._ws.notice_upgrade(close_after)

    def ws_refuse_login(self, code: str = "60009", count: int | None = None) -> None:
        """Refuse the next ``count`` WebSocket logins with ``code`` (``None``: all, until cleared).

        The refused connection stays open, as at OKX. Other codes worth a
        test: 60004-60007, 60024, 60032.

        Raises:
            ValueError: If ``code`` is not five digits or ``count`` is below 1.
        """
        self._ws.refuse_login(code, count)

    def ws_mute_pong(self, muted: bool = True) -> None:
        """Stop (or resume) answering ``ping`` on every WebSocket.

        A muted connection looks dead: nothing is sent on it (no ack, no
        push), and what would have been sent is lost. Close frames still go.
        """
        self._ws.mute(muted)

    def ws_clear_faults(self) -> None:
        """End every WebSocket fault: login refusals, mute, and closes a notice announced."""
        self._ws.clear_faults()

    def ws_connections(self) -> int:
        """WebSocket connections open now."""
        return self._ws.connections()

    def ws_connects(self) -> int:
        """WebSocket upgrades accepted so far."""
        return self._ws.connects()

    def ws_connection_refusals(self) -> int:
        """WebSocket upgrades refused with HTTP 429 (over ``ws_connect_rate``) so far."""
        return self._ws.refusals()

    def ws_ops(self, conn: str | None = None) -> int:
        """Op messages (login, subscribe, unsubscribe) accepted, on one connection or all.

        ``conn`` is a connection's ``connId``, as its answers carry it. An op
        refused 60014 or 60012 is not counted.
        """
        return self._ws.ops(conn)

    def ws_pushes(self) -> int:
        """Data pushes sent on every WebSocket so far (snapshots after subscribing, and changes)."""
        return self._ws.pushes()

    async def _walk_prices(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self._exchange.walk_prices()
