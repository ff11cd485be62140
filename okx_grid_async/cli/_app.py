"""``okx-grid``: the commands, the parser built from them, and one run from argv to exit code.

Each command group is a module exporting ``COMMANDS``; a new group is one more
module and one more entry in `COMMANDS` here.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Final

from . import _closing, _positions, _simulator, _watching
from ._command import Command
from ._environment import secrets_of
from ._exit import InterruptionError
from ._output import Output
from ._parser import ParserError, refused
from ._parser import build_parser as _build_parser

__all__ = ["COMMANDS", "build_parser", "run"]

COMMANDS: Final[tuple[Command, ...]] = (
    *_positions.COMMANDS,
    *_closing.COMMANDS,
    *_watching.COMMANDS,
    *_simulator.COMMANDS,
)


def build_parser() -> argparse.ArgumentParser:
    """The ``okx-grid`` parser, with every command."""
    return _build_parser(COMMANDS)


def run(argv: list[str] | None = None) -> int:
    """Run ``okx-grid`` with ``argv`` (default ``sys.argv[1:]``); returns its exit code.

    ``--help`` and ``--version`` print and return 0. Usage errors print the
    command's usage and return 2, before anything is sent.
    """
    parser = build_parser()
    out = Output(json=False, stdout=sys.stdout, stderr=sys.stderr, secrets=secrets_of(os.environ))
    try:
        args, extras = parser.parse_known_args(argv)
        command: Command = args.command
        problem = refused(command, args) or command.check(args)
        if extras:
            problem = f"unrecognized arguments: {' '.join(extras)}"
        if problem:
            args.command_parser.error(problem)
    except ParserError as exc:
        return out.refuse(exc.parser.format_usage(), str(exc))
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    out = Output(
        json=bool(args.json),
        stdout=sys.stdout,
        stderr=sys.stderr,
        secrets=secrets_of(os.environ, args.redis_url),
    )
    try:
        return command.run(args, out)
    except KeyboardInterrupt:
        return out.fail(InterruptionError("interrupted"))
