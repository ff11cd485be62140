"""The ``okx-grid`` argument parser, built from the commands: options, help and usage errors.

The options shared by the commands (``--json`` and the connection options) are
accepted before the command and after it. After it they default to SUPPRESS, so
that leaving them out there keeps what was given before it. A command that does
not take them still parses them after its name, hidden, so that giving them is
reported against that command's usage (`refused`).

argparse rather than click: options before and after the command, and usage
errors under the command's own usage, are argparse's already; docs/cli.md shows
its help texts verbatim; and its one error hook (`_Parser.error`) lets every
usage error be redacted like the rest of the output. click would add a
dependency, and an exit and error handling of its own to route through that.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Final, NoReturn

from okx_grid_async import EEA_URL, GLOBAL_URL, US_URL, __version__
from okx_grid_async._constants import DEFAULT_TIMEOUT

from ._arguments import SECONDS
from ._command import Command
from ._environment import BASE_URL_VAR, PROG, REDIS_URL_VAR
from ._exit import EXIT_CODE_HELP

__all__ = ["ParserError", "build_parser", "refused"]

# (namespace attribute, flag) of the options that only the commands calling OKX use.
_CONNECTION_OPTIONS: Final = (
    ("base_url", "--base-url"),
    ("demo_trading", "--demo-trading"),
    ("user_id", "--user-id"),
    ("timeout", "--timeout"),
    ("wait_timeout", "--wait-timeout"),
    ("redis_url", "--redis-url"),
    ("metrics", "--metrics"),
)

_DESCRIPTION: Final = f"""\
Read and close the positions of OKX contract grids.

A grid stopped with "keep position" (state no_close_position) still holds its
contracts; {PROG} reads those positions, closes them at market or with a limit
order, and sweeps many grids at once. Requests are paced below OKX's limit of
20 per 2 s per endpoint, so OKX never rejects one for rate.

Credentials come from the environment, never from the command line:
  export OKX_API_KEY=... OKX_SECRET_KEY=... OKX_PASSPHRASE=...

No OKX account at hand? '{PROG} demo' runs everything against a built-in
simulator in a few seconds, and '{PROG} simulate' serves one to try commands on."""

_EPILOG: Final = f"""\
examples:
  {PROG} sweep --pending                      # every grid of the account, a row each
  {PROG} positions 581234567890123456         # one grid's position
  {PROG} close 581234567890123456 --market    # close it all at market
  {PROG} close 581234567890123456 --sz 2.5 --px 65000.1   # a limit close order
  {PROG} --base-url http://127.0.0.1:8000 sweep --pending --json

Run '{PROG} COMMAND --help' for a command's options and examples.

exit codes:
""" + "\n".join(f"  {code:>3}  {text}" for code, text in EXIT_CODE_HELP)


class ParserError(Exception):
    """A usage error the parser found, with the parser whose usage goes with it."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser


class _Parser(argparse.ArgumentParser):
    """argparse raising `ParserError` instead of printing and exiting: the caller
    reports it, redacted."""

    def error(self, message: str) -> NoReturn:
        raise ParserError(self, message)


def _add_connection_options(
    parser: argparse.ArgumentParser, default: object, *, shown: bool
) -> None:
    def help_text(text: str) -> str:
        return text if shown else argparse.SUPPRESS

    group = parser.add_argument_group("connection options (positions, close, cancel, sweep, watch)")
    group.add_argument(
        "--base-url",
        metavar="URL",
        default=default,
        help=help_text(
            f"OKX host: {GLOBAL_URL}, {US_URL} (US accounts), {EEA_URL} (EEA accounts), "
            f"or the URL '{PROG} simulate' prints (default: ${BASE_URL_VAR}, else {GLOBAL_URL})"
        ),
    )
    group.add_argument(
        "--demo-trading",
        action="store_true",
        default=default,
        help=help_text(
            "use OKX demo trading (sends x-simulated-trading: 1); needs a demo-trading key"
        ),
    )
    group.add_argument(
        "--user-id",
        metavar="UID",
        default=default,
        help=help_text(
            "your OKX User ID, whose rate budget the key spends (default: read once from "
            "GET /api/v5/account/config; giving it saves that request)"
        ),
    )
    group.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=SECONDS,
        default=default,
        help=help_text(
            "deadline of each request's exchange in seconds, retries included; waiting "
            f"for the rate limiter is not counted (default: {DEFAULT_TIMEOUT:g})"
        ),
    )
    group.add_argument(
        "--wait-timeout",
        metavar="SECONDS",
        type=SECONDS,
        default=default,
        help=help_text(
            "give up a request that waited this long for the rate limiter, sending nothing "
            "(default: wait as long as the queue takes)"
        ),
    )
    group.add_argument(
        "--redis-url",
        metavar="URL",
        default=default,
        help=help_text(
            "share the user's rate budget with other processes and hosts through this "
            "Redis (redis://[:password@]host:port/db; needs okx-grid-async[redis]); default: "
            f"${REDIS_URL_VAR}, which keeps a password out of the process list, else none "
            "(this process only)"
        ),
    )
    group.add_argument(
        "--metrics",
        action="store_true",
        default=default,
        help=help_text(
            "print the run's metrics on stderr at exit (OpenTelemetry's, through the SDK's "
            "in-memory reader, when opentelemetry-sdk is installed; else the rate limiter's)"
        ),
    )


def _add_json_option(parser: argparse.ArgumentParser, default: object, *, shown: bool) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        default=default,
        help="print one JSON document on stdout (numbers as strings, times ISO 8601)"
        if shown
        else argparse.SUPPRESS,
    )


def build_parser(commands: Sequence[Command]) -> argparse.ArgumentParser:
    """The ``okx-grid`` parser. A command's namespace has ``command`` (its `Command`) and
    ``command_parser`` (its parser, for its usage)."""
    parser = _Parser(
        prog=PROG,
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_json_option(parser, None, shown=True)
    _add_connection_options(parser, None, shown=True)
    subparsers = parser.add_subparsers(
        title="commands", dest="subcommand", metavar="COMMAND", required=True
    )
    for command in commands:
        sub = subparsers.add_parser(
            command.name,
            help=command.summary,
            description=command.description,
            epilog=command.examples,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_json_option(sub, argparse.SUPPRESS, shown=command.json)
        _add_connection_options(sub, argparse.SUPPRESS, shown=command.connects)
        command.arguments(sub)
        sub.set_defaults(command=command, command_parser=sub)
    return parser


def refused(command: Command, args: argparse.Namespace) -> str | None:
    """The options given that ``command`` does not take, as a usage error (None if none)."""
    options = [] if command.connects else list(_CONNECTION_OPTIONS)
    if not command.json:
        options.append(("json", "--json"))
    given = [flag for dest, flag in options if getattr(args, dest, None) is not None]
    return f"{', '.join(given)}: not used by '{command.name}'" if given else None
