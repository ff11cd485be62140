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
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import random
import re
import threading
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final, TypeVar
from urllib.parse import urlencode

import aiohttp
import msgspec
from yarl import URL

from ._clock import Clock, SystemClock
from ._constants import (
    ACCOUNT_CONFIG_MAX_RATE,
    ACCOUNT_CONFIG_PATH,
    ACCOUNT_CONFIG_TIME_PERIOD,
    CLOCK_OFFSET_MAX_AGE,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_ATTEMPTS,
    MAX_RESPONSE_BYTES,
    PUBLIC_INSTRUMENTS_MAX_RATE,
    PUBLIC_INSTRUMENTS_PERIOD,
    PUBLIC_TIME_MAX_RATE,
    PUBLIC_TIME_PATH,
    PUBLIC_TIME_PERIOD,
)
from ._credentials import Credentials, format_timestamp
from ._deadline import Deadline, ExpiredError
from ._errors import (
    DeadlineExceededError,
    HTTPStatusError,
    NotSentError,
    OKXError,
    OutcomeUnknownError,
    RateLimitError,
    ResponseTooLargeError,
    TimestampExpiredError,
    TransportError,
)
from ._limiter import LocalRateLimiter, RateLimiter, Slot
from ._models import ResultParser, server_time_parser, uid_parser
from ._retry import Decision, backoff_delay, decide
from ._round_trips import RoundTrips
from ._telemetry import outcome_of
from ._validation import check_seconds

if TYPE_CHECKING:
    from ._otel import CallTrace, Telemetry

__all__ = [
    "PUBLIC_INSTRUMENTS_LIMITER",
    "Transport",
    "forget_shared_state",
    "is_loopback",
    "validate_base_url",
]

R = TypeVar("R")
W = TypeVar("W")

logger: Final = logging.getLogger("okx_grid_async")

_LOOPBACK_NAMES: Final = frozenset({"localhost"})
_DEMO_HEADER: Final = "x-simulated-trading"

# Budgets counted per IP or before the User ID is known are paced per process,
# whichever thread or event loop asks (LocalRateLimiter is thread-safe):
# /api/v5/public/time, 10 per 2 s per IP, keyed by host; public/instruments; and account/config,
# 5 per 2 s per User ID, which is read to learn the User ID, so every key of
# the process shares one budget (never more than any one user's).
_TIME_LIMITER: Final = LocalRateLimiter(PUBLIC_TIME_MAX_RATE, PUBLIC_TIME_PERIOD)
# /api/v5/public/instruments: 20 per 2 s per IP and instType, keyed by host and instType.
PUBLIC_INSTRUMENTS_LIMITER: Final = LocalRateLimiter(
    PUBLIC_INSTRUMENTS_MAX_RATE, PUBLIC_INSTRUMENTS_PERIOD
)
_ACCOUNT_CONFIG_LIMITER: Final = LocalRateLimiter(
    ACCOUNT_CONFIG_MAX_RATE, ACCOUNT_CONFIG_TIME_PERIOD
)
_ANY_KEY: Final = "*"
# What a WebSocket login signs in place of a request path (with GET and no body).
_WS_VERIFY_PATH: Final = "/users/self/verify"


class _ServerClock:
    """The offset from OKX's clock as last measured, shared by the clients of one base URL."""

    __slots__ = ("measured_at", "offset_ms", "round_trip")

    def __init__(self) -> None:
        self.offset_ms = 0.0
        self.measured_at = -math.inf  # monotonic seconds
        self.round_trip = 0.0  # seconds, of that measurement

    def fresh(self, now: float) -> bool:
        return now - self.measured_at < CLOCK_OFFSET_MAX_AGE


# Per process, for the real clock only (a test's FakeClock keeps its own).
_SERVER_CLOCKS: dict[str, _ServerClock] = {}
# User IDs read from account/config, per (base URL, API key).
_USER_IDS: dict[tuple[str, str], str] = {}
_SHARED_LOCK: Final = threading.Lock()
# Opening clients together on one loop: the first measures or reads, the rest
# wait for it (one asyncio.Lock per loop and key, since such locks bind to a loop).
_ONCE_LOCKS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, ...], asyncio.Lock]
] = weakref.WeakKeyDictionary()


def forget_shared_state() -> None:
    """Forget every measured clock offset and User ID read (for tests)."""
    with _SHARED_LOCK:
        _SERVER_CLOCKS.clear()
        _USER_IDS.clear()


