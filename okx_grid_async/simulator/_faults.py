"""Fault injection: make the next requests to a path fail the way real networks and OKX fail.

Every fault first waits its ``delay`` (0 by default), then:

==================  ========  ==========================================================
kind                executes  answer
==================  ========  ==========================================================
LATENCY             yes       the normal answer (use ``delay`` for how late)
HTTP_500_HTML       no        HTTP 500, an HTML error page (a gateway in front of OKX)
HTTP_503            no        HTTP 503, ``{"code":"50001","msg":"Service temporarily ..."}``
MALFORMED_JSON      yes       HTTP 200, the real answer cut in half
DROP_CONNECTION     no        none: the connection is closed
APPLY_THEN_DROP     yes       none: the connection is closed after executing
APPLY_THEN_HANG     yes       none until the client gives up or the simulator closes
BUSY_50013          no        HTTP 429, code 50013 "Systems are busy"
SYSTEM_ERROR_50026  no        HTTP 500, code 50026 "System error" in OKX's envelope
TIMEOUT_50004       yes       HTTP 400 (as OKX's error table), code 50004 "Endpoint
                              request timeout", which does not say whether it executed
RATE_LIMIT_50011    no        the simulator's 50011 answer, without using any budget
EMPTY_DATA          yes       HTTP 200, ``{"code":"0","msg":"","data":[]}``: success, no rows
REDIRECT            no        HTTP 307 to ``location`` (default: the same URL again)
HUGE_BODY           yes       the real answer padded with spaces to ``size`` bytes
                              (default 8 MiB), streamed
GZIP_BOMB           yes       the same padding to ``size`` bytes (default 1 GiB), sent
                              with ``Content-Encoding: gzip``: about 1 MB on the wire
DEEP_JSON           yes       HTTP 200, ``{"code":"0","msg":"","data":[[[...]]]}``
                              nested 100 000 deep
CURSOR_CYCLE        yes       orders-algo-pending/-history only: the page after the
                              second page's last row is the first page again
==================  ========  ==========================================================

"Executes" means the request takes effect (a close-position closes) exactly
as if it had been answered normally. The hostile bodies (HUGE_BODY,
GZIP_BOMB, DEEP_JSON) are produced after execution, as a real answer is; a
REDIRECT is answered before it, as a proxy or load balancer would.

`FaultPlan` holds the injected faults; `FAILURES` and `AFTER_EXECUTION` say
what each kind answers, before or after execution.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from okx_grid_async._constants import GRID_ORDERS_HISTORY_PATH, GRID_ORDERS_PENDING_PATH
from okx_grid_async.simulator._answers import (
    HTML_500,
    Answer,
    deep_json,
    envelope,
    error_answer,
    gzip_bomb,
    padded,
)
from okx_grid_async.simulator._model import SimError

__all__ = [
    "AFTER_EXECUTION",
    "DEEP_JSON_DEPTH",
    "DEFAULT_SIZES",
    "EXECUTING_FAULTS",
    "FAILURES",
    "HANG",
    "Fault",
    "FaultKind",
    "FaultPlan",
]


class FaultKind(StrEnum):
    """How the simulator misbehaves for an injected fault.

    Each member says whether the request is executed (a close-position
    closes) before the fault is answered.
    """

    LATENCY = "latency"
    """Executed: the normal answer, ``delay`` seconds late."""
    HTTP_500_HTML = "http_500_html"
    """Not executed: HTTP 500, an nginx HTML error page."""
    HTTP_503 = "http_503"
    """Not executed: HTTP 503, code 50001 "Service temporarily unavailable"."""
    MALFORMED_JSON = "malformed_json"
    """Executed: HTTP 200, the real answer cut in half."""
    DROP_CONNECTION = "drop_connection"
    """Not executed: the connection is closed without an answer."""
    APPLY_THEN_DROP = "apply_then_drop"
    """Executed: then the connection is closed without an answer."""
    APPLY_THEN_HANG = "apply_then_hang"
    """Executed: then no answer until the client gives up or the simulator closes."""
    BUSY_50013 = "busy_50013"
    """Not executed: HTTP 429, code 50013 "Systems are busy"."""
    SYSTEM_ERROR_50026 = "system_error_50026"
    """Not executed: HTTP 500, code 50026 "System error" in OKX's envelope."""
    TIMEOUT_50004 = "timeout_50004"
    """Executed: HTTP 400, code 50004, which does not say whether it executed."""
    RATE_LIMIT_50011 = "rate_limit_50011"
    """Not executed: the simulator's 50011 answer, without using any budget."""
    EMPTY_DATA = "empty_data"
    """Executed: HTTP 200, success with no rows."""
    REDIRECT = "redirect"
    """Not executed: HTTP 307 to the fault's ``location``; by default the same URL,
    so that a client following redirects meets the fault again (a loop for as
    many requests as its ``count``)."""
    HUGE_BODY = "huge_body"
    """Executed: the real answer with spaces after its opening brace, ``size``
    bytes in all (8 MiB by default), streamed with its Content-Length."""
    GZIP_BOMB = "gzip_bomb"
    """Executed: the real answer padded to ``size`` bytes (1 GiB by default) as
    HUGE_BODY, sent with ``Content-Encoding: gzip``: about a thousandth of that
    on the wire."""
    DEEP_JSON = "deep_json"
    """Executed: HTTP 200, ``{"code":"0","msg":"","data":[[[...]]]}`` with
    ``data`` nested `DEEP_JSON_DEPTH` deep."""
    CURSOR_CYCLE = "cursor_cycle"
    """Executed (a listing has no effect): for orders-algo-pending or
    orders-algo-history only, the page asked for with ``after`` at the
    second page's last row (B) is the first page (ending A) again, so a
    client that follows ``after`` cursors goes A, B, A, B... for as many
    requests as the fault's ``count``."""


