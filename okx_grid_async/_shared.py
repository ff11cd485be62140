"""What every client of the process shares: OKX's clock offset, User IDs, per-IP budgets.

Reading OKX's time or a key's User ID once per process, not once per client,
spares budgets that OKX counts per IP or per user: opening 60 clients reads the
time once. Those reads are paced per process, whichever thread or event loop
asks (`LocalRateLimiter` is thread-safe).
"""

from __future__ import annotations

import asyncio
import math
import threading
import weakref
from typing import Final

from ._clock import Clock, SystemClock
from ._constants import (
    ACCOUNT_CONFIG_MAX_RATE,
    ACCOUNT_CONFIG_TIME_PERIOD,
    CLOCK_OFFSET_MAX_AGE,
    PUBLIC_INSTRUMENTS_MAX_RATE,
    PUBLIC_INSTRUMENTS_PERIOD,
    PUBLIC_TIME_MAX_RATE,
    PUBLIC_TIME_PERIOD,
)
from ._limiter import LocalRateLimiter

__all__ = [
    "ACCOUNT_CONFIG_LIMITER",
    "ANY_KEY",
    "PUBLIC_INSTRUMENTS_LIMITER",
    "TIME_LIMITER",
    "ServerClock",
    "forget_shared_state",
    "once_lock",
    "remember_user_id",
    "server_clock_for",
    "user_id_of",
]

# /api/v5/public/time: 10 per 2 s per IP, keyed by host.
TIME_LIMITER: Final = LocalRateLimiter(PUBLIC_TIME_MAX_RATE, PUBLIC_TIME_PERIOD)
# /api/v5/public/instruments: 20 per 2 s per IP and instType, keyed by host and instType.
PUBLIC_INSTRUMENTS_LIMITER: Final = LocalRateLimiter(
    PUBLIC_INSTRUMENTS_MAX_RATE, PUBLIC_INSTRUMENTS_PERIOD
)
# /api/v5/account/config: 5 per 2 s per User ID. It is read to learn the User ID,
# so every key of the process shares one budget (never more than any one user's),
# keyed by ANY_KEY.
ACCOUNT_CONFIG_LIMITER: Final = LocalRateLimiter(
    ACCOUNT_CONFIG_MAX_RATE, ACCOUNT_CONFIG_TIME_PERIOD
)
ANY_KEY: Final = "*"


class ServerClock:
    """The offset from OKX's clock as last measured, shared by the clients of one base URL."""

    __slots__ = ("measured_at", "offset_ms", "round_trip")

    def __init__(self) -> None:
        self.offset_ms = 0.0
        self.measured_at = -math.inf  # monotonic seconds
        self.round_trip = 0.0  # seconds, of that measurement

    def fresh(self, now: float) -> bool:
        return now - self.measured_at < CLOCK_OFFSET_MAX_AGE


# Per process, for the real clock only (a test's FakeClock keeps its own).
_SERVER_CLOCKS: dict[str, ServerClock] = {}
# User IDs read from account/config, per (base URL, API key).
_USER_IDS: dict[tuple[str, str], str] = {}
_LOCK: Final = threading.Lock()
# Opening clients together on one loop: the first measures or reads, the rest
# wait for it (one asyncio.Lock per loop and key, since such locks bind to a loop).
_ONCE_LOCKS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, ...], asyncio.Lock]
] = weakref.WeakKeyDictionary()


def server_clock_for(base_url: str, clock: Clock) -> ServerClock:
    """The process's offset from OKX's clock at ``base_url``; a fake clock gets its own."""
    if not isinstance(clock, SystemClock):
        return ServerClock()
    with _LOCK:
        return _SERVER_CLOCKS.setdefault(base_url, ServerClock())


def user_id_of(base_url: str, api_key: str) -> str | None:
    """The User ID already read for this API key at ``base_url``, if any."""
    return _USER_IDS.get((base_url, api_key))


def remember_user_id(base_url: str, api_key: str, user_id: str) -> None:
    with _LOCK:
        _USER_IDS[(base_url, api_key)] = user_id


def once_lock(*key: str) -> asyncio.Lock:
    """The running loop's lock for ``key``: whoever holds it measures or reads for all."""
    loop = asyncio.get_running_loop()
    with _LOCK:
        locks = _ONCE_LOCKS.setdefault(loop, {})
        lock = locks.get(key)
        if lock is None:
            lock = locks[key] = asyncio.Lock()
        return lock


def forget_shared_state() -> None:
    """Forget every measured clock offset and User ID read (for tests)."""
    with _LOCK:
        _SERVER_CLOCKS.clear()
        _USER_IDS.clear()
