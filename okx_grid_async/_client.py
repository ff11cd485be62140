"""GridClient: the contract-grid endpoints, each one short and of the same shape."""

from __future__ import annotations

import warnings
from collections.abc import AsyncGenerator
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Literal, Self, overload

import aiohttp

from ._clock import Clock, SystemClock
from ._closing import CloseReconciliation, close_params, reconciliation
from ._constants import (
    CONTRACT_GRID,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_TIMEOUT,
    GLOBAL_URL,
    GRID_CANCEL_CLOSE_ORDER_PATH,
    GRID_CLOSE_POSITION_PATH,
    GRID_POSITIONS_PATH,
    WS_HEARTBEAT,
    WS_PONG_TIMEOUT,
    GridEndpoint,
)
from ._credentials import Credentials
from ._errors import NoPositionError
from ._instrument_read import read_instrument
from ._instruments import (
    Instrument,
    instrument_cache,
)
from ._limiter import LimiterStats, RateLimiter, check_wait_timeout, default_rate_limiter
from ._listing import grid_pages
from ._models import (
    CancelCloseOrderResult,
    ClosePositionResult,
    GridOrder,
    GridPosition,
    cancel_result_parser,
    close_result_parser,
    position_parser,
)
from ._shared import PUBLIC_INSTRUMENTS_LIMITER
from ._sweep import AlgoIds, SweepRegistry, SweepResult, sweep
from ._telemetry import call_telemetry
from ._transport import Transport
from ._validation import (
    check_bool,
    check_grid_endpoint,
    check_id,
    check_seconds,
)
from ._ws import Streams, WatchStream

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = ["GridClient"]


