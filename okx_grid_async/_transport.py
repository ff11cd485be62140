"""The session layer: one aiohttp session, signing, the server-clock offset,
the rate limiter, retries, deadlines and error mapping.

Every grid endpoint goes through `Transport.request()`; endpoint methods
only validate their arguments and name the path, the parameters and the parser.

A call has two phases. First it queues for a rate-limit slot, for as long as the
queue takes (or until ``wait_timeout``); nothing is sent and no deadline runs.
Then the exchange, bounded by ``timeout``: signing, sending, reading the answer,
and any retries with their backoff. A retry queues again, and that wait is not
charged to the deadline either. The slot is released after the exchange, outside
the deadline and shielded from cancellation, so a release that has to await
(Redis) can never turn an answer in hand into an error.

`Transport.request` runs each attempt in four steps: `Transport._wait_for_slot`,
`Transport._exchange`, `Transport._release`, then, for a failed attempt,
`Transport._after_failure`. What one HTTP exchange does is in `_http`; what a
call sends and the errors that name it, in `_call`; what the clients of the
process share (OKX's clock, User IDs, per-IP budgets), in `_shared`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import random
from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Final, TypeVar

import aiohttp
from yarl import URL

from ._call import Call
from ._clock import Clock, SystemClock
from ._constants import (
    ACCOUNT_CONFIG_PATH,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_ATTEMPTS,
    PUBLIC_TIME_PATH,
)
from ._credentials import Credentials, format_timestamp
from ._deadline import Deadline, DeadlineTimer, ExpiredError
from ._errors import (
    DeadlineExceededError,
    OKXError,
    RateLimitError,
    TimestampExpiredError,
)
from ._http import Connections, send
from ._limiter import DONE, RateLimiter, Slot
from ._models import ResultParser, server_time_parser, uid_parser
from ._outcome import outcome_of
from ._retry import Decision, backoff_delay, decide
from ._round_trips import RoundTrips
from ._shared import (
    ACCOUNT_CONFIG_LIMITER,
    ANY_KEY,
    TIME_LIMITER,
    once_lock,
    remember_user_id,
    server_clock_for,
    user_id_of,
)
from ._validation import check_seconds

if TYPE_CHECKING:
    from ._otel import CallTrace, Telemetry

__all__ = ["Transport", "is_loopback", "validate_base_url"]

R = TypeVar("R")
W = TypeVar("W")

logger: Final = logging.getLogger("okx_grid_async")

_LOOPBACK_NAMES: Final = frozenset({"localhost"})
_DEMO_HEADER: Final = "x-simulated-trading"

# What a WebSocket login signs in place of a request path (with GET and no body).
_WS_VERIFY_PATH: Final = "/users/self/verify"


def validate_base_url(base_url: str) -> str:
    """``base_url`` without a trailing slash, if it is https, or http to a loopback host.

    Raises:
        TypeError: if it is not a str.
        ValueError: for another scheme, plain http to a non-loopback host, or a
            URL carrying a path, query, fragment or user info.
    """
    if not isinstance(base_url, str):
        raise TypeError(f"base_url must be a str, not {type(base_url).__name__}")
    url = URL(base_url.rstrip("/"))
    if url.scheme not in ("https", "http") or not url.host:
        raise ValueError(f"base_url must be an https:// URL with a host, not {base_url!r}")
    if url.path not in ("", "/") or url.query_string or url.fragment or url.user:
        raise ValueError(f"base_url must be scheme://host[:port] only, not {base_url!r}")
    if url.scheme == "http" and not is_loopback(url.host):
        raise ValueError(
            f"base_url {base_url!r}: plain http is allowed only to a loopback host "
            "(the simulator); use https"
        )
    return str(url.origin())


def is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Transport:
    """Signs, paces, sends and decodes; owns (or borrows) one aiohttp session.

    Not public: `GridClient` is the interface.
    """

    def __init__(
        self,
        credentials: Credentials,
        *,
        base_url: str,
        demo: bool,
        user_key: str | None,
        timeout: float,
        limiter: RateLimiter,
        session: aiohttp.ClientSession | None,
        clock: Clock | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        wait_timeout: float | None = None,
        telemetry: Telemetry | None = None,
        trace_configs: list[aiohttp.TraceConfig] | None = None,
    ) -> None:
        self._credentials = credentials
        self.base_url = validate_base_url(base_url)
        self.demo = demo
        self._user_key = user_key
        self.timeout = timeout
        self.wait_timeout = wait_timeout
        self.limiter = limiter
        self._clock: Clock = clock or SystemClock()
        self._connect_timeout = connect_timeout
        self._max_attempts = max_attempts
        self._session = session
        self._owns_session = session is None
        self._telemetry = telemetry
        self._trace_configs = trace_configs
        self._rng = random.Random()  # noqa: S311 (jitter, not cryptography)
        self._server_clock = server_clock_for(self.base_url, self._clock)
        # The shortest round trip seen: a POST granted with less deadline left is not sent.
        self.min_round_trip = math.inf
        self._round_trips = RoundTrips()
        # The connections that have carried a request already.
        self._connections = Connections()
        self._releases: set[asyncio.Future[bool | None]] = set()
        self._deadline_timer = DeadlineTimer()  # one event-loop timer for every call's deadline
        self._fixed_headers: dict[str, str] = {
            "OK-ACCESS-KEY": credentials.api_key,
            "OK-ACCESS-PASSPHRASE": credentials.passphrase,
            "Content-Type": "application/json",
        }
        if demo:
            self._fixed_headers[_DEMO_HEADER] = "1"

    # ------------------------------------------------------------ life cycle

    async def open(self) -> None:
        """Create the session (unless borrowed), learn OKX's clock offset and the User ID.

        Both are shared in the process: a fresh offset for this base URL, or a
        User ID already read for this API key, costs no request.
        """
        if self._session is None:
            # Connecting has its own bound; reading is bounded by each call's deadline,
            # which starts before the request is sent. A socket-read timeout equal to
            # that deadline could never strike first, and aiohttp re-arms it on every
            # chunk received: about 4 % of a request's CPU for nothing.
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=self._connect_timeout, sock_read=None
                ),
                raise_for_status=False,
                trace_configs=self._trace_configs,
            )
            # aiohttp silently resends an idempotent request once when a reused
            # connection drops; that second arrival would bypass the rate limiter
            # and hide the fault from the retry policy, so turn it off (as
            # aiohttp's own test client does).
            if hasattr(self._session, "_retry_connection"):
                self._session._retry_connection = False
        try:
            server_clock = self._server_clock
            async with once_lock("clock", self.base_url):
                if not server_clock.fresh(self._clock.monotonic()):
                    await self.sync_clock()
            self.min_round_trip = min(self.min_round_trip, server_clock.round_trip)
            if self._user_key is None:
                self._user_key = await self._read_user_id()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Close the session if this transport created it; finish slot releases under way."""
        if self._releases:
            await asyncio.gather(*self._releases, return_exceptions=True)
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            raise RuntimeError("the client is not open: use 'async with GridClient(...)'")
        return self._session

    @property
    def user_key(self) -> str:
        """The key of this client's rate budgets: the OKX User ID."""
        if self._user_key is None:
            raise RuntimeError(
                "the User ID is read when the client opens: use 'async with GridClient(...)' "
                "or pass user_id="
            )
        return self._user_key

    @property
    def offset_ms(self) -> float:
        """OKX's clock minus this machine's, in milliseconds, as last measured."""
        return self._server_clock.offset_ms

    # ------------------------------------------------------------ clock and identity

    async def sync_clock(self) -> None:
        """Measure the offset from OKX's clock (midpoint of send and receive), in ms.

        Paced per process at OKX's public limit (10 per 2 s per IP); the wait for
        that pace is not charged to ``timeout``, which bounds the exchange.

        Raises:
            DeadlineExceededError: no answer within ``timeout``.
            TransportError, OKXAPIError, MalformedResponseError: if the time cannot be read.
        """
        clock = self._clock
        host = URL(self.base_url).host or self.base_url
        async with TIME_LIMITER.slot(host, PUBLIC_TIME_PATH):
            deadline = Deadline(self.timeout, clock, self._deadline_timer)
            try:
                with deadline:
                    sent = clock.time()
                    started = clock.monotonic()
                    raw, status, _ = await send(
                        self.session,
                        self._connections,
                        "GET",
                        self.base_url + PUBLIC_TIME_PATH,
                        None,
                        None,
                    )
                    round_trip = clock.monotonic() - started
                    received = clock.time()
            except ExpiredError:
                raise DeadlineExceededError(
                    f"reading OKX's time took longer than {self.timeout} s"
                ) from None
        (server_ms,) = server_time_parser.parse(raw, status)
        server_clock = self._server_clock
        server_clock.offset_ms = server_ms - (sent + received) * 500.0
        server_clock.round_trip = round_trip
        server_clock.measured_at = clock.monotonic()
        self.min_round_trip = min(self.min_round_trip, round_trip)
        logger.debug("clock offset from OKX: %.0f ms", server_clock.offset_ms)

    async def _read_user_id(self) -> str:
        """The OKX User ID of this API key (``uid`` of account/config), read once per process."""
        base_url, api_key = self.base_url, self._credentials.api_key
        async with once_lock("uid", base_url, api_key):
            user_id = user_id_of(base_url, api_key)
            if user_id is None:
                (user_id,) = await self.request(
                    "GET",
                    ACCOUNT_CONFIG_PATH,
                    {},
                    uid_parser,
                    limiter=ACCOUNT_CONFIG_LIMITER,
                    budget_key=ANY_KEY,
                )
                remember_user_id(base_url, api_key, user_id)
        return user_id

    def timestamp(self) -> str:
        """OK-ACCESS-TIMESTAMP for a request sent now, on OKX's clock."""
        return format_timestamp(self._clock.time() + self._server_clock.offset_ms / 1000.0)

    def ws_login_args(self) -> dict[str, str]:
        """The argument of a WebSocket ``login`` sent now (it holds the passphrase and a sign).

        Its timestamp is Unix seconds on OKX's clock as last measured; the sign is
        the REST one over ``timestamp + "GET" + "/users/self/verify"``.
        """
        timestamp = str(int(self._clock.time() + self._server_clock.offset_ms / 1000.0))
        return {
            "apiKey": self._credentials.api_key,
            "passphrase": self._credentials.passphrase,
            "timestamp": timestamp,
            "sign": self._credentials.sign(timestamp, "GET", _WS_VERIFY_PATH, ""),
        }

    def clock_is_fresh(self) -> bool:
        """Whether OKX's clock offset was measured recently enough to sign with."""
        return self._server_clock.fresh(self._clock.monotonic())

    @property
    def telemetry(self) -> Telemetry | None:
        """The OpenTelemetry recorder of this client, None without ``opentelemetry-api``."""
        return self._telemetry

    # ------------------------------------------------------------ requests

    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, object],
        parser: ResultParser[W, R],
        *,
        timeout: float | None = None,
        wait_timeout: float | None = None,
        algo_id: str = "",
        limiter: RateLimiter | None = None,
        budget_key: str | None = None,
    ) -> list[R]:
        """Send one signed request: queue for a slot, then exchange within ``timeout``.

        ``timeout`` (default: the client's) bounds the exchange from the grant
        of a slot; queueing is bounded only by ``wait_timeout`` (default: the
        client's, None for none). ``limiter`` and ``budget_key`` override the
        client's limiter and User ID (for account/config, read before the User ID
        is known).

        Raises:
            WaitTimeoutError: the wait for a slot would pass ``wait_timeout``; nothing sent.
            NotSentError: a POST granted with less deadline left than a round trip.
            DeadlineExceededError: the deadline ran out with no request in doubt.
            OutcomeUnknownError: a POST may have been executed (never sent twice).
            OKXAPIError, HTTPStatusError, MalformedResponseError, TransportError,
            RateLimiterUnavailableError: as the retry policy leaves them.
        """
        seconds = self.timeout if timeout is None else check_seconds(timeout, "timeout")
        bound = self.wait_timeout if wait_timeout is None else wait_timeout
        call = Call(self.base_url, method, path, params, algo_id, seconds)
        limiter = limiter or self.limiter
        user_key = budget_key or self.user_key
        deadline = Deadline(seconds, self._clock, self._deadline_timer)
        # Chosen once per client: None (no OpenTelemetry) costs one test per step.
        trace = None if self._telemetry is None else self._telemetry.begin(method, path)
        attempt = 0
        try:
            while True:
                attempt += 1
                slot = await self._wait_for_slot(limiter, user_key, path, bound, trace)
                try:
                    raw, status, failure = await self._exchange(call, slot, deadline)
                finally:
                    if (release := self._release(slot)) is not DONE:
                        await release
                if failure is None:
                    try:
                        result = parser.parse(raw, status)
                    except OKXError as error:
                        failure = error
                    else:
                        if trace is not None:
                            trace.answered(None)
                            trace.end(None)
                        return result
                if trace is not None:
                    trace.answered(failure)
                await self._after_failure(
                    call, failure, attempt, deadline, limiter, user_key, trace
                )
        except BaseException as error:
            if trace is not None:
                trace.end(error)
            raise

    async def _wait_for_slot(
        self,
        limiter: RateLimiter,
        user_key: str,
        path: str,
        wait_timeout: float | None,
        trace: CallTrace | None,
    ) -> Slot:
        """Step 1: queue for a slot of the (user, endpoint) budget. No deadline runs here."""
        slot = limiter.slot(user_key, path, wait_timeout=wait_timeout)
        if trace is not None:
            await trace.wait(slot)
        elif (entered := slot.__aenter__()) is not DONE:
            await entered
        return slot

    async def _exchange(
        self, call: Call, slot: Slot, deadline: Deadline
    ) -> tuple[bytes, int, OKXError | None]:
        """Step 2: sign and send within the deadline, then tell ``slot`` when the request
        reached OKX at the latest (`Slot`'s ``arrived``).

        Returns the body and status, or a failure for the retry policy to judge: the
        network's, a redirect, a body past the cap.

        Raises:
            NotSentError: a POST granted with less deadline left than a round trip.
            OutcomeUnknownError: the deadline ran out with a POST in flight.
            DeadlineExceededError: the deadline ran out with a GET in flight.
        """
        # When the request reached OKX at the latest, in seconds before the release
        # (negative: it may still arrive after it). See _round_trips.
        ago = 0.0
        try:
            if call.method != "GET" and deadline.left < self.min_round_trip:
                raise call.not_sent(deadline.left, self.min_round_trip)
            try:
                with deadline:
                    headers = self._sign(call.method, call.request_path, call.body)
                    started = self._clock.monotonic()
                    # Abandoned in flight, its bytes may still reach OKX: for as long
                    # as a connection may take to open, then it is counted.
                    ago = -self._connect_timeout
                    raw, status, reused = await send(
                        self.session,
                        self._connections,
                        call.method,
                        call.url,
                        headers,
                        call.body or None,
                    )
                    ago = self._credit(started, reused)
            except ExpiredError:
                raise call.expired() from None
            except OKXError as error:  # the network, a redirect, a body past the cap
                ago = 0.0
                return b"", 0, error
        finally:
            arrived = getattr(slot, "arrived", None)
            if arrived is not None:
                arrived(ago)
        return raw, status, None

    def _release(self, slot: Slot) -> Awaitable[object]:
        """Step 3: release the slot, shielded: a cancelled caller does not cut it short.

        What to await: `DONE` when the slot was released at once (LocalRateLimiter),
        else the release's task, which `close` waits for.
        """
        release = slot.__aexit__(None, None, None)
        if release is DONE or (isinstance(release, asyncio.Future) and release.done()):
            return DONE  # no task needed
        task = asyncio.ensure_future(release)
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)
        return asyncio.shield(task)

    async def _after_failure(
        self,
        call: Call,
        failure: OKXError,
        attempt: int,
        deadline: Deadline,
        limiter: RateLimiter,
        user_key: str,
        trace: CallTrace | None,
    ) -> None:
        """Step 4, for a failed attempt: raise, or wait out the backoff before the next one.

        The backoff, and a clock resync after 50102, run within the deadline.

        Raises:
            OutcomeUnknownError: the failure leaves a POST's outcome in doubt.
            OKXError: ``failure`` itself, when it is final or the deadline cannot
                hold the backoff; DeadlineExceededError when the deadline runs out.
        """
        try:
            with deadline:
                delay = await self._retry_delay(call, failure, attempt, limiter, user_key)
                if delay > deadline.remaining():
                    raise failure
                self._retrying(call, attempt, failure, delay, trace)
                await self._clock.sleep(delay)
        except ExpiredError:
            raise call.deadline_exceeded() from None

    async def _retry_delay(
        self, call: Call, error: OKXError, attempt: int, limiter: RateLimiter, user_key: str
    ) -> float:
        """Apply the retry policy to a failed attempt: raise, or the seconds to wait first."""
        decision = decide(call.method, error)
        if decision is Decision.UNKNOWN:
            raise call.unknown(str(error)) from error
        if isinstance(error, RateLimitError):
            # Even on the last attempt: other callers of this budget must slow down.
            await limiter.penalize(user_key, call.path)
        if decision is Decision.RAISE or attempt >= self._max_attempts:
            raise error
        if isinstance(error, TimestampExpiredError):
            await self.sync_clock()
        return backoff_delay(attempt, self._rng.random())

    @staticmethod
    def _retrying(
        call: Call, attempt: int, failure: OKXError, delay: float, trace: CallTrace | None
    ) -> None:
        """Report a retry about to be made: one INFO line, and the retries counter."""
        reason, code = outcome_of(call.method, failure)
        logger.info(
            "%s %s attempt %d failed (%s%s, %s); retrying in %.3f s",
            call.method,
            call.path,
            attempt,
            reason,
            f" {code}" if code else "",
            type(failure).__name__,
            delay,
        )
        if trace is not None:
            trace.retry(reason)

    def _credit(self, started: float, reused: bool) -> float:
        """Record an exchange's round trip; the seconds its slot may count it as arrived early.

        That is the shortest recent round trip on a reused connection (never more
        than this one's): see `RoundTrips`.
        """
        now = self._clock.monotonic()
        round_trip = now - started
        self.min_round_trip = min(self.min_round_trip, round_trip)
        return self._round_trips.credit(now, round_trip, reused=reused)

    def _sign(self, method: str, request_path: str, body: str) -> dict[str, str]:
        timestamp = self.timestamp()
        headers = dict(self._fixed_headers)
        headers["OK-ACCESS-TIMESTAMP"] = timestamp
        headers["OK-ACCESS-SIGN"] = self._credentials.sign(timestamp, method, request_path, body)
        return headers

    def __repr__(self) -> str:
        user = self._user_key[-4:] if self._user_key else "?"
        return f"Transport(base_url={self.base_url!r}, demo={self.demo}, user_key='…{user}')"
