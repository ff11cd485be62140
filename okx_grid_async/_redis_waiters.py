"""This process's side of a Redis budget: its keys, and the FIFO of the calls waiting for it.

Within a process, a budget's waiters queue here first come, first served, and
only the head asks Redis; across processes, the heads queue in Redis (see
`_redis_scripts`). A granted head leaves, and the next waiter of its process
queues behind the other processes' heads, so processes take turns. A credited
release wakes its process's head, whose slot it may have freed early.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from typing import Final

from ._clock import Clock
from ._errors import RateLimiterUnavailableError
from ._limiter import LimiterStats

__all__ = ["CLOSED", "Budget", "Budgets", "Waiter"]

# What a closed limiter raises (RuntimeError), to its waiters and to any new call.
CLOSED: Final = "this RedisRateLimiter is closed; create a new one"


class Waiter:
    """One call waiting for a slot, in its budget's FIFO of this process.

    ``wake`` is the future it sleeps on (None while it runs), resolved when it
    becomes the head, when the limiter closes, or when Redis failed for another
    waiter (``error``). ``in_call`` marks a head whose own Redis call is under way:
    that call decides its fate.
    """

    __slots__ = ("again", "deadline", "error", "in_call", "wake")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.error: RateLimiterUnavailableError | None = None
        self.in_call = False
        self.again = False  # a slot of this process may have freed during its own call
        self.wake: asyncio.Future[None] | None = None

    def rouse(self) -> None:
        wake = self.wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    def poke(self) -> None:
        """A release of this process was credited: ask Redis again, without sleeping."""
        if self.wake is None:
            self.again = True  # its call's answer may predate the release
        self.rouse()

    async def pause(self, seconds: float, clock: Clock) -> None:
        """Sleep ``seconds`` on ``clock`` (``inf``: until woken), or until woken.

        Returns at once if poked during its own call (``again``).
        """
        if self.again:
            self.again = False
            return
        loop = asyncio.get_running_loop()
        wake = self.wake = loop.create_future()
        try:
            if seconds == math.inf:
                await wake
            elif seconds > 0:
                timer = loop.create_task(clock.sleep(seconds))
                try:
                    await asyncio.wait((wake, timer), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    timer.cancel()
        finally:
            self.wake = None


class Budget:
    """This process's side of one (user, endpoint) budget: its keys, FIFO of waiters and figures."""

    __slots__ = ("blocked_key", "credited_key", "keys", "queue", "slots_key", "stats")

    def __init__(self, base: str) -> None:
        self.slots_key = f"{base}:slots"
        self.blocked_key = f"{base}:blocked"
        self.credited_key = f"{base}:credited"
        # The acquire script's KEYS, in its order; the leave script takes slots, queue,
        # seen (`leave_keys`); the release script slots and credited.
        self.keys = [
            self.slots_key,
            self.blocked_key,
            f"{base}:queue",
            f"{base}:seen",
            self.credited_key,
            f"{base}:epoch",
        ]
        self.queue: deque[Waiter] = deque()
        self.stats = LimiterStats()

    @property
    def leave_keys(self) -> list[str]:
        """The leave script's KEYS: slots, queue, seen (and the rest, unused)."""
        return [self.slots_key, *self.keys[2:]]

    def hopeless(self, deadline: float, wait_timeout: float, max_rate: int, span: float) -> bool:
        """Whether the waiters queued now make a wait of at most ``wait_timeout`` impossible.

        The limiter never grants the k-th request less than a span after the
        (k - max_rate)-th, so a call with p waiters ahead that will all be granted
        first waits at least floor(p / max_rate) spans. Only waiters whose own bound
        (``deadline``, on the limiter's clock) is not shorter count: one that may give
        up first may leave the call its slot.
        """
        queue = self.queue
        if len(queue) // max_rate * span <= wait_timeout:
            return False  # not even if every waiter ahead counted
        ahead = sum(1 for waiter in queue if waiter.deadline >= deadline)
        return ahead // max_rate * span > wait_timeout

    def enqueue(self, waiter: Waiter) -> None:
        self.queue.append(waiter)
        self.stats.max_waiting = max(self.stats.max_waiting, len(self.queue))

    def dequeue(self, waiter: Waiter) -> None:
        """Take ``waiter`` out of the queue; wake the next head if it was the head."""
        queue = self.queue
        was_head = queue[0] is waiter
        queue.remove(waiter)
        if was_head and queue:
            queue[0].rouse()

    def poke_head(self) -> None:
        if self.queue:
            self.queue[0].poke()

    def fail(self, error: RateLimiterUnavailableError) -> None:
        """Wake every waiter not in a Redis call of its own with ``error``."""
        for waiter in self.queue:
            if not waiter.in_call:
                waiter.error = error
                waiter.rouse()


class Budgets:
    """One limiter's budgets in this process, by (user key, endpoint)."""

    __slots__ = ("_by_key", "_drained", "_prefix")

    def __init__(self, key_prefix: str) -> None:
        self._prefix = key_prefix
        self._by_key: dict[tuple[str, str], Budget] = {}
        self._drained: asyncio.Future[None] | None = None  # while draining: no waiter left

    def get(self, user_key: str, endpoint: str) -> Budget:
        """The budget, created at its first use."""
        key = (user_key, endpoint)
        budget = self._by_key.get(key)
        if budget is None:
            # The hash tag keeps every key of a user on one Redis Cluster slot.
            budget = self._by_key[key] = Budget(f"{self._prefix}:{{{user_key}}}:{endpoint}")
        return budget

    def find(self, user_key: str, endpoint: str) -> Budget | None:
        """The budget if it was ever used (safe from any thread)."""
        return self._by_key.get((user_key, endpoint))

    def __len__(self) -> int:
        return len(self._by_key)

    def dequeue(self, budget: Budget, waiter: Waiter) -> None:
        """Take ``waiter`` out of ``budget``'s queue; end `drain` if it was the last."""
        budget.dequeue(waiter)
        drained = self._drained
        if drained is not None and not drained.done() and not self._waiting():
            drained.set_result(None)

    def fail(self, error: RateLimiterUnavailableError) -> None:
        """Redis cannot be reached: every waiter not in a call of its own learns it now."""
        for budget in self._by_key.values():
            budget.fail(error)

    async def drain(self, timeout: float) -> None:
        """Wake every waiter (to find the limiter closed); wait up to ``timeout`` s for all."""
        if not self._waiting():
            return
        self._drained = asyncio.get_running_loop().create_future()
        for budget in self._by_key.values():
            for waiter in budget.queue:
                waiter.rouse()
        await asyncio.wait([self._drained], timeout=timeout)

    def _waiting(self) -> bool:
        return any(budget.queue for budget in self._by_key.values())
