"""The simulator's HTTP side: a real aiohttp.web server that answers like OKX.

One handler serves every path. For a private endpoint it:

1. records the raw request (`GridSimulator.requests`) and its arrival time;
2. authenticates it as OKX does (HTTP 401, see ``_auth``), the key's
   environment included (50101);
   a failure is logged with user ``None``;
3. answers 50011 for an injected RATE_LIMIT_50011 fault, without using budget;
4. checks the (user, path) sliding window, under that path's limit (see
   `GridSimulator.rate_limit()`), and answers 50011 when it is full;
5. applies any other injected fault (see ``_faults``);
6. executes the request and answers OKX's envelope
   ``{"code":"0","msg":"","data":[...]}``.

Every private request that reached step 2 is in `GridSimulator.arrivals()`.
The public endpoints (time, instruments) are neither authenticated, rate
limited nor logged as arrivals; faults apply to them only when injected with
their path.

HTTP statuses follow OKX's error table (see ``_answers``): 401 for
authentication, 400 for malformed requests and parameter errors (50000,
50002, 50004, 50006, 50014, 51000), 429 for 50011 (or 200, as configured)
and 50013, 503 for 50001, 500 for 50026, 200 for business errors such as
51293. An unknown path answers HTTP 404
``{"code":"404","msg":"Not Found","data":[]}`` and a known path with the
wrong method HTTP 405 ``{"code":"405",...}``: OKX documents no code for
either.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import Final, Self, TextIO

from aiohttp import web

from okx_grid_async._constants import (
    ACCOUNT_CONFIG_MAX_RATE,
    ACCOUNT_CONFIG_PATH,
    ACCOUNT_CONFIG_TIME_PERIOD,
    CONTRACT_GRID,
    GRID_CANCEL_CLOSE_ORDER_PATH,
    GRID_CLOSE_POSITION_PATH,
    GRID_MAX_RATE,
    GRID_ORDERS_HISTORY_PATH,
    GRID_ORDERS_PENDING_PATH,
    GRID_POSITIONS_PATH,
    GRID_TIME_PERIOD,
    PUBLIC_INSTRUMENTS_PATH,
    PUBLIC_TIME_PATH,
)
from okx_grid_async.simulator._answers import (
    HTML_500,
    Answer,
    Rows,
    deep_json,
    drop,
    envelope,
    error_answer,
    gzip_bomb,
    padded,
    redirect,
    send,
)
from okx_grid_async.simulator._auth import authenticate_headers, demo_requested
from okx_grid_async.simulator._closes import CloseLog, CloseRecord
from okx_grid_async.simulator._faults import (
    DEEP_JSON_DEPTH,
    EXECUTING_FAULTS,
    Fault,
    FaultKind,
    FaultPlan,
)
from okx_grid_async.simulator._limits import Arrival, ArrivalLog, PathLimits
from okx_grid_async.simulator._model import (
    DecimalLike,
    Direction,
    GridState,
    SimAccount,
    SimError,
    SimGrid,
    param_empty,
    param_error,
)
from okx_grid_async.simulator._params import (
    Params,
    algo_id_cursor,
    json_object,
    optional,
    page_limit,
    positive_decimal,
    required,
)
from okx_grid_async.simulator._rows import account_config_row, algo_order_row, position_row
from okx_grid_async.simulator._state import SimExchange
from okx_grid_async.simulator._ws import (
    DEFAULT_CONNECT_RATE,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_OPS_PER_HOUR,
    WS_PATH,
    WsHub,
)

__all__ = [
    "DEMO_API_KEY",
    "DEMO_PASSPHRASE",
    "DEMO_SECRET_KEY",
    "DEMO_USER_ID",
    "GridSimulator",
    "RecordedRequest",
    "serve_forever",
]

# Fake, well-known credentials of the demo account that serve_forever creates.
DEMO_API_KEY: Final = "0kx9r1d0-de30-4000-8000-000000000001"
DEMO_SECRET_KEY: Final = "DEMO0000000000000000000000000001"  # noqa: S105 - public by design
DEMO_PASSPHRASE: Final = "Demo-Passphrase-1"  # noqa: S105 - public by design
DEMO_USER_ID: Final = "100000000000001"

_RATE_LIMIT_200_MSG: Final = (
    "Rate limit reached. Please refer to API documentation and throttle requests accordingly."
)
_RATE_LIMIT_MSG: Final = {429: "Too Many Requests", 200: _RATE_LIMIT_200_MSG}
_SHUTDOWN_TIMEOUT: Final = 1.0
# The caller of a public endpoint: no key, no user.
_NOBODY: Final = SimAccount(api_key="", secret_key="", passphrase="", user_id="")
# OKX's own limits for the endpoints that do not follow the grid endpoints' rule.
_PATH_LIMITS: Final[Mapping[str, tuple[int, float]]] = {
    ACCOUNT_CONFIG_PATH: (ACCOUNT_CONFIG_MAX_RATE, ACCOUNT_CONFIG_TIME_PERIOD),
}
# instType values OKX's public instruments endpoint takes; the simulator lists contracts only.
_INST_TYPES: Final = frozenset({"SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION"})


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """A request as it reached the simulator, for tests that check a request's shape.

    Attributes:
        t: Arrival time on the simulator's clock (seconds).
        method: HTTP method.
        path: The decoded path, without the query string.
        query_string: The query string exactly as sent (not decoded), ``""`` if none.
        headers: The headers, looked up case-insensitively.
        body: The body bytes exactly as sent.
    """

    t: float
    method: str
    path: str
    query_string: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def demo(self) -> bool:
        """Whether the request asked for demo trading (``x-simulated-trading: 1``)."""
        return demo_requested(self.headers)


@dataclass(frozen=True, slots=True)
class _Route:
    method: str
    private: bool
    handler: Callable[[SimAccount, Params], Rows]
    # The handler under the CURSOR_CYCLE fault, for the listings.
    cycled: Callable[[SimAccount, Params], Rows] | None = None


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
        if rate_limit_http_status not in _RATE_LIMIT_MSG:
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
        self._routes: dict[str, _Route] = {
            PUBLIC_TIME_PATH: _Route("GET", False, self._public_time),
            PUBLIC_INSTRUMENTS_PATH: _Route("GET", False, self._public_instruments),
            GRID_POSITIONS_PATH: _Route("GET", True, self._positions),
            GRID_CLOSE_POSITION_PATH: _Route("POST", True, self._close_position),
            GRID_ORDERS_PENDING_PATH: self._listing(history=False),
            GRID_ORDERS_HISTORY_PATH: self._listing(history=True),
            GRID_CANCEL_CLOSE_ORDER_PATH: _Route("POST", True, self._cancel_close_order),
            ACCOUNT_CONFIG_PATH: _Route("GET", True, self._account_config),
        }
        self._closing = asyncio.Event()
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
        app.router.add_route("*", "/{tail:.*}", self._handle)
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
        self._closing.set()
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

    # -- the HTTP handler ---------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        t = self._clock()
        body = await request.read()
        _, _, query_string = request.raw_path.partition("?")
        self._requests.append(
            RecordedRequest(t, request.method, request.path, query_string, request.headers, body)
        )
        route = self._routes.get(request.path)
        if route is None:
            return await send(request, envelope(404, "404", "Not Found"), self._closing)
        if request.method != route.method:
            return await send(request, envelope(405, "405", "Method Not Allowed"), self._closing)
        # Reserve the arrival's place now: answers may come back out of order.
        entry = self._arrivals.begin() if route.private else None
        user_id, answer = await self._decide(request, body, route, t)
        if entry is not None:
            status, code = (0, "") if answer is None else (answer.status, answer.code)
            arrival = Arrival(t, user_id, request.path, request.method, status, code)
            self._arrivals.finish(entry, arrival)
        if answer is _HANG:
            await self._closing.wait()
            answer = None
        return drop(request) if answer is None else await send(request, answer, self._closing)

    async def _decide(
        self, request: web.Request, body: bytes, route: _Route, t: float
    ) -> tuple[str | None, Answer | None]:
        """Authenticate, limit, apply faults and execute: the user and the answer (None: drop)."""
        caller = _NOBODY
        if route.private:
            try:
                caller = self._authenticate(request, body)
            except SimError as err:
                return None, error_answer(err)
        user_id = caller.user_id if route.private else None
        fault = self._faults.peek(request.path, private=route.private)
        if fault is not None and fault.kind is FaultKind.RATE_LIMIT_50011:
            self._faults.consume(fault)
            return user_id, self._rate_limited()
        if (
            user_id is not None
            and self.enforce_limits
            and not self._limits.try_acquire(user_id, request.path, t)
        ):
            return user_id, self._rate_limited()  # the fault waits for an accepted request
        if fault is not None:
            self._faults.consume(fault)
        return user_id, await self._faulted_answer(request, body, route, caller, fault)

    async def _faulted_answer(
        self,
        request: web.Request,
        body: bytes,
        route: _Route,
        caller: SimAccount,
        fault: Fault | None,
    ) -> Answer | None:
        """Execute the request under ``fault``: the answer to send, or ``None`` to drop.

        APPLY_THEN_HANG executes and returns `_HANG`: the caller hangs.
        """
        if self.latency and not await self._pause(self.latency):
            return None  # closing: drop, never execute
        if fault is None:
            return self._execute(request, body, route, caller)
        if fault.delay and not await self._pause(fault.delay):
            return None  # closing: drop, never execute
        kind = fault.kind
        if kind is FaultKind.DROP_CONNECTION:
            return None
        if kind is FaultKind.REDIRECT:
            return redirect(fault.location or self.url + request.raw_path)
        if kind not in EXECUTING_FAULTS:
            return _FAILURES[kind]
        cycled = kind is FaultKind.CURSOR_CYCLE
        answer = self._execute(request, body, route, caller, cycled=cycled)
        return _AFTER_EXECUTION[kind](answer, fault)

    async def _pause(self, delay: float) -> bool:
        """Wait ``delay`` seconds; ``False`` if the simulator started closing meanwhile."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._closing.wait()
        return not self._closing.is_set()

    def _execute(
        self,
        request: web.Request,
        body: bytes,
        route: _Route,
        caller: SimAccount,
        *,
        cycled: bool = False,
    ) -> Answer:
        handler = route.cycled if cycled and route.cycled is not None else route.handler
        try:
            params: Params = json_object(request, body) if route.method == "POST" else request.query
            return envelope(200, "0", "", handler(caller, params))
        except SimError as err:
            return error_answer(err)

    def _rate_limited(self) -> Answer:
        status = self.rate_limit_http_status
        return envelope(status, "50011", _RATE_LIMIT_MSG[status])

    def _authenticate(self, request: web.Request, body: bytes) -> SimAccount:
        """The account a private request is signed by (see `authenticate_headers()`)."""
        return authenticate_headers(
            self._exchange,
            request.headers,
            request.method,
            request.raw_path,
            body,
            self.server_time_ms(),
        )

    async def _walk_prices(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self._exchange.walk_prices()

    # -- endpoints: (caller, params) -> data rows, or SimError ----------------

    def _public_time(self, caller: SimAccount, params: Params) -> Rows:
        return [{"ts": str(self.server_time_ms())}]

    def _public_instruments(self, caller: SimAccount, params: Params) -> Rows:
        inst_type = required(params, "instType")
        if inst_type not in _INST_TYPES:
            raise param_error("instType")
        inst_id = optional(params, "instId")
        specs = [
            spec
            for spec in self._exchange.instruments()
            if spec.inst_type == inst_type and inst_id in (None, spec.inst_id)
        ]
        if inst_id is not None and not specs:
            raise SimError("51001", "Instrument ID does not exist")
        return [spec.row() for spec in specs]

    def _account_config(self, caller: SimAccount, params: Params) -> Rows:
        return [account_config_row(caller)]

    def _positions(self, caller: SimAccount, params: Params) -> Rows:
        user_id = caller.user_id
        algo_ord_type = required(params, "algoOrdType")
        algo_id = required(params, "algoId")
        if algo_ord_type != CONTRACT_GRID:
            raise param_error("algoOrdType")
        return [position_row(self._exchange.owned_grid(user_id, algo_id))]

    def _close_position(self, caller: SimAccount, params: Params) -> Rows:
        user_id = caller.user_id
        algo_id = required(params, "algoId")
        mkt_close = params.get("mktClose")
        if mkt_close is None:
            raise param_empty("mktClose")
        if not isinstance(mkt_close, bool):
            raise param_error("mktClose")
        sz = px = None
        if not mkt_close:
            sz = positive_decimal(params, "sz")
            px = positive_decimal(params, "px")
        grid, ord_id = self._closes.execute(self._exchange, user_id, algo_id, sz, px, self._clock())
        return [{"algoClOrdId": grid.algo_cl_ord_id, "algoId": algo_id, "ordId": ord_id, "tag": ""}]

    def _cancel_close_order(self, caller: SimAccount, params: Params) -> Rows:
        user_id = caller.user_id
        algo_id = required(params, "algoId")
        ord_id = required(params, "ordId")
        self._exchange.cancel_close_order(user_id, algo_id, ord_id)
        grid = self._exchange.grid(algo_id)
        return [{"algoClOrdId": grid.algo_cl_ord_id, "algoId": algo_id, "ordId": ord_id, "tag": ""}]

    def _listing(self, *, history: bool) -> _Route:
        """The route of orders-algo-history (``history``) or orders-algo-pending."""
        return _Route(
            "GET",
            True,
            functools.partial(self._list_grids, history=history),
            cycled=functools.partial(self._list_grids, history=history, cursor_cycle=True),
        )

    def _list_grids(
        self, caller: SimAccount, params: Params, *, history: bool, cursor_cycle: bool = False
    ) -> Rows:
        algo_ord_type = required(params, "algoOrdType")
        if algo_ord_type not in ("grid", CONTRACT_GRID, "moon_grid"):
            raise param_error("algoOrdType")
        limit = page_limit(params)
        after = algo_id_cursor(params, "after")
        before = algo_id_cursor(params, "before")
        if algo_ord_type != CONTRACT_GRID:
            return []  # the simulator only has contract grids
        grids = self._exchange.list_grids(
            caller.user_id,
            history=history,
            algo_id=optional(params, "algoId"),
            inst_id=optional(params, "instId"),
            inst_type=optional(params, "instType"),
            after=after,
            before=before,
            limit=limit,
            cursor_cycle=cursor_cycle,
        )
        return [algo_order_row(g) for g in grids]


# Not an answer: the request executed and the connection hangs until the simulator closes.
_HANG: Final = Answer(0, b"", "")

# Faults that answer without executing (REDIRECT and DROP_CONNECTION need the request).
_FAILURES: Final[Mapping[FaultKind, Answer]] = {
    FaultKind.HTTP_500_HTML: Answer(500, HTML_500, "", "text/html"),
    FaultKind.HTTP_503: envelope(503, "50001", "Service temporarily unavailable"),
    FaultKind.BUSY_50013: envelope(429, "50013", "Systems are busy. Please try again later."),
    FaultKind.SYSTEM_ERROR_50026: envelope(500, "50026", "System error. Try again later."),
}
_TIMEOUT_50004: Final = error_answer(
    SimError(
        "50004",
        "Endpoint request timeout (does not indicate success or failure of order, "
        "please check order status)",
    )
)


def _size(fault: Fault) -> int:
    assert fault.size is not None  # FaultPlan.inject sets it for the kinds that take one
    return fault.size


# What each executing fault makes of the executed request's answer (None: drop it).
_AFTER_EXECUTION: Final[Mapping[FaultKind, Callable[[Answer, Fault], Answer | None]]] = {
    FaultKind.LATENCY: lambda answer, fault: answer,
    FaultKind.CURSOR_CYCLE: lambda answer, fault: answer,  # the listing itself cycles
    FaultKind.MALFORMED_JSON: lambda answer, fault: Answer(
        200, answer.body[: len(answer.body) // 2], ""
    ),
    FaultKind.APPLY_THEN_DROP: lambda answer, fault: None,
    FaultKind.APPLY_THEN_HANG: lambda answer, fault: _HANG,
    FaultKind.TIMEOUT_50004: lambda answer, fault: _TIMEOUT_50004,
    FaultKind.EMPTY_DATA: lambda answer, fault: envelope(200, "0"),
    FaultKind.HUGE_BODY: lambda answer, fault: padded(answer, _size(fault)),
    FaultKind.GZIP_BOMB: lambda answer, fault: gzip_bomb(answer, _size(fault)),
    FaultKind.DEEP_JSON: lambda answer, fault: deep_json(DEEP_JSON_DEPTH),
}


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
