"""A subcommand as data: its name, help texts, arguments, and the function that runs it.

Each command module exports a tuple of `Command` and nothing else that the
parser needs; ``okx-grid`` is the parser built from all of them (`_app`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from ._output import Output

__all__ = ["Command"]


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    """A command without arguments of its own."""


def _no_problem(args: argparse.Namespace) -> str | None:
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """One subcommand of ``okx-grid``.

    Attributes:
        name: what is typed (``okx-grid NAME``).
        summary: its line in ``okx-grid --help``.
        description: the text of ``okx-grid NAME --help``, as written.
        examples: the ``examples:`` block closing its help.
        run: runs it; returns the exit code.
        arguments: adds its own arguments and options to its parser.
        check: a problem with the parsed arguments argparse cannot see (None if
            none), found before anything is sent: a usage error.
        connects: takes the connection options (``--base-url``, ...); refused if not.
        json: takes ``--json``; refused if not.
    """

    name: str
    summary: str
    description: str
    examples: str
    run: Callable[[argparse.Namespace, Output], int]
    arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments
    check: Callable[[argparse.Namespace], str | None] = _no_problem
    connects: bool = True
    json: bool = True