def _once_lock(*key: str) -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    with _SHARED_LOCK:
        locks = _ONCE_LOCKS.setdefault(loop, {})
        lock = locks.get(key)
        if lock is None:
            lock = locks[key] = asyncio.Lock()
        return lock


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
        if isinstance(self._clock, SystemClock):
            with _SHARED_LOCK:
                self._server_clock = _SERVER_CLOCKS.setdefault(self.base_url, _ServerClock())
        else:
            self._server_clock = _ServerClock()
        # The shortest round trip seen: a POST granted with less deadline left is not sent.
        self.min_round_trip = math.inf
        self._round_trips = RoundTrips()
        # The connections (their aiohttp protocols) that have carried a request already.
        self._connections: weakref.WeakSet[object] = weakref.WeakSet()
        self._releases: set[asyncio.Future[bool | None]] = set()
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
            async with _once_lock("clock", self.base_url):
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
        async with _TIME_LIMITER.slot(host, PUBLIC_TIME_PATH):
            deadline = Deadline(self.timeout, clock)
            try:
                with deadline:
                    sent = clock.time()
                    started = clock.monotonic()
                    raw, status, _ = await self._send(
                        "GET", self.base_url + PUBLIC_TIME_PATH, None, None
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
        key = (self.base_url, self._credentials.api_key)
        async with _once_lock("uid", *key):
            user_id = _USER_IDS.get(key)
            if user_id is None:
                (user_id,) = await self.request(
                    "GET",
                    ACCOUNT_CONFIG_PATH,
                    {},
                    uid_parser,
                    limiter=_ACCOUNT_CONFIG_LIMITER,
                    budget_key=_ANY_KEY,
                )
                with _SHARED_LOCK:
                    _USER_IDS[key] = user_id
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
        budget = self.timeout if timeout is None else check_seconds(timeout, "timeout")
        bound = self.wait_timeout if wait_timeout is None else wait_timeout
        if method == "GET":
            query = _query(params)
            request_path = f"{path}?{query}" if query else path
            body = ""
        else:
            request_path = path
            body = msgspec.json.encode(params).decode()
        url = URL(self.base_url + request_path, encoded=True)
        limiter = limiter or self.limiter
        user_key = budget_key or self.user_key
        deadline = Deadline(budget, self._clock)
        # Chosen once per client: None (no OpenTelemetry) costs one test per step.
        trace = None if self._telemetry is None else self._telemetry.begin(method, path)
        attempt = 0
        try:
            while True:
                attempt += 1
                slot = limiter.slot(user_key, path, wait_timeout=bound)
                if trace is None:
                    await slot.__aenter__()  # the queue: no deadline runs here
                else:
                    await trace.wait(slot)
                failure: OKXError | None = None
                # When the request reached OKX at the latest, in seconds before the release
                # (negative: it may still arrive after it). See _round_trips.
                ago = 0.0
                try:
                    if method != "GET" and deadline.left < self.min_round_trip:
                        raise NotSentError(
                            path,
                            f"{method} {path}: not sent: {deadline.left:.3f} s of the {budget} s "
                            f"deadline left at the grant, less than a round trip "
                            f"({self.min_round_trip:.3f} s)",
                        )
                    try:
                        with deadline:
                            headers = self._sign(method, request_path, body)
                            started = self._clock.monotonic()
                            # Abandoned in flight, its bytes may still reach OKX: for as
                            # long as a connection may take to open, then it is counted.
                            ago = -self._connect_timeout
                            raw, status, reused = await self._send(
                                method, url, headers, body or None
                            )
                            ago = self._credit(started, reused)
                    except ExpiredError:
                        if method != "GET":
                            raise OutcomeUnknownError(
                                algo_id,
                                {"path": path, **params},
                                f"no answer within the {budget} s deadline",
                            ) from None
                        raise DeadlineExceededError(
                            f"{method} {path}: deadline of {budget} s exceeded"
                        ) from None
                    except OKXError as error:  # the network, a redirect, a body past the cap
                        ago = 0.0
                        failure = error
                finally:
                    arrived = getattr(slot, "arrived", None)
                    if arrived is not None:
                        arrived(ago)
                    await self._release(slot)
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
                try:
                    with deadline:
                        delay = await self._after_failure(
                            method, path, params, algo_id, failure, attempt, limiter, user_key
                        )
                        if delay > deadline.remaining():
                            raise failure
                        self._retrying(method, path, attempt, failure, delay, trace)
                        await self._clock.sleep(delay)
                except ExpiredError:
                    raise DeadlineExceededError(
                        f"{method} {path}: deadline of {budget} s exceeded"
                    ) from None
        except BaseException as error:
            if trace is not None:
                trace.end(error)
            raise

    @staticmethod
    def _retrying(
        method: str,
        path: str,
        attempt: int,
        failure: OKXError,
        delay: float,
        trace: CallTrace | None,
    ) -> None:
        """Report a retry about to be made: one INFO line, and the retries counter."""
        reason, code = outcome_of(method, failure)
        logger.info(
            "%s %s attempt %d failed (%s%s, %s); retrying in %.3f s",
            method,
            path,
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

    async def _release(self, slot: Slot) -> None:
        """Release a slot, shielded: a cancelled caller does not cut a release short."""
        release = slot.__aexit__(None, None, None)
        if isinstance(release, asyncio.Future) and release.done():
            return  # released at once (LocalRateLimiter): no task needed
        task = asyncio.ensure_future(release)
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)
        await asyncio.shield(task)

    async def _after_failure(
        self,
        method: str,
        path: str,
        params: Mapping[str, object],
        algo_id: str,
        error: OKXError,
        attempt: int,
        limiter: RateLimiter,
        user_key: str,
    ) -> float:
        """Apply the retry policy to a failed attempt: raise, or the seconds to wait first."""
        decision = decide(method, error)
        if decision is Decision.UNKNOWN:
            raise OutcomeUnknownError(algo_id, {"path": path, **params}, str(error)) from error
        if isinstance(error, RateLimitError):
            # Even on the last attempt: other callers of this budget must slow down.
            await limiter.penalize(user_key, path)
        if decision is Decision.RAISE or attempt >= self._max_attempts:
            raise error
        if isinstance(error, TimestampExpiredError):
            await self.sync_clock()
        return backoff_delay(attempt, self._rng.random())

    def _sign(self, method: str, request_path: str, body: str) -> dict[str, str]:
        timestamp = self.timestamp()
        headers = dict(self._fixed_headers)
        headers["OK-ACCESS-TIMESTAMP"] = timestamp
        headers["OK-ACCESS-SIGN"] = self._credentials.sign(timestamp, method, request_path, body)
        return headers

    async def _send(
        self,
        method: str,
        url: URL | str,
        headers: Mapping[str, str] | None,
        body: str | None,
    ) -> tuple[bytes, int, bool]:
        """One HTTP exchange: the body, the status, and whether the connection was reused.

        Network faults become TransportError with ``sent`` set.

        Redirects are never followed (they would carry the signed request to
        another host, outside the limiter) and error statuses never raise inside
        aiohttp, whatever a borrowed session says. The body is read up to
        ``MAX_RESPONSE_BYTES`` (decompressed). The aiohttp exception is not
        chained: its ``request_info`` holds the request's headers, passphrase
        included.
        """
        try:
            async with self.session.request(
                method,
                url,
                headers=headers,
                data=body.encode() if body else None,
                allow_redirects=False,
                raise_for_status=False,
            ) as response:
                status = response.status
                # The connection's protocol object, one per TCP connection. Not
                # ``response.connection``: aiohttp hands a short answer's connection
                # back to its pool before returning the response, so that is None.
                # Without it (another aiohttp), no round trip counts as reused: no
                # credit, which is safe.
                protocol: object = getattr(response, "_protocol", None)
                reused = protocol is not None and protocol in self._connections
                if protocol is not None and not reused:
                    self._connections.add(protocol)
                if 300 <= status < 400:
                    raise HTTPStatusError(
                        status, f"redirect to {response.headers.get('Location')!r}"
                    )
                raw = await _read_capped(response)
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            error = TransportError(f"{method} {_path(url)}: cannot connect: {exc}", sent=False)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            error = TransportError(f"{method} {_path(url)}: {type(exc).__name__}: {exc}", sent=True)
        else:
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("%s %s -> HTTP %d (%d bytes)", method, _path(url), status, len(raw))
            return raw, status, reused
        raise error  # outside the except clause, so the aiohttp exception is not its context

    def __repr__(self) -> str:
        user = self._user_key[-4:] if self._user_key else "?"
        return f"Transport(base_url={self.base_url!r}, demo={self.demo}, user_key='…{user}')"


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    """The whole body, or ResponseTooLargeError past ``MAX_RESPONSE_BYTES`` (decompressed)."""
    length = response.content_length
    if (
        length is not None
        and length > MAX_RESPONSE_BYTES
        and not response.headers.get("Content-Encoding")
    ):
        raise ResponseTooLargeError(
            f"Content-Length {length} is over the {MAX_RESPONSE_BYTES}-byte cap",
            response.status,
            "",
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise ResponseTooLargeError(
                f"body over the {MAX_RESPONSE_BYTES}-byte cap", response.status, ""
            )
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


_SAFE_QUERY_TEXT: Final = re.compile(r"[A-Za-z0-9_.~-]*")


def _query(params: Mapping[str, object]) -> str:
    """The query string: joined directly when nothing needs quoting (ids, enums), else urlencode."""
    texts = [(key, str(value)) for key, value in params.items()]
    # Safe pieces concatenated stay safe, and one unsafe piece makes the whole unsafe.
    if _SAFE_QUERY_TEXT.fullmatch("".join(k + v for k, v in texts)):
        return "&".join(f"{k}={v}" for k, v in texts)
    return urlencode(params)


def _path(url: URL | str) -> str:
    return URL(url).path if isinstance(url, str) else url.path
