"""The session layer: one aiohttp session, signing, the server-clock offset,
the rate limiter, retries, deadlines and error mapping.

Every grid endpoint goes through `Transport.request()`; endpoint methods
only validate their arguments and name the path, the parameters and the parser.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import re
import weakref
from collections.abc import Mapping
from typing import Final, TypeVar
from urllib.parse import urlencode

import aiohttp
import msgspec
from aiolimiter import AsyncLimiter
from yarl import URL

from ._clock import Clock, SystemClock
from ._constants import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_SAFETY_MARGIN,
    PUBLIC_TIME_MAX_RATE,
    PUBLIC_TIME_PATH,
    PUBLIC_TIME_PERIOD,
)
from ._credentials import Credentials, format_timestamp
from ._errors import (
    DeadlineExceededError,
    OKXError,
    OutcomeUnknownError,
    RateLimitError,
    TimestampExpiredError,
    TransportError,
)
from ._limiter import RateLimiter
from ._models import ResultParser, server_time_parser
from ._retry import Decision, backoff_delay, decide

__all__ = ["Transport", "validate_base_url"]

R = TypeVar("R")
W = TypeVar("W")

logger: Final = logging.getLogger("okx_grid_async")

_LOOPBACK_NAMES: Final = frozenset({"localhost"})
_DEMO_HEADER: Final = "x-simulated-trading"

# /api/v5/public/time allows 10 requests per 2 s per IP: one pacing limiter per
# event loop (aiolimiter binds to a loop), shared by every client in it.
# AsyncLimiter(1, 0.205) spaces calls 0.205 s apart: at most 10 in any 2 s window,
# both of its ends counted (0.2 s would let an 11th land on the far edge).
_time_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncLimiter] = (
    weakref.WeakKeyDictionary()
)


def _time_limiter() -> AsyncLimiter:
    loop = asyncio.get_running_loop()
    limiter = _time_limiters.get(loop)
    if limiter is None:
        spacing = (PUBLIC_TIME_PERIOD + DEFAULT_SAFETY_MARGIN) / PUBLIC_TIME_MAX_RATE
        limiter = _time_limiters[loop] = AsyncLimiter(1, spacing)
    return limiter


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
    if url.scheme == "http" and not _is_loopback(url.host):
        raise ValueError(
            f"base_url {base_url!r}: plain http is allowed only to a loopback host "
            "(the simulator); use https"
        )
    return str(url.origin())


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Expiry:
    """A call's deadline: when it fires, the call's task is cancelled and told why."""

    __slots__ = ("cancelling", "fired", "task")

    def __init__(self, task: asyncio.Task[object] | None) -> None:
        if task is None:
            raise RuntimeError("GridClient calls must run inside an asyncio task")
        self.task = task
        self.fired = False
        # Cancellations already pending when the call began are not ours to absorb.
        self.cancelling = task.cancelling()

    def fire(self) -> None:
        self.fired = True
        self.task.cancel()


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
        user_key: str,
        timeout: float,
        limiter: RateLimiter,
        session: aiohttp.ClientSession | None,
        clock: Clock | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        self._credentials = credentials
        self.base_url = validate_base_url(base_url)
        self.demo = demo
        self.user_key = user_key
        self.timeout = timeout
        self.limiter = limiter
        self._clock: Clock = clock or SystemClock()
        self._connect_timeout = connect_timeout
        self._max_attempts = max_attempts
        self._session = session
        self._owns_session = session is None
        self._rng = random.Random()  # noqa: S311 (jitter, not cryptography)
        self.offset_ms = 0.0
        self._fixed_headers: dict[str, str] = {
            "OK-ACCESS-KEY": credentials.api_key,
            "OK-ACCESS-PASSPHRASE": credentials.passphrase,
            "Content-Type": "application/json",
        }
        if demo:
            self._fixed_headers[_DEMO_HEADER] = "1"

    # ------------------------------------------------------------ life cycle

    async def open(self) -> None:
        """Create the session (unless borrowed) and measure the clock offset."""
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
            )
            # aiohttp silently resends an idempotent request once when a reused
            # connection drops; that second arrival would bypass the rate limiter
            # and hide the fault from the retry policy, so turn it off (as
            # aiohttp's own test client does).
            if hasattr(self._session, "_retry_connection"):
                self._session._retry_connection = False
        try:
            async with asyncio.timeout(self.timeout):
                await self.sync_clock()
        except TimeoutError as exc:
            await self.close()
            if isinstance(exc, OKXError):
                raise
            raise DeadlineExceededError(
                f"reading OKX's time took longer than {self.timeout} s"
            ) from None
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Close the session if this transport created it."""
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            raise RuntimeError("the client is not open: use 'async with GridClient(...)'")
        return self._session

    # ------------------------------------------------------------ clock

    async def sync_clock(self) -> None:
        """Measure the offset from OKX's clock (midpoint of send and receive), in ms.

        Raises:
            TransportError, OKXAPIError, MalformedResponseError: if the time cannot be read.
        """
        clock = self._clock
        async with _time_limiter():
            sent = clock.time()
            raw, status = await self._send("GET", self.base_url + PUBLIC_TIME_PATH, None, None)
            received = clock.time()
        (server_ms,) = server_time_parser.parse(raw, status)
        self.offset_ms = server_ms - (sent + received) * 500.0
        logger.debug("clock offset from OKX: %.0f ms", self.offset_ms)

    def timestamp(self) -> str:
        """OK-ACCESS-TIMESTAMP for a request sent now, on OKX's clock."""
        return format_timestamp(self._clock.time() + self.offset_ms / 1000.0)

    # ------------------------------------------------------------ requests

    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, object],
        parser: ResultParser[W, R],
        *,
        timeout: float | None = None,
        algo_id: str = "",
    ) -> list[R]:
        """Send one signed request, with pacing and retries, within one deadline.

        Raises:
            DeadlineExceededError: the deadline ran out with no request in doubt.
            OutcomeUnknownError: a POST may have been executed (never sent twice).
            OKXAPIError, HTTPStatusError, MalformedResponseError, TransportError,
            RateLimiterUnavailableError: as the retry policy leaves them.
        """
        budget = self.timeout if timeout is None else timeout
        if not budget > 0:
            raise ValueError(f"timeout must be > 0 seconds, not {budget!r}")
        if method == "GET":
            query = _query(params)
            request_path = f"{path}?{query}" if query else path
            body = ""
        else:
            request_path = path
            body = msgspec.json.encode(params).decode()
        url = URL(self.base_url + request_path, encoded=True)
        clock = self._clock
        deadline = clock.monotonic() + budget
        in_flight = False  # a request has left and its answer is not in: the deadline's concern
        attempt = 0
        # The deadline, as asyncio.timeout() does it but without its context manager,
        # which costs more than the rest of this method on a cached connection.
        loop = asyncio.get_running_loop()
        expiry = _Expiry(asyncio.current_task())
        timer = loop.call_at(loop.time() + budget, expiry.fire)
        try:
            while True:
                attempt += 1
                try:
                    async with self.limiter.slot(self.user_key, path):
                        headers = self._sign(method, request_path, body)
                        in_flight = True
                        raw, status = await self._send(method, url, headers, body or None)
                        in_flight = False
                    return parser.parse(raw, status)
                except OKXError as error:
                    in_flight = False
                    delay = await self._after_failure(method, path, params, algo_id, error, attempt)
                    if clock.monotonic() + delay > deadline:
                        raise
                    await clock.sleep(delay)
        except asyncio.CancelledError:
            if not expiry.fired or expiry.task.uncancel() > expiry.cancelling:
                raise  # cancelled by someone else: never swallowed
            if method != "GET" and in_flight:
                raise OutcomeUnknownError(
                    algo_id, {"path": path, **params}, f"no answer within the {budget} s deadline"
                ) from None
            raise DeadlineExceededError(
                f"{method} {path}: deadline of {budget} s exceeded"
            ) from None
        finally:
            timer.cancel()

    async def _after_failure(
        self,
        method: str,
        path: str,
        params: Mapping[str, object],
        algo_id: str,
        error: OKXError,
        attempt: int,
    ) -> float:
        """Apply the retry policy to a failed attempt: raise, or the seconds to wait first."""
        decision = decide(method, error)
        logger.debug(
            "%s %s attempt %d failed: %s (%s)",
            method,
            path,
            attempt,
            type(error).__name__,
            decision.value,
        )
        if decision is Decision.UNKNOWN:
            raise OutcomeUnknownError(algo_id, {"path": path, **params}, str(error)) from error
        if isinstance(error, RateLimitError):
            # Even on the last attempt: other callers of this budget must slow down.
            await self.limiter.penalize(self.user_key, path)
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
    ) -> tuple[bytes, int]:
        """One HTTP exchange; network faults become TransportError with ``sent`` set."""
        try:
            async with self.session.request(
                method, url, headers=headers, data=body.encode() if body else None
            ) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise TransportError(
                f"{method} {_path(url)}: cannot connect: {exc}", sent=False
            ) from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise TransportError(
                f"{method} {_path(url)}: {type(exc).__name__}: {exc}", sent=True
            ) from exc
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s %s -> HTTP %d (%d bytes)", method, _path(url), status, len(raw))
        return raw, status

    def __repr__(self) -> str:
        user = self.user_key[-4:]
        return f"Transport(base_url={self.base_url!r}, demo={self.demo}, user_key='…{user}')"


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
