"""What to do next after an error: the ``okx-grid: hint: ...`` line.

`hint_for` answers for any error, from one table of error classes; `reconcile_advice`
is the answer after a close or cancel whose outcome is unknown.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from okx_grid_async import (
    AuthenticationError,
    ClosingOrderExistsError,
    DeadlineExceededError,
    GridStateError,
    NoPositionError,
    NotSentError,
    OKXError,
    OutcomeUnknownError,
    WaitTimeoutError,
)
from okx_grid_async._constants import GRID_CANCEL_CLOSE_ORDER_PATH

from ._environment import BASE_URL_VAR, CREDENTIAL_VARS, PROG
from ._exit import CommandError

__all__ = ["hint_for", "reconcile_advice"]

# The first class an error is an instance of gives its hint ({prog}: okx-grid,
# {algo_id}: the grid the command acted on).
_HINTS: Final[Sequence[tuple[type[OKXError], str]]] = (
    (
        GridStateError,  # 51059: typically a close of a running grid
        "only a grid stopped with its position kept (STATE no_close_position) can be "
        "closed: see its STATE with '{prog} positions {algo_id}', and stop a running grid "
        "(keeping its position) in OKX first",
    ),
    (
        ClosingOrderExistsError,  # 51342
        "a limit close order of this grid is waiting: cancel it with '{prog} cancel "
        "{algo_id} ORD_ID' (the order id '{prog} close --sz N --px P' printed), or wait "
        "until it fills",
    ),
    (NoPositionError, "the grid holds no position: there is nothing to close"),  # 51058
    (
        AuthenticationError,
        f"check {', '.join(CREDENTIAL_VARS)}, --base-url or ${BASE_URL_VAR} (US and EEA "
        "accounts have their own host) and --demo-trading (demo keys)",
    ),
    (DeadlineExceededError, "OKX did not answer in time: try again, or give more --timeout"),
    (WaitTimeoutError, "nothing was sent: try again, or give more --wait-timeout (or none)"),
    (NotSentError, "nothing was sent: try again, with more --timeout"),
)


def reconcile_advice(algo_id: str, action: str = "close") -> str:
    """After a ``close`` or ``cancel`` of ``algo_id`` that may have been executed."""
    return (
        f"the {action} may have been executed: run '{PROG} positions {algo_id}' "
        f"and check the position before trying again"
    )


def hint_for(error: OKXError | CommandError, algo_id: str = "ALGO_ID") -> str:
    """The next step after ``error`` ("" when there is nothing to add to its message).

    ``algo_id`` is the grid the command acted on, named in the commands a hint suggests.
    """
    if isinstance(error, CommandError):
        return error.hint
    if isinstance(error, OutcomeUnknownError):
        action = "cancel" if error.request.get("path") == GRID_CANCEL_CLOSE_ORDER_PATH else "close"
        return reconcile_advice(error.algo_id, action)
    for cls, hint in _HINTS:
        if isinstance(error, cls):
            return hint.format(prog=PROG, algo_id=algo_id)
    return ""
