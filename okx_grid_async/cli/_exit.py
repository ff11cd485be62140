"""How a run of ``okx-grid`` ends: its exit codes, and which error ends it with which.

The command line's own failures are `CommandError` and its subclasses: `UsageError`
when nothing was sent, `InterruptionError` for Ctrl-C. The library's are `OKXError`,
mapped to a code by one table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from okx_grid_async import (
    DeadlineExceededError,
    InvalidArgumentError,
    NotSentError,
    OKXError,
    OutcomeUnknownError,
    RateLimiterUnavailableError,
    TransportError,
)

__all__ = [
    "EXIT_API_ERROR",
    "EXIT_CODE_HELP",
    "EXIT_INTERRUPTED",
    "EXIT_NETWORK",
    "EXIT_OK",
    "EXIT_OUTCOME_UNKNOWN",
    "EXIT_SOME_FAILED",
    "EXIT_USAGE",
    "CommandError",
    "InterruptionError",
    "UsageError",
    "exit_code_for",
]

EXIT_OK: Final = 0
EXIT_SOME_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_API_ERROR: Final = 3
EXIT_OUTCOME_UNKNOWN: Final = 4
EXIT_NETWORK: Final = 5
# Ctrl-C, as shells report a process ended by SIGINT.
EXIT_INTERRUPTED: Final = 130

# What ``okx-grid --help`` lists; docs/cli.md's table is checked against it.
EXIT_CODE_HELP: Final = (
    (EXIT_OK, "success"),
    (EXIT_SOME_FAILED, "sweep: finished, but some grids failed (their rows show the error)"),
    (EXIT_USAGE, "usage: bad arguments or missing credentials; nothing was sent"),
    (EXIT_API_ERROR, "OKX answered with an error (unknown grid, no position, authentication...)"),
    (EXIT_OUTCOME_UNKNOWN, "outcome unknown: the close may have been executed; read the grid"),
    (
        EXIT_NETWORK,
        "network failure, the deadline (--timeout) or the wait for the rate limiter "
        "(--wait-timeout) ran out, or Redis unreachable",
    ),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C); a close interrupted in flight exits 4"),
)


class CommandError(Exception):
    """A failure of the command line itself, with its exit code and what to do next.

    Attributes:
        exit_code: the code the run ends with.
        hint: the next step for the person at the terminal ("" if none).
        algo_id: the grid concerned, if one is.
    """

    exit_code: int = EXIT_API_ERROR

    def __init__(
        self,
        message: str,
        *,
        exit_code: int | None = None,
        hint: str = "",
        algo_id: str | None = None,
    ) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
        self.hint = hint
        self.algo_id = algo_id


class UsageError(CommandError):
    """The run cannot start (missing credentials, a missing extra, ...); nothing was sent."""

    exit_code = EXIT_USAGE


class InterruptionError(CommandError):
    """Ctrl-C. While a close or cancel was in flight it may have been executed: exit 4."""

    exit_code = EXIT_INTERRUPTED


# The first class an error is an instance of decides the exit code. InvalidArgumentError
# is an OKXError too, so it comes first.
_EXIT_FOR_ERROR: Final[Sequence[tuple[type[OKXError], int]]] = (
    (InvalidArgumentError, EXIT_USAGE),
    (OutcomeUnknownError, EXIT_OUTCOME_UNKNOWN),
    (TransportError, EXIT_NETWORK),
    (RateLimiterUnavailableError, EXIT_NETWORK),
    (DeadlineExceededError, EXIT_NETWORK),
    (NotSentError, EXIT_NETWORK),
    (OKXError, EXIT_API_ERROR),
)


def exit_code_for(error: OKXError | CommandError) -> int:
    """The exit code of a run that ended with ``error``."""
    if isinstance(error, CommandError):
        return error.exit_code
    return next(code for cls, code in _EXIT_FOR_ERROR if isinstance(error, cls))
