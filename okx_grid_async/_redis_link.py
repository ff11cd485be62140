"""`RedisRateLimiter`'s line to Redis: one client, the limiter's scripts on it, and every
Redis failure turned into `RateLimiterUnavailableError`, with no password in it.

Imports ``redis`` (the ``redis`` extra): `RedisRateLimiter` imports this module only
when it is built, so the package works without the extra.

Two kinds of call: `RedisLink.run` for a decision someone waits on (a grant, a
penalty), which raises; and `RedisLink.send`, in a task of its own, for one whose
loss only costs time (a release, a departure from the queue), which logs instead.
Those tasks are the link's to finish or cancel (`RedisLink.close`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Final, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ._constants import REDIS_SOCKET_TIMEOUT
from ._errors import RateLimiterUnavailableError
from ._redis_scripts import ACQUIRE, LEAVE, PENALIZE, RELEASE
from ._redis_waiters import CLOSED

__all__ = ["RedisLink", "connect"]

T = TypeVar("T")

logger: Final = logging.getLogger("okx_grid_async")

# Retried connection errors: a pooled connection the server dropped is replaced
# at once, a Redis that is down fails in well under a second. Timeouts are not
# retried: a Redis that does not answer within the socket timeout is in no state
# to answer the next try, and each try would cost the whole timeout again.
_RETRIES: Final = 2
_RETRY_BACKOFF_BASE: Final = 0.05
_RETRY_BACKOFF_CAP: Final = 0.2

# Any failure of a Redis call; of those, the ones that say Redis itself cannot be
# reached (not that one command was refused).
_ERRORS: Final[tuple[type[Exception], ...]] = (RedisError, OSError)
_DOWN_ERRORS: Final[tuple[type[Exception], ...]] = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
)


def connect(url: str, shown_url: str) -> aioredis.Redis:
    """A client for ``url``, with short socket timeouts and quick retries of dropped connections.

    Raises:
        ValueError: ``url`` is not a Redis URL (the message shows ``shown_url``).
    """
    try:
        return aioredis.from_url(
            url,
            socket_timeout=REDIS_SOCKET_TIMEOUT,
            socket_connect_timeout=REDIS_SOCKET_TIMEOUT,
            retry=Retry(
                ExponentialBackoff(_RETRY_BACKOFF_CAP, _RETRY_BACKOFF_BASE),
                _RETRIES,
                supported_errors=(RedisConnectionError,),
            ),
        )
    except ValueError:
        raise ValueError(f"not a usable Redis URL: {shown_url}") from None


class RedisLink:
    """One Redis client (owned, or borrowed and left open) and the limiter's scripts on it.

    ``shown_url`` names Redis in messages; ``scrub`` takes the URL's password out
    of a message, and ``secrets`` are the strings whose presence in an exception
    makes it unfit to chain. ``on_down`` is told when Redis cannot be reached, so
    the limiter can fail every waiter at once.
    """

    __slots__ = (
        "_client",
        "_on_down",
        "_owns_client",
        "_scrub",
        "_secrets",
        "_shown_url",
        "acquire",
        "disconnected",
        "leave",
        "penalize",
        "release",
        "tasks",
    )

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        owns_client: bool,
        shown_url: str,
        secrets: tuple[str, ...],
        scrub: Callable[[str], str],
        on_down: Callable[[RateLimiterUnavailableError], None],
    ) -> None:
        self._client = client
        self._owns_client = owns_client
        self._shown_url = shown_url
        self._secrets = secrets
        self._scrub = scrub
        self._on_down = on_down
        self.acquire: AsyncScript = client.register_script(ACQUIRE)
        self.release: AsyncScript = client.register_script(RELEASE)
        self.penalize: AsyncScript = client.register_script(PENALIZE)
        self.leave: AsyncScript = client.register_script(LEAVE)
        # Releases and queue departures under way, each in a task of its own (see spawn).
        self.tasks: set[asyncio.Task[None]] = set()
        self.disconnected = False  # the client is closed: refuses every Redis call

    async def ping(self) -> None:
        """Check that Redis answers.

        Raises:
            RateLimiterUnavailableError: it does not.
            RuntimeError: the link is closed.
        """
        await self.call(self._client.ping, "PING")

    async def run(
        self, script: AsyncScript, keys: Sequence[str], args: Sequence[int | str], what: str
    ) -> object:
        """Run one script and return its answer (``what`` names it in messages).

        Raises:
            RateLimiterUnavailableError: Redis cannot be reached or failed.
            RuntimeError: the link is closed.
        """
        reply: object = await self.call(lambda: script(keys=keys, args=args), what)
        return reply

    async def send(
        self,
        script: AsyncScript,
        keys: Sequence[str],
        args: Sequence[int | str],
        what: str,
        if_lost: str,
    ) -> None:
        """Run a script whose loss only costs time (``if_lost`` says how): log, never raise.

        Raising would hide the request's own outcome (a close that went through
        would look failed), and nobody may be waiting for it anyway.
        """
        try:
            await self.run(script, keys, args, what)
        except (RateLimiterUnavailableError, RuntimeError) as exc:
            logger.warning("%s; %s", exc, if_lost)

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``coroutine`` in a task of its own, kept until done (`close` waits for it)."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)  # the loop keeps only a weak reference
        task.add_done_callback(self.tasks.discard)
        return task

    async def call(self, command: Callable[[], Awaitable[T]], what: str) -> T:
        """Run one Redis command, turning Redis failures into RateLimiterUnavailableError."""
        if self.disconnected:
            # A closed pool would silently reconnect (and leak the connection).
            raise RuntimeError(CLOSED)
        try:
            return await command()
        except _ERRORS as exc:
            detail = self._scrub(f"{type(exc).__name__}: {exc}")
            error = RateLimiterUnavailableError(
                f"Redis rate limiter at {self._shown_url} unavailable ({what}): {detail}"
            )
            if isinstance(exc, _DOWN_ERRORS):
                self._on_down(error)
            if any(s in repr(exc) or s in str(exc) for s in self._secrets):
                raise error from None
            raise error from exc

    async def close(self, give_up: float, what_is_held: str) -> None:
        """Give the tasks under way until ``give_up`` (loop time), then close the client.

        Tasks still running then are cancelled, with a warning that ``what_is_held``;
        a borrowed client is left open. Every later call raises RuntimeError.
        """
        loop = asyncio.get_running_loop()
        while self.tasks and (left := give_up - loop.time()) > 0:
            await asyncio.wait(set(self.tasks), timeout=left)
        if self.tasks:
            logger.warning(
                "rate limiter at %s closed before %d release(s) or queue departure(s) "
                "reached Redis; %s",
                self._shown_url,
                len(self.tasks),
                what_is_held,
            )
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
        self.disconnected = True
        if self._owns_client:
            await self._client.aclose()