class GridClient:
    """An asyncio client for OKX contract grids.

    Use it as ``async with GridClient(creds) as client:``. On entering, it opens
    one aiohttp session (unless ``session=`` is given, which is borrowed and left
    open) and measures the offset from OKX's clock.

    Args:
        credentials: the API key, secret and passphrase.
        base_url: https origin (``GLOBAL_URL``, ``US_URL``, ``EEA_URL``, ``OPENAPI_URL``),
            or plain http to a loopback host (the simulator).
        demo: send ``x-simulated-trading: 1`` (OKX demo trading). Live sends no such header.
        user_id: the OKX User ID (uid) that rate limits are counted by. By default
            it is read once per API key and process from ``GET /api/v5/account/config``
            when the client opens, so every key of one user shares one budget;
            passing it costs no request. The `user_id` property gives it back.
        timeout: default deadline of each call's exchange, in seconds: from the
            grant of a rate-limit slot, sending, retries with their backoff, and
            reading the answer. Waiting in the limiter's queue is not counted.
            Also bounds each exchange made while opening.
        wait_timeout: default bound, in seconds, on waiting in the rate limiter's
            queue (``None``: wait as long as the queue takes). Past it a call
            raises `WaitTimeoutError`, having sent nothing.
        rate_limiter: a `LocalRateLimiter` or `RedisRateLimiter`;
            ``None`` uses the process-wide `default_rate_limiter()`.
        session: an aiohttp session to borrow.
        clock: the clock for timestamps, backoff and waits (tests pass a FakeClock).
        connect_timeout: seconds to open a connection (within the call's deadline).
        max_attempts: attempts per call, the first included.
        meter_provider: the OpenTelemetry meter provider to record the client's
            metrics through (see Observability); by default the global one. Used
            only when ``opentelemetry-api`` is installed (the ``otel`` extra).
        tracer_provider: the OpenTelemetry tracer provider of the calls' spans;
            by default the global one.
        trace_configs: aiohttp ``TraceConfig`` hooks for the session the client
            creates. A borrowed ``session=`` keeps its own: passing both is an error.
        ws_url: the business WebSocket of `watch_positions()` and `watch_grids()`
            (``wss://``, or ``ws://`` to a loopback host). By default OKX's for
            ``base_url`` and ``demo`` (e.g. ``wss://ws.okx.com:8443/ws/v5/business``,
            ``wss://wspap.okx.com:8443/ws/v5/business`` for demo; US and EEA alike),
            or ``ws://`` to the simulator's host and port.

    Raises:
        ValueError: a bad base_url, max_attempts or user_id; a timeout or
            connect_timeout that is not a finite number of seconds > 0; a
            wait_timeout that is not None or a number of seconds > 0.
        TypeError: credentials that are not Credentials, or a non-bool demo.
        ValueError: ``trace_configs`` together with a borrowed ``session``; a
            ``ws_url`` that is not ``wss://`` (or ``ws://`` to a loopback host).
    """

    def __init__(
        self,
        credentials: Credentials,
        *,
        base_url: str = GLOBAL_URL,
        demo: bool = False,
        user_id: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        rate_limiter: RateLimiter | None = None,
        session: aiohttp.ClientSession | None = None,
        clock: Clock | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        wait_timeout: float | None = None,
        meter_provider: MeterProvider | None = None,
        tracer_provider: TracerProvider | None = None,
        trace_configs: list[aiohttp.TraceConfig] | None = None,
        ws_url: str | None = None,
    ) -> None:
        if not isinstance(credentials, Credentials):
            raise TypeError(f"credentials must be Credentials, not {type(credentials).__name__}")
        check_bool(demo, "demo")
        if user_id is not None:
            check_id(user_id, "user_id")
        check_seconds(timeout, "timeout")
        check_seconds(connect_timeout, "connect_timeout")
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise ValueError(f"max_attempts must be a positive int, not {max_attempts!r}")
        if trace_configs is not None and session is not None:
            raise ValueError(
                "trace_configs apply to the session the client creates; a borrowed session "
                "keeps its own: pass them to aiohttp.ClientSession(trace_configs=...)"
            )
        self._transport = Transport(
            credentials,
            base_url=base_url,
            demo=demo,
            user_key=user_id,
            timeout=float(timeout),
            limiter=rate_limiter or default_rate_limiter(),
            session=session,
            clock=clock,
            connect_timeout=connect_timeout,
            max_attempts=max_attempts,
            wait_timeout=check_wait_timeout(wait_timeout),
            telemetry=call_telemetry(clock or SystemClock(), meter_provider, tracer_provider),
            trace_configs=trace_configs,
        )
        self._streams = Streams(self._transport, ws_url, clock)
        self._state: Literal["new", "open", "closed"] = "new"
        self._sweeps = SweepRegistry()
        self._instruments = instrument_cache(clock)

    # ------------------------------------------------------------ life cycle

    async def __aenter__(self) -> Self:
        if self._state == "closed":
            raise RuntimeError("a closed GridClient cannot be reopened; create a new one")
        if self._state == "open":
            raise RuntimeError("this GridClient is already open")
        await self._transport.open()
        self._state = "open"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop this client's streams and sweeps, then close its session (unless borrowed).

        A stream's socket is closed and its tasks awaited. A sweep still running, or
        suspended after a ``break``, has its requests cancelled and its workers
        awaited. The next read of either raises ``RuntimeError``.
        """
        self._state = "closed"
        try:
            await self._streams.aclose()
            await self._sweeps.aclose()
        finally:
            await self._transport.close()

    @property
    def base_url(self) -> str:
        """The origin requests go to."""
        return self._transport.base_url

    @property
    def ws_url(self) -> str:
        """The business WebSocket that streams connect to."""
        return self._streams.ws_url

    @property
    def user_id(self) -> str:
        """The OKX User ID (uid) that rate limits are counted by: ``user_id=`` as given,
        or read from ``GET /api/v5/account/config`` when the client opened.

        It is the user key this client passes to its rate limiter.

        Raises:
            RuntimeError: before opening, when no ``user_id`` was given.
        """
        return self._transport.user_key

    @property
    def user_key(self) -> str:
        """Deprecated: `user_id` under its old name; it will be removed in the next release."""
        warnings.warn(
            "GridClient.user_key is deprecated and will be removed in the next release; "
            "use GridClient.user_id",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.user_id

    @property
    def rate_limiter(self) -> RateLimiter:
        """The limiter this client paces its requests through."""
        return self._transport.limiter

    @property
    def clock_offset_ms(self) -> float:
        """OKX's clock minus this machine's, in milliseconds, as last measured."""
        return self._transport.offset_ms

    def limiter_stats(self, endpoint: GridEndpoint = "positions") -> LimiterStats:
        """The rate-limit figures of this client's user for one grid endpoint.

        Args:
            endpoint: the endpoint by the last part of its path: ``"positions"``,
                ``"close-position"``, ``"cancel-close-order"``, ``"orders-algo-pending"``
                or ``"orders-algo-history"`` (see `GridEndpoint`).

        Raises:
            TypeError: ``endpoint`` is not a str.
            InvalidArgumentError: it is not one of those names (a path, say).
            RuntimeError: before opening, when no ``user_id`` was given.
        """
        return self._transport.limiter.stats(self.user_id, check_grid_endpoint(endpoint))

    # ------------------------------------------------------------ endpoints

    async def get_positions(
        self,
        algo_id: str,
        *,
        timeout: float | None = None,
        wait_timeout: float | None = None,
    ) -> list[GridPosition]:
        """The position of a contract grid (``GET /api/v5/tradingBot/grid/positions``).

        An empty position comes back as rows whose ``pos`` is zero, or no rows;
        `GridPosition.is_empty` tells.

        Raises:
            TypeError: ``algo_id`` is not a str (nothing is sent).
            InvalidArgumentError: ``algo_id`` is not a string of digits (nothing is sent).
            GridNotFoundError: OKX knows no such grid.
            OKXAPIError: any other OKX code, once retries are spent.
            DeadlineExceededError: the call's deadline ran out.
            TransportError: the network failed on every attempt.
            MalformedResponseError: the answer could not be read.
        """
        check_id(algo_id, "algo_id")
        params = {"algoOrdType": CONTRACT_GRID, "algoId": algo_id}
        return await self._transport.request(
            "GET",
            GRID_POSITIONS_PATH,
            params,
            position_parser,
            timeout=timeout,
            wait_timeout=check_wait_timeout(wait_timeout),
        )

    # The two modes, for type checkers: a market close takes no sz or px, a limit
    # close needs both. The checks in the body stay for callers without one.
    @overload
    async def close_position(
        self,
        algo_id: str,
        *,
        mkt_close: Literal[True],
        timeout: float | None = None,
        wait_timeout: float | None = None,
    ) -> ClosePositionResult: ...

    @overload
    async def close_position(
        self,
        algo_id: str,
        *,
        mkt_close: Literal[False],
        sz: Decimal | int | str,
        px: Decimal | int | str,
        timeout: float | None = None,
        wait_timeout: float | None = None,
    ) -> ClosePositionResult: ...

    async def close_position(
        self,
        algo_id: str,
        *,
        mkt_close: bool,
        sz: Decimal | int | str | None = None,
        px: Decimal | int | str | None = None,
        timeout: float | None = None,
        wait_timeout: float | None = None,
    ) -> ClosePositionResult:
        """Close the position of a grid stopped with "keep position".

        ``mkt_close=True`` closes everything at market; ``mkt_close=False`` places
        a limit close order of ``sz`` contracts at price ``px`` (both required,
        finite, > 0; Decimal, int or str, never float). A type checker holds a
        call to one of the two: ``mkt_close=True`` with ``sz`` or ``px``, or
        ``mkt_close=False`` without both, does not type-check; ``mkt_close`` must
        then be a literal ``True`` or ``False``, not a ``bool`` variable.

        Before sending a partial close, the client reads the grid's position (one
        request from the *positions* budget, not the close budget) and its
        instrument (`get_instrument()`, cached for an hour), and refuses an ``sz``
        above the position, below ``minSz`` or off the ``lotSz`` grid, or a ``px``
        off the ``tickSz`` grid. Each of these reads has its own ``timeout``.
        `Instrument.round_size()` and `Instrument.round_price()` put values on the grid.

        The close is sent again only when OKX certainly did not execute it
        (50011, 50013, or no connection); otherwise an unclear end raises
        `OutcomeUnknownError`: call `reconcile_close()` before acting again.

        Raises:
            TypeError: an argument of the wrong type, a float among them (nothing is sent).
            InvalidArgumentError: an invalid id, size or price, or a partial close off
                the instrument's grid or above the position (the close is not sent).
            OutcomeUnknownError: the close may have been executed; it was not resent.
            GridError: the grid's state refuses the close (e.g. NoPositionError,
                ClosingOrderExistsError, GridStateError).
            OKXAPIError: any other OKX code.
            DeadlineExceededError: the deadline ran out before the close was sent.
            MalformedResponseError: a partial close's position or instrument could
                not be read (the close is not sent).
        """
        params = await close_params(
            algo_id,
            mkt_close,
            sz,
            px,
            lambda algo_id: self.get_positions(algo_id, timeout=timeout, wait_timeout=wait_timeout),
            lambda inst_id: self.get_instrument(
                inst_id, timeout=timeout, wait_timeout=wait_timeout
            ),
        )
        rows = await self._transport.request(
            "POST",
            GRID_CLOSE_POSITION_PATH,
            params,
            close_result_parser,
            timeout=timeout,
            wait_timeout=check_wait_timeout(wait_timeout),
            algo_id=algo_id,
        )
        return rows[0]  # the parser guarantees exactly one

    async def cancel_close_order(
        self,
        algo_id: str,
        ord_id: str,
        *,
        timeout: float | None = None,
        wait_timeout: float | None = None,
    ) -> CancelCloseOrderResult:
        """Cancel the limit close order that a partial `close_position()` placed.

        Raises:
            TypeError: an id is not a str (nothing is sent).
            InvalidArgumentError: an id is not a string of digits (nothing is sent).
            OrderNotFoundError: no such pending order (filled or cancelled already).
            OutcomeUnknownError: the cancel may have been executed; it was not resent.
            OKXAPIError: any other OKX code.
            DeadlineExceededError: the deadline ran out before the cancel was sent.
        """
        check_id(algo_id, "algo_id")
        check_id(ord_id, "ord_id")
        params = {"algoId": algo_id, "ordId": ord_id}
        rows = await self._transport.request(
            "POST",
            GRID_CANCEL_CLOSE_ORDER_PATH,
            params,
            cancel_result_parser,
            timeout=timeout,
            wait_timeout=check_wait_timeout(wait_timeout),
            algo_id=algo_id,
        )
        return rows[0]  # the parser guarantees exactly one

    async def get_instrument(
        self,
        inst_id: str,
        *,
        inst_type: str | None = None,
        timeout: float | None = None,
        wait_timeout: float | None = None,
    ) -> Instrument:
        """A contract's size and price grid (``GET /api/v5/public/instruments``).

        Instruments rarely change: each is read once per (``base_url``, instId) in
        this process and kept for an hour; concurrent calls for one instrument
        share one request and its outcome. A client given its own ``clock`` keeps
        a cache of its own. The endpoint is public and limited to 20 requests per
        2 s per IP and instType: reads go through a process-wide limiter of that
        budget per (host, instType), a wait that ``timeout`` does not count.

        Args:
            inst_id: e.g. ``BTC-USDT-SWAP`` or ``BTC-USDT-250328``.
            inst_type: ``SWAP`` or ``FUTURES``; by default ``SWAP`` for an id ending
                in ``-SWAP``, else ``FUTURES``.
            timeout: the request's deadline in seconds; the client's default if None.
            wait_timeout: the most to wait for the limiter, in seconds; the client's
                default if None.

        Raises:
            TypeError: ``inst_id`` or ``inst_type`` is not a str (nothing is sent).
            InvalidArgumentError: not an instrument id, or an ``inst_type`` other than
                ``SWAP`` or ``FUTURES`` (nothing is sent).
            ValueError: a ``timeout`` or ``wait_timeout`` that is not a number > 0.
            WaitTimeoutError: the wait for the limiter would pass ``wait_timeout``.
            OKXAPIError: an OKX code, e.g. 51001 for an instrument OKX does not list.
            MalformedResponseError: no single row for ``inst_id``, or one without
                ``lotSz``, ``minSz`` or ``tickSz``.
            DeadlineExceededError: the deadline ran out.
            TransportError: the network failed on every attempt.
        """
        return await read_instrument(
            self._transport,
            self._instruments,
            PUBLIC_INSTRUMENTS_LIMITER,
            inst_id,
            inst_type,
            timeout,
            wait_timeout,
        )

    async def reconcile_close(
        self,
        algo_id: str,
        *,
        timeout: float | None = None,
        wait_timeout: float | None = None,
    ) -> CloseReconciliation:
        """Read a grid's position after `OutcomeUnknownError` to learn what happened.

        ``is_closed`` is True when no position is left (OKX may also answer 51058,
        "no available position", which counts as closed). A partial close places a
        limit order that leaves the position unchanged until it fills: compare
        ``positions`` with what you expected before sending it again.
        """
        try:
            positions = await self.get_positions(
                algo_id, timeout=timeout, wait_timeout=wait_timeout
            )
        except NoPositionError:
            positions = []
        return reconciliation(algo_id, positions)

    def iter_grids(
        self,
        *,
        history: bool = False,
        inst_id: str | None = None,
        page_size: int = 100,
        timeout: float | None = None,
        wait_timeout: float | None = None,
    ) -> AsyncGenerator[GridOrder, None]:
        """Every contract grid of the account, newest first, page after page.

        Reads ``orders-algo-pending`` (``history=False``: running grids and those
        stopped with their position kept, ``state == "no_close_position"``) or
        ``orders-algo-history``, following OKX's ``after`` cursor. Each page
        counts against the endpoint's budget. The result can be passed straight
        to `sweep_positions()`.

        Raises:
            InvalidArgumentError: a page_size outside 1..100.
            OKXAPIError: an OKX code, once retries are spent.
            DeadlineExceededError: a page's deadline ran out.
            MalformedResponseError: an unreadable page, or a page whose ``after`` cursor
                was followed before (the pages would repeat for ever).
        """
        return grid_pages(
            self._transport,
            history=history,
            inst_id=inst_id,
            page_size=page_size,
            timeout=timeout,
            wait_timeout=wait_timeout,
        )

    def sweep_positions(
        self,
        algo_ids: AlgoIds,
        *,
        concurrency: int = 20,
        timeout: float | None = None,
        wait_timeout: float | None = None,
    ) -> AsyncGenerator[SweepResult, None]:
        """Read many grids' positions concurrently, yielding each result as it completes.

        ``algo_ids`` may be any iterable or async iterable of ids or
        `GridOrder` (e.g. `iter_grids()`). A failing grid is one
        `SweepResult` with its ``error``; the sweep goes on. At most
        ``concurrency`` requests are in flight and ids are read lazily, so memory
        does not grow with the number of ids. Cancelling, or closing the
        generator (``async with contextlib.aclosing(client.sweep_positions(ids)) as
        results:``), cancels the requests in flight at once; a plain ``break``
        does so only once the generator is no longer referenced and the event
        loop finalises it. Closing the client stops its sweeps in any case: their
        requests are cancelled, and a sweep read after that raises ``RuntimeError``.
        Pacing is the rate limiter's: concurrency above the budget only queues,
        and queueing never fails a read unless ``wait_timeout`` bounds it.
        """
        check_wait_timeout(wait_timeout)

        async def fetch(algo_id: str) -> list[GridPosition]:
            return await self.get_positions(algo_id, timeout=timeout, wait_timeout=wait_timeout)

        return sweep(algo_ids, fetch, concurrency, self._sweeps)

    def watch_positions(
        self,
        algo_ids: AlgoIds,
        *,
        heartbeat: float = WS_HEARTBEAT,
        pong_timeout: float = WS_PONG_TIMEOUT,
    ) -> WatchStream[GridPosition]:
        """Watch grids' positions as OKX pushes them (WebSocket channel ``grid-positions``).

        ``algo_ids`` as for `sweep_positions()`: ids or `GridOrder`, from an iterable
        or an async iterable (each id is subscribed as it comes), all over one
        connection. The stream yields a `GridPosition` (with ``p_time``) for each
        push: first each grid's current position, then one per change (a close, a
        fill, a mark-price move...). A grid that cannot be watched is a `WatchFailure`
        item (`GridNotFoundError` for an unknown grid), and the stream goes on. After
        a reconnect each watched grid is read once with `get_positions()`, through
        the rate limiter. See `WatchStream` for the guarantees, and Watching in the docs.

        Args:
            algo_ids: the grids to watch.
            heartbeat: seconds without a message, either way, after which ``ping`` is
                sent (< 30).
            pong_timeout: seconds to wait for an answer to ``ping`` before
                connecting again.

        Raises:
            ValueError: a heartbeat or pong_timeout that is not a number of seconds > 0,
                or a heartbeat of 30 s or more.
            RuntimeError: the client is closed.
        """
        return self._streams.positions(
            algo_ids, self.get_positions, heartbeat=heartbeat, pong_timeout=pong_timeout
        )

    def watch_grids(
        self,
        inst_type: str = "ANY",
        *,
        inst_id: str | None = None,
        algo_id: str | None = None,
        heartbeat: float = WS_HEARTBEAT,
        pong_timeout: float = WS_PONG_TIMEOUT,
    ) -> WatchStream[GridOrder]:
        """Watch the account's contract grids' states (WebSocket ``grid-orders-contract``).

        Yields a `GridOrder` for every grid that matches, first as it is, then on
        each change: ``state == "no_close_position"`` is a grid stopped with its
        position kept. After a reconnect, ``orders-algo-pending`` is read once
        (through the rate limiter). The rest as `watch_positions()`.

        Args:
            inst_type: ``SWAP``, ``FUTURES`` or ``ANY``.
            inst_id: only this instrument's grids.
            algo_id: only this grid.
            heartbeat: seconds without a message, either way, after which ``ping`` is
                sent (< 30).
            pong_timeout: seconds to wait for an answer to ``ping``.

        Raises:
            TypeError: an argument of the wrong type.
            InvalidArgumentError: an unknown inst_type, a malformed inst_id or algo_id.
            ValueError: a bad heartbeat or pong_timeout.
            RuntimeError: the client is closed.
        """
        return self._streams.grids(
            inst_type,
            inst_id,
            algo_id,
            lambda: self.iter_grids(inst_id=inst_id),
            heartbeat=heartbeat,
            pong_timeout=pong_timeout,
        )

    def __repr__(self) -> str:
        return f"GridClient({self._transport!r}, state={self._state!r})"
