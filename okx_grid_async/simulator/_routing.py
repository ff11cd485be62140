"""The simulator's HTTP side: every REST request, from arrival to answer, as OKX would.

`Router.handle` serves every path but the WebSocket's. For a private endpoint it:

1. records the raw request (`GridSimulator.requests`) and its arrival time;
2. authenticates it as OKX does (HTTP 401, see ``_auth``), the key's
   environment included (50101); a failure is logged with user ``None``;
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
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Protocol

from aiohttp import web

from okx_grid_async.simulator._answers import (
    Answer,
    drop,
    envelope,
    error_answer,
    redirect,
    send,
)
from okx_grid_async.simulator._auth import authenticate_headers, demo_requested
from okx_grid_async.simulator._faults import (
    AFTER_EXECUTION,
    EXECUTING_FAULTS,
    FAILURES,
    HANG,
    Fault,
    FaultKind,
    FaultPlan,
)
from okx_grid_async.simulator._limits import Arrival, ArrivalLog, PathLimits
from okx_grid_async.simulator._model import SimAccount, SimError
from okx_grid_async.simulator._params import Params, json_object
from okx_grid_async.simulator._rest import Route
from okx_grid_async.simulator._state import SimExchange

__all__ = ["RATE_LIMIT_MSG", "RecordedRequest", "Router", "Settings"]

_RATE_LIMIT_200_MSG: Final = (
    "Rate limit reached. Please refer to API documentation and throttle requests accordingly."
)
RATE_LIMIT_MSG: Final = {429: "Too Many Requests", 200: _RATE_LIMIT_200_MSG}
"""50011's message for each HTTP status it may come with."""
# The caller of a public endpoint: no key, no user.
_NOBODY: Final = SimAccount(api_key="", secret_key="", passphrase="", user_id="")


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


class Settings(Protocol):
    """What the router reads of its simulator on every request: these may change while it runs."""

    enforce_limits: bool
    rate_limit_http_status: int
    latency: float

    @property
    def url(self) -> str:
        """The simulator's base URL (a REDIRECT's default target)."""
        ...

    def server_time_ms(self) -> int:
        """The simulator's wall clock in Unix ms."""
        ...


class Router:
    """Takes each REST request through recording, authentication, limits and faults to its route.

    Args:
        settings: The simulator's live settings.
        exchange: Whose accounts sign the requests.
        routes: Each path served, to its route.
        clock: Monotonic seconds: arrival times and the rate limit.
        limits: The per (user, path) rate limits.
        faults: The injected faults.
        arrivals: Where private requests are logged.
        requests: Where every request is recorded.

    Attributes:
        closing: Set when the simulator closes: hanging and waiting requests drop.
    """

    __slots__ = (
        "_arrivals",
        "_clock",
        "_exchange",
        "_faults",
        "_limits",
        "_requests",
        "_routes",
        "_settings",
        "closing",
    )

    def __init__(
        self,
        settings: Settings,
        exchange: SimExchange,
        routes: Mapping[str, Route],
        *,
        clock: Callable[[], float],
        limits: PathLimits,
        faults: FaultPlan,
        arrivals: ArrivalLog,
        requests: deque[RecordedRequest],
    ) -> None:
        self._settings = settings
        self._exchange = exchange
        self._routes = routes
        self._clock = clock
        self._limits = limits
        self._faults = faults
        self._arrivals = arrivals
        self._requests = requests
        self.closing = asyncio.Event()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer one HTTP request (see the module for the steps)."""
        t = self._clock()
        body = await request.read()
        _, _, query_string = request.raw_path.partition("?")
        self._requests.append(
            RecordedRequest(t, request.method, request.path, query_string, request.headers, body)
        )
        route = self._routes.get(request.path)
        if route is None:
            return await send(request, envelope(404, "404", "Not Found"), self.closing)
        if request.method != route.method:
            return await send(request, envelope(405, "405", "Method Not Allowed"), self.closing)
        # Reserve the arrival's place now: answers may come back out of order.
        entry = self._arrivals.begin() if route.private else None
        user_id, answer = await self._decide(request, body, route, t)
        if entry is not None:
            status, code = (0, "") if answer is None else (answer.status, answer.code)
            arrival = Arrival(t, user_id, request.path, request.method, status, code)
            self._arrivals.finish(entry, arrival)
        if answer is HANG:
            await self.closing.wait()
            answer = None
        return drop(request) if answer is None else await send(request, answer, self.closing)

    async def _decide(
        self, request: web.Request, body: bytes, route: Route, t: float
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
            and self._settings.enforce_limits
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
        route: Route,
        caller: SimAccount,
        fault: Fault | None,
    ) -> Answer | None:
        """Execute the request under ``fault``: the answer to send, or ``None`` to drop.

        APPLY_THEN_HANG executes and returns `HANG`: the caller hangs.
        """
        if self._settings.latency and not await self._pause(self._settings.latency):
            return None  # closing: drop, never execute
        if fault is None:
            return self._execute(request, body, route, caller)
        if fault.delay and not await self._pause(fault.delay):
            return None  # closing: drop, never execute
        kind = fault.kind
        if kind is FaultKind.DROP_CONNECTION:
            return None
        if kind is FaultKind.REDIRECT:
            return redirect(fault.location or self._settings.url + request.raw_path)
        if kind not in EXECUTING_FAULTS:
            return FAILURES[kind]
        cycled = kind is FaultKind.CURSOR_CYCLE
        answer = self._execute(request, body, route, caller, cycled=cycled)
        return AFTER_EXECUTION[kind](answer, fault)

    async def _pause(self, delay: float) -> bool:
        """Wait ``delay`` seconds; ``False`` if the simulator started closing meanwhile."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self.closing.wait()
        return not self.closing.is_set()

    def _execute(
        self,
        request: web.Request,
        body: bytes,
        route: Route,
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
        status = self._settings.rate_limit_http_status
        return envelope(status, "50011", RATE_LIMIT_MSG[status])

    def _authenticate(self, request: web.Request, body: bytes) -> SimAccount:
        """The account a private request is signed by (see `authenticate_headers()`)."""
        return authenticate_headers(
            self._exchange,
            request.headers,
            request.method,
            request.raw_path,
            body,
            self._settings.server_time_ms(),
        )
