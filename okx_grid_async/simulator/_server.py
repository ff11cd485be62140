"""The simulator's HTTP side: a real aiohttp.web server that answers like OKX.

One handler serves every path. For a private endpoint it:

1. records the raw request (`GridSimulator.requests`) and its arrival time;
2. authenticates it as OKX does (HTTP 401, see `_REQUIRED_HEADERS` and
   `GridSimulator._authenticate()`); a failure is logged with user ``None``;
3. answers 50011 for an injected RATE_LIMIT_50011 fault, without using budget;
4. checks the (user, path) sliding window and answers 50011 when it is full;
5. applies any other injected fault (see ``_faults``);
6. executes the request and answers OKX's envelope
   ``{"code":"0","msg":"","data":[...]}``.

Every private request that reached step 2 is in `GridSimulator.arrivals()`.
The public endpoints (time, instruments) are neither authenticated, rate
limited nor logged as arrivals; faults apply to them only when injected with
their path.

HTTP statuses follow OKX's error table (`_HTTP_STATUS`): 401 for
authentication, 400 for malformed requests and parameter errors (50000,
50002, 50004, 50006, 50014, 51000), 429 for 50011 (or 200, as configured)
and 50013, 503 for 50001, 200 for business errors such as 51293. An unknown
path answers HTTP 404 ``{"code":"404","msg":"Not Found","data":[]}`` and a
known path with the wrong method HTTP 405 ``{"code":"405",...}``: OKX
documents no code for either.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import random
import re
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import TracebackType
from typing import Final, Self, TextIO

from aiohttp import web

from okx_grid_async._constants import (
    CONTRACT_GRID,
    GRID_CANCEL_CLOSE_ORDER_PATH,
    GRID_CLOSE_POSITION_PATH,
    GRID_MAX_RATE,
    GRID_ORDERS_HISTORY_PATH,
    GRID_ORDERS_PENDING_PATH,
    GRID_POSITIONS_PATH,
    GRID_TIME_PERIOD,
    MAX_TIMESTAMP_SKEW,
    PUBLIC_INSTRUMENTS_PATH,
    PUBLIC_TIME_PATH,
)
from okx_grid_async.simulator._faults import EXECUTING_FAULTS, Fault, FaultKind, FaultPlan
from okx_grid_async.simulator._limits import Arrival, ArrivalLog, SlidingWindowLimiter
from okx_grid_async.simulator._state import (
    DecimalLike,
    Direction,
    GridState,
    SimAccount,
    SimError,
    SimExchange,
    SimGrid,
    algo_order_row,
    param_empty,
    param_error,
    position_row,
    to_decimal,
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

Params = Mapping[str, object]
Rows = list[dict[str, str]]

# Each header OKX requires on a private request, and the code for its absence.
_REQUIRED_HEADERS: Final = (
    ("OK-ACCESS-KEY", "50103"),
    ("OK-ACCESS-PASSPHRASE", "50104"),
    ("OK-ACCESS-SIGN", "50106"),
    ("OK-ACCESS-TIMESTAMP", "50107"),
)
_TIMESTAMP_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

_AUTH_CODES: Final = ("50101", "50102", "50103", "50104", "50105", "50106", "50107")
_HTTP_STATUS: Final[Mapping[str, int]] = {
    **dict.fromkeys(_AUTH_CODES, 401),
    **dict.fromkeys(("50110", "50111", "50112", "50113", "50114"), 401),
    **dict.fromkeys(("50000", "50002", "50004", "50006", "50014", "51000"), 400),
    "50001": 503,
    "50013": 429,
    "50026": 500,
}
_RATE_LIMIT_200_MSG: Final = (
    "Rate limit reached. Please refer to API documentation and throttle requests accordingly."
)
_RATE_LIMIT_MSG: Final = {429: "Too Many Requests", 200: _RATE_LIMIT_200_MSG}
_HTML_500: Final = (
    b"<html>\r\n<head><title>500 Internal Server Error</title></head>\r\n<body>\r\n"
    b"<center><h1>500 Internal Server Error</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
_SHUTDOWN_TIMEOUT: Final = 1.0
_MAX_LIMIT: Final = 100
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
        return self.headers.get("x-simulated-trading") == "1"


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: bytes
    code: str
    content_type: str = "application/json"


@dataclass(frozen=True, slots=True)
class _Route:
    method: str
    private: bool
    handler: Callable[[str, Params], Rows]


def _envelope(status: int, code: str, msg: str = "", data: Rows | None = None) -> _Answer:
    body = json.dumps({"code": code, "msg": msg, "data": data or []}, separators=(",", ":"))
    return _Answer(status, body.encode(), code)


def _error_answer(err: SimError) -> _Answer:
    return _envelope(_HTTP_STATUS.get(err.code, 200), err.code, err.msg)


def _sign(secret_key: str, prehash: bytes) -> str:
    """OKX's signature: Base64(HMAC-SHA256(secret, timestamp + METHOD + requestPath + body))."""
    digest = hmac.new(secret_key.encode(), prehash, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _timestamp_ms(value: str) -> int:
    """Unix ms of an OKX timestamp ``YYYY-MM-DDTHH:MM:SS.mmmZ``; 50112 if it is not one."""
    if _TIMESTAMP_RE.fullmatch(value) is None:
        raise SimError("50112", "Invalid OK-ACCESS-TIMESTAMP")
    try:
        moment = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        raise SimError("50112", "Invalid OK-ACCESS-TIMESTAMP") from None
    return (moment - _EPOCH) // timedelta(milliseconds=1)


# -- request parameters -------------------------------------------------------


def _optional(params: Params, name: str) -> str | None:
    """A string parameter, ``None`` when missing or empty; 51000 if not a string."""
    value = params.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise param_error(name)
    return value


def _required(params: Params, name: str) -> str:
    """A string parameter that must be present: 50014 when missing or empty."""
    value = _optional(params, name)
    if value is None:
        raise param_empty(name)
    return value


def _positive_decimal(params: Params, name: str) -> Decimal:
    """A required positive number sent as a string (OKX's convention): 50014 / 51000."""
    text = _required(params, name)
    try:
        value = to_decimal(text)
    except ValueError:
        raise param_error(name) from None
    if value <= 0:
        raise param_error(name)
    return value


def _algo_id_cursor(params: Params, name: str) -> int | None:
    """An optional algoId used as a pagination cursor: 51000 unless all digits."""
    text = _optional(params, name)
    if text is None:
        return None
    if not text.isdigit():
        raise param_error(name)
    return int(text)


def _limit(params: Params) -> int:
    """``limit``: 1 to 100, default 100; 51000 otherwise."""
    text = _optional(params, "limit")
    if text is None:
        return _MAX_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= _MAX_LIMIT:
        raise param_error("limit")
    return int(text)


def _json_object(request: web.Request, body: bytes) -> Params:
    """The JSON object of a POST body: 50006 wrong Content-Type, 50000 empty, 50002 not JSON."""
    if request.content_type != "application/json":
        raise SimError("50006", 'Invalid Content_Type, please use "application/json" format')
    if not body.strip():
        raise SimError("50000", "Body can not be empty")
    try:
        value = json.loads(body)
    except ValueError:
        raise SimError("50002", "Json data format error") from None
    if not isinstance(value, dict):
        raise SimError("50002", "Json data format error")
    return value


class GridSimulator:
    """An OKX look-alike for contract grids, served over real HTTP on ``host:port``.

    Use it as an async context manager (or call `start()` and
    `close()`); it cannot be restarted once closed.

    Args:
        host: Interface to listen on.
        port: TCP port; 0 picks a free one (see `url`).
        max_rate: Requests accepted per (user, endpoint) in any window of
            ``time_period`` seconds (OKX: 20 per 2 s).
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

    Raises:
        ValueError: On a bad limit, status or interval.
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
        self._clock = clock
        self._limiter = SlidingWindowLimiter(max_rate, time_period)
        self._exchange = SimExchange(random.Random(seed), self.server_time_ms)  # noqa: S311
        self._arrivals = ArrivalLog(history_limit)
        self._requests: deque[RecordedRequest] = deque(maxlen=history_limit)
        self._faults = FaultPlan()
        self._routes: dict[str, _Route] = {
            PUBLIC_TIME_PATH: _Route("GET", False, self._public_time),
            PUBLIC_INSTRUMENTS_PATH: _Route("GET", False, self._public_instruments),
            GRID_POSITIONS_PATH: _Route("GET", True, self._positions),
            GRID_CLOSE_POSITION_PATH: _Route("POST", True, self._close_position),
            GRID_ORDERS_PENDING_PATH: _Route("GET", True, self._orders_pending),
            GRID_ORDERS_HISTORY_PATH: _Route("GET", True, self._orders_history),
            GRID_CANCEL_CLOSE_ORDER_PATH: _Route("POST", True, self._cancel_close_order),
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
        """Stop serving: hanging requests are dropped, price moves stop. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.wait({self._ticker})
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
    def max_rate(self) -> int:
        """Requests accepted per (user, endpoint) in any window of `time_period`."""
        return self._limiter.max_rate

    @property
    def time_period(self) -> float:
        """The rate-limit window, in seconds."""
        return self._limiter.time_period

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
    ) -> SimAccount:
        """Register an API key; values left ``None`` are random.

        Give an existing ``user_id`` to add a second key of the same user:
        both then share that user's rate-limit budget.

        Raises:
            ValueError: If ``api_key`` is already registered or a value is empty.
        """
        return self._exchange.add_account(api_key, secret_key, passphrase, user_id)

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
    ) -> SimGrid:
        """Create a contract grid for ``user_id`` (``pos`` in contracts, negative for short).

        ``algo_id`` defaults to a new unique 18-digit id, larger than every
        earlier one (so the newest grid lists first).

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
        self, kind: FaultKind, path: str | None = None, count: int = 1, delay: float = 0.0
    ) -> None:
        """Make the next ``count`` requests to ``path`` fail as ``kind``.

        ``path`` ``None`` means any private endpoint.

        Every fault first waits ``delay`` seconds. A fault is taken after
        authentication and only by a request the rate limiter accepts
        (except RATE_LIMIT_50011, which stands in for the limiter).

        Raises:
            ValueError: If ``count`` < 1 or ``delay`` < 0.
        """
        self._faults.inject(kind, path, count, delay)

    def clear_faults(self) -> None:
        """Forget every fault not yet used."""
        self._faults.clear()

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
            return _respond(_envelope(404, "404", "Not Found"))
        if request.method != route.method:
            return _respond(_envelope(405, "405", "Method Not Allowed"))
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
        return _drop(request) if answer is None else _respond(answer)

    async def _decide(
        self, request: web.Request, body: bytes, route: _Route, t: float
    ) -> tuple[str | None, _Answer | None]:
        """Authenticate, limit, apply faults and execute: the user and the answer (None: drop)."""
        user_id: str | None = None
        if route.private:
            try:
                user_id = self._authenticate(request, body).user_id
            except SimError as err:
                return None, _error_answer(err)
        fault = self._faults.peek(request.path, private=route.private)
        if fault is not None and fault.kind is FaultKind.RATE_LIMIT_50011:
            self._faults.consume(fault)
            return user_id, self._rate_limited()
        key = (user_id, request.path)
        if user_id is not None and self.enforce_limits and not self._limiter.try_acquire(key, t):
            return user_id, self._rate_limited()  # the fault waits for an accepted request
        if fault is not None:
            self._faults.consume(fault)
        return user_id, await self._faulted_answer(request, body, route, user_id or "", fault)

    async def _faulted_answer(
        self,
        request: web.Request,
        body: bytes,
        route: _Route,
        user_id: str,
        fault: Fault | None,
    ) -> _Answer | None:
        """Execute the request under ``fault``: the answer to send, or ``None`` to drop.

        APPLY_THEN_HANG executes and returns `_HANG`: the caller hangs.
        """
        if fault is None:
            return self._execute(request, body, route, user_id)
        if fault.delay and not await self._pause(fault.delay):
            return None  # closing: drop, never execute
        kind = fault.kind
        if kind is FaultKind.DROP_CONNECTION:
            return None
        if kind not in EXECUTING_FAULTS:
            return _FAILURES[kind]
        answer = self._execute(request, body, route, user_id)
        if kind is FaultKind.MALFORMED_JSON:
            return _Answer(200, answer.body[: len(answer.body) // 2], "")
        if kind is FaultKind.APPLY_THEN_DROP:
            return None
        if kind is FaultKind.TIMEOUT_50004:
            return _error_answer(
                SimError(
                    "50004",
                    "Endpoint request timeout (does not indicate success or failure of order, "
                    "please check order status)",
                )
            )
        if kind is FaultKind.APPLY_THEN_HANG:
            return _HANG
        if kind is FaultKind.EMPTY_DATA:
            return _envelope(200, "0")
        return answer  # LATENCY

    async def _pause(self, delay: float) -> bool:
        """Wait ``delay`` seconds; ``False`` if the simulator started closing meanwhile."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._closing.wait()
        return not self._closing.is_set()

    def _execute(self, request: web.Request, body: bytes, route: _Route, user_id: str) -> _Answer:
        try:
            params: Params = (
                _json_object(request, body) if route.method == "POST" else request.query
            )
            return _envelope(200, "0", "", route.handler(user_id, params))
        except SimError as err:
            return _error_answer(err)

    def _rate_limited(self) -> _Answer:
        status = self.rate_limit_http_status
        return _envelope(status, "50011", _RATE_LIMIT_MSG[status])

    def _authenticate(self, request: web.Request, body: bytes) -> SimAccount:
        """The account a private request is signed by, checked in OKX's order.

        Raises:
            SimError: 50103/50104/50106/50107 a header (key, passphrase, sign,
                timestamp) missing or empty; 50111 unknown key; 50112
                timestamp not ``YYYY-MM-DDTHH:MM:SS.mmmZ``; 50102 more than
                30 s from the simulator's clock; 50105 wrong passphrase;
                50113 signature mismatch. The signature is checked over the
                raw path and query and the raw body, exactly as received.
        """
        headers = request.headers
        for name, code in _REQUIRED_HEADERS:
            if not headers.get(name):
                raise SimError(code, f"Request header {name} can not be empty")
        account = self._exchange.account(headers["OK-ACCESS-KEY"])
        if account is None:
            raise SimError("50111", "Invalid OK-ACCESS-KEY")
        timestamp = headers["OK-ACCESS-TIMESTAMP"]
        skew_ms = abs(_timestamp_ms(timestamp) - self.server_time_ms())
        if skew_ms > MAX_TIMESTAMP_SKEW * 1000:
            raise SimError("50102", "Timestamp request expired")
        if not hmac.compare_digest(
            headers["OK-ACCESS-PASSPHRASE"].encode(), account.passphrase.encode()
        ):
            raise SimError("50105", "Request header OK-ACCESS-PASSPHRASE incorrect")
        prehash = (timestamp + request.method + request.raw_path).encode() + body
        expected = _sign(account.secret_key, prehash)
        if not hmac.compare_digest(headers["OK-ACCESS-SIGN"].encode(), expected.encode()):
            raise SimError("50113", "Invalid signature")
        return account

    async def _walk_prices(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self._exchange.walk_prices()

    # -- endpoints: (user_id, params) -> data rows, or SimError ---------------

    def _public_time(self, user_id: str, params: Params) -> Rows:
        return [{"ts": str(self.server_time_ms())}]

    def _public_instruments(self, user_id: str, params: Params) -> Rows:
        inst_type = _required(params, "instType")
        if inst_type not in _INST_TYPES:
            raise param_error("instType")
        inst_id = _optional(params, "instId")
        specs = [
            spec
            for spec in self._exchange.instruments()
            if spec.inst_type == inst_type and inst_id in (None, spec.inst_id)
        ]
        if inst_id is not None and not specs:
            raise SimError("51001", "Instrument ID does not exist")
        return [spec.row() for spec in specs]

    def _positions(self, user_id: str, params: Params) -> Rows:
        algo_ord_type = _required(params, "algoOrdType")
        algo_id = _required(params, "algoId")
        if algo_ord_type != CONTRACT_GRID:
            raise param_error("algoOrdType")
        return [position_row(self._exchange.owned_grid(user_id, algo_id))]

    def _close_position(self, user_id: str, params: Params) -> Rows:
        algo_id = _required(params, "algoId")
        mkt_close = params.get("mktClose")
        if mkt_close is None:
            raise param_empty("mktClose")
        if not isinstance(mkt_close, bool):
            raise param_error("mktClose")
        if mkt_close:
            grid = self._exchange.market_close(user_id, algo_id)
            ord_id = ""
        else:
            sz = _positive_decimal(params, "sz")
            px = _positive_decimal(params, "px")
            ord_id = self._exchange.place_close_order(user_id, algo_id, sz, px).ord_id
            grid = self._exchange.grid(algo_id)
        return [{"algoClOrdId": grid.algo_cl_ord_id, "algoId": algo_id, "ordId": ord_id, "tag": ""}]

    def _cancel_close_order(self, user_id: str, params: Params) -> Rows:
        algo_id = _required(params, "algoId")
        ord_id = _required(params, "ordId")
        self._exchange.cancel_close_order(user_id, algo_id, ord_id)
        grid = self._exchange.grid(algo_id)
        return [{"algoClOrdId": grid.algo_cl_ord_id, "algoId": algo_id, "ordId": ord_id, "tag": ""}]

    def _orders_pending(self, user_id: str, params: Params) -> Rows:
        return self._list_grids(user_id, params, history=False)

    def _orders_history(self, user_id: str, params: Params) -> Rows:
        return self._list_grids(user_id, params, history=True)

    def _list_grids(self, user_id: str, params: Params, *, history: bool) -> Rows:
        algo_ord_type = _required(params, "algoOrdType")
        if algo_ord_type not in ("grid", CONTRACT_GRID, "moon_grid"):
            raise param_error("algoOrdType")
        limit = _limit(params)
        after = _algo_id_cursor(params, "after")
        before = _algo_id_cursor(params, "before")
        if algo_ord_type != CONTRACT_GRID:
            return []  # the simulator only has contract grids
        grids = self._exchange.list_grids(
            user_id,
            history=history,
            algo_id=_optional(params, "algoId"),
            inst_id=_optional(params, "instId"),
            inst_type=_optional(params, "instType"),
            after=after,
            before=before,
            limit=limit,
        )
        return [algo_order_row(g) for g in grids]


# Not an answer: the request executed and the connection hangs until the simulator closes.
_HANG: Final = _Answer(0, b"", "")

# Faults that answer without executing.
_FAILURES: Final[Mapping[FaultKind, _Answer]] = {
    FaultKind.HTTP_500_HTML: _Answer(500, _HTML_500, "", "text/html"),
    FaultKind.HTTP_503: _envelope(503, "50001", "Service temporarily unavailable"),
    FaultKind.BUSY_50013: _envelope(429, "50013", "Systems are busy. Please try again later."),
}


def _respond(answer: _Answer) -> web.Response:
    return web.Response(status=answer.status, body=answer.body, content_type=answer.content_type)


def _drop(request: web.Request) -> web.Response:
    """Close the connection without answering.

    aiohttp then fails to write the returned response with a ConnectionError,
    which it swallows quietly: no answer reaches the client.
    """
    if request.transport is not None:
        request.transport.close()
    response = web.Response(status=500)
    response.force_close()
    return response


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