# The faults after which the request has taken effect.
EXECUTING_FAULTS = frozenset(
    {
        FaultKind.LATENCY,
        FaultKind.MALFORMED_JSON,
        FaultKind.APPLY_THEN_DROP,
        FaultKind.APPLY_THEN_HANG,
        FaultKind.TIMEOUT_50004,
        FaultKind.EMPTY_DATA,
        FaultKind.HUGE_BODY,
        FaultKind.GZIP_BOMB,
        FaultKind.DEEP_JSON,
        FaultKind.CURSOR_CYCLE,
    }
)
# The paths that page with ``after`` cursors: the only ones CURSOR_CYCLE applies to.
_LISTING_PATHS: Final = frozenset({GRID_ORDERS_PENDING_PATH, GRID_ORDERS_HISTORY_PATH})
# The faults that take a ``size``, in bytes of the (decompressed) body, and its default.
DEFAULT_SIZES: Final = {
    FaultKind.HUGE_BODY: 8 * 1024 * 1024,
    FaultKind.GZIP_BOMB: 1024 * 1024 * 1024,
}
DEEP_JSON_DEPTH: Final = 100_000


@dataclass(slots=True, eq=False)
class Fault:
    """An injected fault with the number of requests it still applies to.

    ``location`` is a REDIRECT's target (``None``: the request's own URL);
    ``size`` the body size of a HUGE_BODY or GZIP_BOMB.
    """

    kind: FaultKind
    path: str | None
    remaining: int
    delay: float
    location: str | None = None
    size: int | None = None

    def matches(self, path: str, *, private: bool) -> bool:
        """Whether this fault applies to a request for ``path``.

        A fault without a path applies to private endpoints only; a fault
        naming a path (even the public time endpoint) applies to that path.
        """
        if self.remaining <= 0:
            return False
        return private if self.path is None else self.path == path


class FaultPlan:
    """Injected faults in injection order; the first one that matches a request is used."""

    __slots__ = ("_faults",)

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def inject(
        self,
        kind: FaultKind,
        path: str | None,
        count: int,
        delay: float,
        *,
        location: str | None = None,
        size: int | None = None,
    ) -> None:
        """Apply ``kind`` to the next ``count`` requests matching ``path``.

        ``size`` left ``None`` takes the kind's default (`DEFAULT_SIZES`).

        Raises:
            ValueError: If ``count`` is below 1, ``delay`` is negative,
                ``location`` is given to another kind than REDIRECT or holds
                a line break, ``size`` is given to another kind than
                HUGE_BODY and GZIP_BOMB or is below 1, or CURSOR_CYCLE is
                not given orders-algo-pending's or orders-algo-history's path.
        """
        kind = FaultKind(kind)
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        if delay < 0:
            raise ValueError(f"delay must not be negative, got {delay}")
        if kind is FaultKind.CURSOR_CYCLE and path not in _LISTING_PATHS:
            raise ValueError(f"CURSOR_CYCLE needs a listing's path, got {path!r}")
        if location is not None:
            if kind is not FaultKind.REDIRECT:
                raise ValueError(f"location applies to REDIRECT only, not {kind.name}")
            if "\r" in location or "\n" in location:
                raise ValueError(f"location must be one line, got {location!r}")
        if size is not None:
            if kind not in DEFAULT_SIZES:
                raise ValueError(f"size applies to HUGE_BODY and GZIP_BOMB only, not {kind.name}")
            if size < 1:
                raise ValueError(f"size must be at least 1, got {size}")
        else:
            size = DEFAULT_SIZES.get(kind)
        self._faults.append(Fault(kind, path, count, delay, location, size))

    def peek(self, path: str, *, private: bool) -> Fault | None:
        """The fault the next request for ``path`` would get, without using it up."""
        return next((f for f in self._faults if f.matches(path, private=private)), None)

    def consume(self, fault: Fault) -> None:
        """Count one use of ``fault``, forgetting it once used up."""
        fault.remaining -= 1
        if fault.remaining <= 0 and fault in self._faults:
            self._faults.remove(fault)

    def clear(self) -> None:
        """Forget every fault not yet used."""
        self._faults.clear()


# -- what a fault answers ----------------------------------------------------------

# Not an answer: the request executed and the connection hangs until the simulator closes.
HANG: Final = Answer(0, b"", "")

# Faults that answer without executing (REDIRECT and DROP_CONNECTION need the request).
FAILURES: Final[Mapping[FaultKind, Answer]] = {
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
AFTER_EXECUTION: Final[Mapping[FaultKind, Callable[[Answer, Fault], Answer | None]]] = {
    FaultKind.LATENCY: lambda answer, fault: answer,
    FaultKind.CURSOR_CYCLE: lambda answer, fault: answer,  # the listing itself cycles
    FaultKind.MALFORMED_JSON: lambda answer, fault: Answer(
        200, answer.body[: len(answer.body) // 2], ""
    ),
    FaultKind.APPLY_THEN_DROP: lambda answer, fault: None,
    FaultKind.APPLY_THEN_HANG: lambda answer, fault: HANG,
    FaultKind.TIMEOUT_50004: lambda answer, fault: _TIMEOUT_50004,
    FaultKind.EMPTY_DATA: lambda answer, fault: envelope(200, "0"),
    FaultKind.HUGE_BODY: lambda answer, fault: padded(answer, _size(fault)),
    FaultKind.GZIP_BOMB: lambda answer, fault: gzip_bomb(answer, _size(fault)),
    FaultKind.DEEP_JSON: lambda answer, fault: deep_json(DEEP_JSON_DEPTH),
}
