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
==================  ========  ==========================================================

"Executes" means the request takes effect (a close-position closes) exactly
as if it had been answered normally.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["EXECUTING_FAULTS", "Fault", "FaultKind", "FaultPlan"]


class FaultKind(StrEnum):
    """How the simulator misbehaves for an injected fault (see the module docstring)."""

    LATENCY = "latency"
    HTTP_500_HTML = "http_500_html"
    HTTP_503 = "http_503"
    MALFORMED_JSON = "malformed_json"
    DROP_CONNECTION = "drop_connection"
    APPLY_THEN_DROP = "apply_then_drop"
    APPLY_THEN_HANG = "apply_then_hang"
    BUSY_50013 = "busy_50013"
    SYSTEM_ERROR_50026 = "system_error_50026"
    TIMEOUT_50004 = "timeout_50004"
    RATE_LIMIT_50011 = "rate_limit_50011"
    EMPTY_DATA = "empty_data"


# The faults after which the request has taken effect.
EXECUTING_FAULTS = frozenset(
    {
        FaultKind.LATENCY,
        FaultKind.MALFORMED_JSON,
        FaultKind.APPLY_THEN_DROP,
        FaultKind.APPLY_THEN_HANG,
        FaultKind.TIMEOUT_50004,
        FaultKind.EMPTY_DATA,
    }
)


@dataclass(slots=True, eq=False)
class Fault:
    """An injected fault with the number of requests it still applies to."""

    kind: FaultKind
    path: str | None
    remaining: int
    delay: float

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

    def inject(self, kind: FaultKind, path: str | None, count: int, delay: float) -> None:
        """Apply ``kind`` to the next ``count`` requests matching ``path``.

        Raises:
            ValueError: If ``count`` is below 1 or ``delay`` is negative.
        """
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        if delay < 0:
            raise ValueError(f"delay must not be negative, got {delay}")
        self._faults.append(Fault(FaultKind(kind), path, count, delay))

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
