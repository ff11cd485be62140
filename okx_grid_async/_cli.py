"""The ``okx-grid`` command line: read grid positions, close them, sweep many, try the simulator.

Each subcommand is a `_Command`: its parser, an optional check of the
parsed arguments (run before anything is sent) and the function that runs it.
Output goes through `Output`: a table or one JSON document on stdout,
``okx-grid: error: ...`` lines on stderr, and never the secret key or the
passphrase, which are redacted from everything written.

Exit codes (the ``EXIT_*`` constants, also listed by ``okx-grid --help``)::

    0  success
    1  a sweep finished, but some grids failed (each failed row shows its error)
    2  usage: bad arguments or missing credentials; nothing was sent
    3  OKX answered with an error (unknown grid, no position, authentication, ...)
    4  outcome unknown: a close may have been executed; read the grid before acting again
    5  network failure or deadline exceeded
  130  interrupted (Ctrl-C); a close interrupted in flight exits 4
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Collection,
    Coroutine,
    Sequence,
)
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, NoReturn, TextIO, TypeVar

import msgspec

from ._client import GridClient
from ._constants import DEFAULT_TIMEOUT, EEA_URL, GLOBAL_URL, GRID_CANCEL_CLOSE_ORDER_PATH, US_URL
from ._credentials import Credentials
from ._errors import (
    AuthenticationError,
    DeadlineExceededError,
    InvalidArgumentError,
    NotSentError,
    OKXAPIError,
    OKXError,
    OutcomeUnknownError,
    RateLimiterUnavailableError,
    TransportError,
    WaitTimeoutError,
)
from ._metrics_report import MetricsReport
from ._models import GridOrder
from ._redis_limiter import RedisRateLimiter
from ._sweep import SweepResult
from ._validation import check_id, check_positive_decimal
from ._version import __version__

__all__ = [
    "EXIT_API_ERROR",
    "EXIT_NETWORK",
    "EXIT_OK",
    "EXIT_OUTCOME_UNKNOWN",
    "EXIT_SOME_FAILED",
    "EXIT_USAGE",
    "Output",
    "Progress",
    "build_parser",
    "exit_code_for",
    "format_decimal",
    "main",
    "render_table",
    "sweep_with_progress",
]

PROG: Final = "okx-grid"

T = TypeVar("T")

EXIT_OK: Final = 0
EXIT_SOME_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_API_ERROR: Final = 3
EXIT_OUTCOME_UNKNOWN: Final = 4
EXIT_NETWORK: Final = 5
# Ctrl-C, as shells report a process ended by SIGINT.
EXIT_INTERRUPTED: Final = 130

_EXIT_CODE_HELP: Final = (
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

_CREDENTIAL_VARS: Final = ("OKX_API_KEY", "OKX_SECRET_KEY", "OKX_PASSPHRASE")
# --redis-url's default: a URL given in the environment keeps its password out of `ps`.
_REDIS_URL_VAR: Final = "OKX_GRID_REDIS_URL"
# Values of these variables are replaced by "***" in everything okx-grid writes.
_SECRET_VARS: Final = ("OKX_SECRET_KEY", "OKX_PASSPHRASE")
# Shorter values would blank out ordinary text; no real secret or passphrase is this short.
_MIN_REDACTED: Final = 4
_REDACTED: Final = "***"

_DEFAULT_CONCURRENCY: Final = 20
_BAR_WIDTH: Final = 30

# (namespace attribute, flag) of the options that only the commands calling OKX use.
_CONNECTION_OPTIONS: Final = (
    ("base_url", "--base-url"),
    ("demo_trading", "--demo-trading"),
    ("user_id", "--user-id"),
    ("timeout", "--timeout"),
    ("wait_timeout", "--wait-timeout"),
    ("redis_url", "--redis-url"),
)
_JSON_OPTION: Final = (("json", "--json"),)


def exit_code_for(error: OKXError) -> int:
    """The exit code of a command that failed with ``error``."""
    return next(code for cls, code in _EXIT_FOR_ERROR if isinstance(error, cls))


def _redact(text: str) -> str:
    """``text`` with the environment's secret key and passphrase replaced by ``***``."""
    for name in _SECRET_VARS:
        value = os.environ.get(name, "")
        if len(value) >= _MIN_REDACTED:
            text = text.replace(value, _REDACTED)
    return text


def format_decimal(value: Decimal | None) -> str:
    """A number for a table: plain notation (never ``1E+2``), empty for ``None``."""
    return "" if value is None else format(value, "f")


def render_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], *, right: Collection[int] = ()
) -> str:
    """Rows as aligned columns under ``header``; the columns numbered in ``right`` are numbers."""
    widths = [max([len(title), *(len(row[i]) for row in rows)]) for i, title in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(header), *(line(row) for row in rows)])


# ---------------------------------------------------------------- output


def _error_info(error: BaseException) -> dict[str, object]:
    """An error as JSON: its class, message, and OKX's code or the request in doubt."""
    info: dict[str, object] = {"type": type(error).__name__, "message": str(error)}
    if isinstance(error, OKXAPIError):
        info["code"] = error.code
        info["http_status"] = error.http_status
    if isinstance(error, OutcomeUnknownError):
        info["algo_id"] = error.algo_id
        info["request"] = error.request
        info["advice"] = _reconcile_advice(error.algo_id)
    return info


def _enc_hook(value: object) -> object:
    if isinstance(value, BaseException):
        return _error_info(value)
    raise NotImplementedError(f"cannot encode {type(value).__name__}")


_ENCODER: Final = msgspec.json.Encoder(enc_hook=_enc_hook)


def _reconcile_advice(algo_id: str, action: str = "close") -> str:
    return (
        f"the {action} may have been executed: run '{PROG} positions {algo_id}' "
        f"and check the position before trying again"
    )


def _hint(error: OKXError) -> str:
    if isinstance(error, OutcomeUnknownError):
        action = "cancel" if error.request.get("path") == GRID_CANCEL_CLOSE_ORDER_PATH else "close"
        return _reconcile_advice(error.algo_id, action)
    if isinstance(error, AuthenticationError):
        return (
            "check OKX_API_KEY, OKX_SECRET_KEY and OKX_PASSPHRASE, --base-url "
            "(US and EEA accounts have their own host) and --demo-trading (demo keys)"
        )
    if isinstance(error, DeadlineExceededError):
        return "OKX did not answer in time: try again, or give more --timeout"
    if isinstance(error, WaitTimeoutError):
        return "nothing was sent: try again, or give more --wait-timeout (or none)"
    if isinstance(error, NotSentError):
        return "nothing was sent: try again, with more --timeout"
    return ""


class Output:
    """Where a command's results and errors go.

    Results: a table on stdout, or with ``--json`` one JSON document (Decimals as
    strings, times ISO 8601). Errors: ``okx-grid: error: ...`` on stderr (and, with
    ``--json``, ``{"error": {...}}`` on stdout). Everything written is redacted.
    """

    __slots__ = ("json", "stderr", "stdout")

    def __init__(self, *, json: bool, stdout: TextIO, stderr: TextIO) -> None:
        self.json = json
        self.stdout = stdout
        self.stderr = stderr

    def result(self, value: object, render: Callable[[], str]) -> None:
        """``value`` as JSON with ``--json``, else the text ``render`` makes."""
        self._write(self.stdout, _ENCODER.encode(value).decode() if self.json else render())

    def note(self, text: str) -> None:
        """A line for the person at the terminal (stderr): not part of the result."""
        self._write(self.stderr, f"{PROG}: {text}")

    def fail(
        self, code: int, message: str, *, hint: str = "", info: dict[str, object] | None = None
    ) -> int:
        """Report a failure; returns ``code``."""
        self._write(self.stderr, f"{PROG}: error: {message}")
        if hint:
            self._write(self.stderr, f"{PROG}: hint: {hint}")
        if self.json:
            document = _ENCODER.encode({"error": info or {"message": message}})
            self._write(self.stdout, document.decode())
        return code

    def fail_with(self, error: OKXError) -> int:
        """Report ``error``; returns its exit code."""
        return self.fail(
            exit_code_for(error), str(error), hint=_hint(error), info=_error_info(error)
        )

    @staticmethod
    def _write(stream: TextIO, text: str) -> None:
        stream.write(_redact(text) + "\n")
        stream.flush()


class Progress:
    """A sweep's progress, ``\\r[#####.....] 12/50``, drawn only when the stream is a terminal.

    While the ids are still being discovered the total is what was found so far,
    marked ``+``.
    """

    __slots__ = ("_complete", "_done", "_drawn", "_stream", "_total")

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream if stream.isatty() else None
        self._done = 0
        self._total = 0
        self._complete = True
        self._drawn = False

    def expect(self, total: int, *, complete: bool = True) -> None:
        """``total`` ids are known; ``complete`` False when more may come."""
        self._total = total
        self._complete = complete
        self._draw()

    def advance(self) -> None:
        """One more id is done."""
        self._done += 1
        self._draw()

    def close(self) -> None:
        """End the bar's line (if one was drawn)."""
        if self._stream is not None and self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False

    def _draw(self) -> None:
        if self._stream is None:
            return
        total = max(self._total, self._done)
        filled = _BAR_WIDTH * self._done // total if total else 0
        more = "" if self._complete else "+"
        bar = "#" * filled + "." * (_BAR_WIDTH - filled)
        self._stream.write(f"\r[{bar}] {self._done}/{total}{more}")
        self._stream.flush()
        self._drawn = True


async def sweep_with_progress(
    client: GridClient,
    ids: Sequence[str] | AsyncGenerator[GridOrder, None],
    *,
    concurrency: int,
    progress: Progress,
) -> list[SweepResult]:
    """Every grid's `SweepResult`, in the order ``ids`` gave them.

    ``ids`` is a list, or ``client.iter_grids()``, whose grids are counted as they
    are discovered. The requests run concurrently through the client's rate limiter.
    """
    order: dict[str, int] = {}
    source = ids
    if isinstance(ids, Sequence):
        order.update((algo_id, i) for i, algo_id in enumerate(ids))
        progress.expect(len(ids))
    else:
        source = _discover(ids, order, progress)
    results: list[SweepResult] = []
    try:
        sweep = client.sweep_positions(source, concurrency=concurrency)
        async with contextlib.aclosing(sweep):
            async for result in sweep:
                results.append(result)
                progress.advance()
    finally:
        progress.close()
    results.sort(key=lambda r: order.get(r.algo_id, len(order)))
    return results


async def _discover(
    grids: AsyncGenerator[GridOrder, None], order: dict[str, int], progress: Progress
) -> AsyncGenerator[GridOrder, None]:
    async with contextlib.aclosing(grids):
        async for grid in grids:
            order.setdefault(grid.algo_id, len(order))
            progress.expect(len(order), complete=False)
            yield grid
    progress.expect(len(order))


# ---------------------------------------------------------------- argument types


def _argument_type(name: str, convert: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse ``type`` from a validator: its message becomes argparse's usage error."""

    def parse(text: str) -> T:
        try:
            return convert(text)
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = name
    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < float("inf"):
        raise ValueError(f"must be > 0 seconds, not {text!r}")
    return value


def _whole(text: str, minimum: int, maximum: int, what: str) -> int:
    if not text.isdigit() or not minimum <= int(text) <= maximum:
        raise ValueError(f"{what}, not {text!r}")
    return int(text)


_ALGO_ID: Final = _argument_type("algo_id", lambda text: check_id(text, "an algo id"))
_ORD_ID: Final = _argument_type("ord_id", lambda text: check_id(text, "an order id"))
_SZ: Final = _argument_type("sz", lambda text: check_positive_decimal(text, "the size"))
_PX: Final = _argument_type("px", lambda text: check_positive_decimal(text, "the price"))
_SECONDS: Final = _argument_type("seconds", _seconds)
_CONCURRENCY: Final = _argument_type(
    "concurrency", lambda text: _whole(text, 1, 10_000, "must be a whole number 1..10000")
)
_PORT: Final = _argument_type(
    "port", lambda text: _whole(text, 0, 65_535, "a port is 0..65535 (0: any free one)")
)
_GRIDS: Final = _argument_type(
    "grids", lambda text: _whole(text, 0, 100_000, "must be a whole number 0..100000")
)


# ---------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class _Command:
    """A subcommand: its parser, a check of its arguments, and what runs it."""

    parser: argparse.ArgumentParser
    run: Callable[[argparse.Namespace, Output], int]
    check: Callable[[argparse.Namespace], str | None] = lambda args: None


def _run(out: Output, work: Coroutine[Any, Any, int]) -> int:
    """Run ``work`` in a new event loop; an OKXError becomes its message and exit code."""
    try:
        return asyncio.run(work)
    except OKXError as exc:
        return out.fail_with(exc)


def _with_client(
    args: argparse.Namespace, out: Output, work: Callable[[GridClient], Awaitable[int]]
) -> int:
    """Open a GridClient from the environment's credentials and the options; run ``work``."""
    try:
        credentials = Credentials.from_env()
    except ValueError as exc:
        return out.fail(
            EXIT_USAGE,
            f"{exc}; the API key is read from {', '.join(_CREDENTIAL_VARS)} "
            f"('{PROG} simulate' prints demo ones)",
        )
    try:
        # A Redis limiter shares the user's budget with other processes and hosts;
        # without one, only with this process (the default limiter).
        redis_url = args.redis_url or os.environ.get(_REDIS_URL_VAR)
        limiter = RedisRateLimiter(redis_url) if redis_url else None
        report = MetricsReport() if args.metrics else None
        client = GridClient(
            credentials,
            base_url=args.base_url or GLOBAL_URL,
            demo=bool(args.demo_trading),
            user_id=args.user_id,
            timeout=args.timeout or DEFAULT_TIMEOUT,
            wait_timeout=args.wait_timeout,
            rate_limiter=limiter,
            meter_provider=None if report is None else report.meter_provider,
        )
    except (ImportError, TypeError, ValueError) as exc:
        return out.fail(EXIT_USAGE, str(exc))

    async def session() -> int:
        try:
            async with client:
                return await work(client)
        finally:
            if report is not None:
                out.note(report.render(client))
            if limiter is not None:
                await limiter.aclose()

    return _run(out, session())


def _unique(algo_ids: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(algo_ids))


_POSITION_HEADER: Final = ("ALGO_ID", "INST_ID", "POS", "AVG_PX", "MARK_PX", "UPL", "NOTE")
_POSITION_NUMBERS: Final = frozenset({2, 3, 4, 5})


def _render_positions(results: Sequence[SweepResult]) -> str:
    rows: list[tuple[str, ...]] = []
    for result in results:
        if result.error is not None:
            rows.append((result.algo_id, "", "", "", "", "", f"error: {result.error}"))
        elif not result.positions:
            rows.append((result.algo_id, "", "", "", "", "", "empty"))
        else:
            rows.extend(
                (
                    result.algo_id,
                    p.inst_id,
                    format_decimal(p.pos),
                    format_decimal(p.avg_px),
                    format_decimal(p.mark_px),
                    format_decimal(p.upl),
                    "empty" if p.is_empty else "",
                )
                for p in result.positions
            )
    return render_table(_POSITION_HEADER, rows, right=_POSITION_NUMBERS)


class _SweepSummary(msgspec.Struct, kw_only=True):
    grids: list[SweepResult]
    with_position: int
    empty: int
    failed: int


def _summarize(results: list[SweepResult]) -> _SweepSummary:
    failed = sum(r.error is not None for r in results)
    empty = sum(r.is_empty for r in results)
    return _SweepSummary(
        grids=results, with_position=len(results) - failed - empty, empty=empty, failed=failed
    )


def _run_positions(args: argparse.Namespace, out: Output) -> int:
    async def work(client: GridClient) -> int:
        results = [
            SweepResult(algo_id, await client.get_positions(algo_id), None)
            for algo_id in _unique(args.algo_ids)
        ]
        out.result({"grids": results}, lambda: _render_positions(results))
        return EXIT_OK

    return _with_client(args, out, work)


def _check_close(args: argparse.Namespace) -> str | None:
    if args.sz is not None and args.px is None:
        return "--sz needs --px, the limit price of the close order"
    if args.px is not None and args.sz is None:
        return "--px goes with --sz (a partial close); --market closes everything at market"
    return None


def _run_close(args: argparse.Namespace, out: Output) -> int:
    algo_id: str = args.algo_id

    async def work(client: GridClient) -> int:
        if args.market:
            result = await client.close_position(algo_id, mkt_close=True)
            text = f"grid {algo_id}: position closed at market"
        else:
            result = await client.close_position(algo_id, mkt_close=False, sz=args.sz, px=args.px)
            text = (
                f"grid {algo_id}: limit close order {result.ord_id} placed for "
                f"{format_decimal(args.sz)} contracts at {format_decimal(args.px)}"
            )
        out.result(result, lambda: text)
        return EXIT_OK

    return _interruptible(args, out, work, algo_id, "close")


def _interruptible(
    args: argparse.Namespace,
    out: Output,
    work: Callable[[GridClient], Awaitable[int]],
    algo_id: str,
    action: str,
) -> int:
    """Run a POST command; Ctrl-C is an unknown outcome, since the request may have left."""
    try:
        return _with_client(args, out, work)
    except KeyboardInterrupt:
        return out.fail(
            EXIT_OUTCOME_UNKNOWN,
            f"interrupted during the {action} of grid {algo_id}",
            hint=_reconcile_advice(algo_id, action),
        )


def _run_cancel(args: argparse.Namespace, out: Output) -> int:
    algo_id: str = args.algo_id
    ord_id: str = args.ord_id

    async def work(client: GridClient) -> int:
        result = await client.cancel_close_order(algo_id, ord_id)
        out.result(result, lambda: f"grid {algo_id}: close order {ord_id} cancelled")
        return EXIT_OK

    return _interruptible(args, out, work, algo_id, "cancel")


def _check_sweep(args: argparse.Namespace) -> str | None:
    if args.pending and args.algo_ids:
        return "give ALGO_IDs or --pending, not both"
    if not args.pending and not args.algo_ids:
        return "give the ALGO_IDs to read, or --pending for every grid of the account"
    return None


def _run_sweep(args: argparse.Namespace, out: Output) -> int:
    async def work(client: GridClient) -> int:
        ids = client.iter_grids() if args.pending else _unique(args.algo_ids)
        results = await sweep_with_progress(
            client, ids, concurrency=args.concurrency, progress=Progress(sys.stderr)
        )
        summary = _summarize(results)
        out.result(summary, lambda: _render_sweep(summary))
        return EXIT_SOME_FAILED if summary.failed else EXIT_OK

    return _with_client(args, out, work)


def _render_sweep(summary: _SweepSummary) -> str:
    if not summary.grids:
        return "no grids found"
    return (
        f"{_render_positions(summary.grids)}\n\n{len(summary.grids)} grids: "
        f"{summary.with_position} with a position, {summary.empty} empty, "
        f"{summary.failed} failed"
    )


def _refuse(
    command: str, options: Sequence[tuple[str, str]]
) -> Callable[[argparse.Namespace], str | None]:
    """A check refusing ``options`` given before ``command``, which does not use them."""

    def check(args: argparse.Namespace) -> str | None:
        given = [flag for dest, flag in options if getattr(args, dest) is not None]
        return f"{', '.join(given)}: not used by '{command}'" if given else None

    return check


def _run_simulate(args: argparse.Namespace, out: Output) -> int:
    # The simulator (aiohttp.web) is imported only by the commands that run it.
    from .simulator import serve_forever

    out.note("starting the simulator; Ctrl-C stops it")
    try:
        asyncio.run(serve_forever(args.port, args.grids))
    except KeyboardInterrupt:
        out.note("simulator stopped")
    except OSError as exc:
        return out.fail(EXIT_NETWORK, f"cannot serve on 127.0.0.1:{args.port}: {exc}")
    return EXIT_OK


def _run_demo(args: argparse.Namespace, out: Output) -> int:
    from ._demo import render_demo, run_demo

    async def work() -> int:
        summary = await run_demo(Progress(sys.stderr))
        out.result(summary, lambda: render_demo(summary))
        if summary.rejections:
            return out.fail(
                EXIT_API_ERROR,
                f"the simulator answered 50011 (rate limit) {summary.rejections} times",
            )
        return EXIT_OK

    return _run(out, work())


# ---------------------------------------------------------------- the parser


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


def _exit_code_epilog() -> str:
    return "exit codes:\n" + "\n".join(f"  {code:>3}  {text}" for code, text in _EXIT_CODE_HELP)


_EPILOG: Final = f"""\
examples:
  {PROG} sweep --pending                      # every grid of the account, a row each
  {PROG} positions 581234567890123456         # one grid's position
  {PROG} close 581234567890123456 --market    # close it all at market
  {PROG} close 581234567890123456 --sz 2.5 --px 65000.1   # a limit close order
  {PROG} --base-url http://127.0.0.1:8000 sweep --pending --json

Run '{PROG} COMMAND --help' for a command's options and examples.

{_exit_code_epilog()}"""

_COMMANDS: Final = {
    "positions": (
        "show the positions of some grids",
        """\
Show the position of each grid: instrument, contracts (pos, negative for a
short), average and mark price, unrealised profit and loss (upl).
Stops at the first grid that fails; use 'sweep' to read many and go on past
failures.""",
        f"""\
examples:
  {PROG} positions 581234567890123456
  {PROG} positions 581234567890123456 581234567890123999 --json
  {PROG} --base-url {US_URL} positions 581234567890123456""",
    ),
    "close": (
        "close a grid's position, at market or with a limit order",
        """\
Close the position a grid kept when it was stopped ("keep position").

  --market            closes everything at the mark price;
  --sz N --px P       places a limit order closing N contracts at price P,
                      and prints its ordId; the order waits until the price
                      is reached.

Sizes and prices are read as exact decimals ("2.5" stays 2.5). A close is never
sent twice: if the network fails after it left, the outcome is unknown (exit 4)
and you should read the grid with 'positions' before trying again.""",
        f"""\
examples:
  {PROG} close 581234567890123456 --market
  {PROG} close 581234567890123456 --sz 2.5 --px 65000.1
  {PROG} close 581234567890123456 --market --json""",
    ),
    "cancel": (
        "cancel the limit close order a partial close placed",
        f"""\
Cancel the limit order that '{PROG} close ALGO_ID --sz N --px P' placed, using
the order id it printed. Until it is cancelled or filled, OKX refuses another
close of the same grid (51342).""",
        f"""\
examples:
  {PROG} cancel 581234567890123456 581234567890124000
  {PROG} cancel 581234567890123456 581234567890124000 --json""",
    ),
    "sweep": (
        "read many grids' positions concurrently",
        """\
Read the positions of many grids at once, one row per grid: its position, or
that it is empty, or the error it got. A grid that fails does not stop the
sweep; the exit code is then 1. With --pending, the grids are those OKX lists
as pending: running, or stopped with their position kept.

A progress bar is drawn on stderr when it is a terminal.""",
        f"""\
examples:
  {PROG} sweep --pending
  {PROG} sweep --pending --json > positions.json
  {PROG} sweep 581234567890123456 581234567890123999""",
    ),
    "simulate": (
        "serve an OKX look-alike simulator to try the commands on",
        """\
Serve a simulator of OKX's grid endpoints on 127.0.0.1, with one demo account
and its grids, until Ctrl-C. It prints its URL and the demo account's (fake)
credentials: export them and point --base-url at the URL.""",
        f"""\
examples:
  {PROG} simulate --port 8000 --grids 50
  # then, in another shell, with the credentials it printed exported:
  {PROG} --base-url http://127.0.0.1:8000 sweep --pending""",
    ),
    "demo": (
        "a five-second tour against a built-in simulator",
        """\
Start a simulator in this process with about 50 grids, discover them, sweep
every position concurrently through the rate limiter, close a few (3 at
market, 2 with limit orders), and show what was done with the rate limiter's
figures per endpoint: requests, time spent waiting, and how many the simulator
rejected for rate (50011), which is 0. Needs no credentials or network.""",
        f"""\
examples:
  {PROG} demo
  {PROG} demo --json""",
    ),
}


class _Parser(argparse.ArgumentParser):
    """argparse with ``okx-grid: error: ...`` errors, redacted."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{PROG}: error: {_redact(message)}\n")


def _add_connection_options(parser: argparse.ArgumentParser, default: object) -> None:
    group = parser.add_argument_group("connection options (positions, close, cancel, sweep)")
    group.add_argument(
        "--base-url",
        metavar="URL",
        default=default,
        help=f"OKX host: {GLOBAL_URL} (default), {US_URL} (US accounts), "
        f"{EEA_URL} (EEA accounts), or the URL '{PROG} simulate' prints",
    )
    group.add_argument(
        "--demo-trading",
        action="store_true",
        default=default,
        help="use OKX demo trading (sends x-simulated-trading: 1); needs a demo-trading key",
    )
    group.add_argument(
        "--user-id",
        metavar="UID",
        default=default,
        help="your OKX User ID, whose rate budget the key spends (default: read once from "
        "GET /api/v5/account/config; giving it saves that request)",
    )
    group.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_SECONDS,
        default=default,
        help=f"deadline of each request's exchange in seconds, retries included; waiting "
        f"for the rate limiter is not counted (default: {DEFAULT_TIMEOUT:g})",
    )
    group.add_argument(
        "--wait-timeout",
        metavar="SECONDS",
        type=_SECONDS,
        default=default,
        help="give up a request that waited this long for the rate limiter, sending nothing "
        "(default: wait as long as the queue takes)",
    )
    group.add_argument(
        "--redis-url",
        metavar="URL",
        default=default,
        help="share the user's rate budget with other processes and hosts through this "
        "Redis (redis://[:password@]host:port/db; needs okx-grid-async[redis]); default: "
        f"${_REDIS_URL_VAR}, which keeps a password out of the process list, else none "
        "(this process only)",
    )
    group.add_argument(
        "--metrics",
        action="store_true",
        default=default,
        help="print the run's metrics on stderr at exit (OpenTelemetry's, through the SDK's "
        "in-memory reader, when opentelemetry-sdk is installed; else the rate limiter's)",
    )


def _add_json_option(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        default=default,
        help="print one JSON document on stdout (numbers as strings, times ISO 8601)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``okx-grid`` parser. Each subcommand's namespace has ``command``: a ``_Command``."""
    parser = _Parser(
        prog=PROG,
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    # Options are accepted before the command and after it. After it they default
    # to SUPPRESS, so that leaving them out there keeps what was given before it.
    _add_json_option(parser, None)
    _add_connection_options(parser, None)
    commands = parser.add_subparsers(
        title="commands", dest="subcommand", metavar="COMMAND", required=True
    )

    def add(name: str, *, connection: bool, json: bool) -> argparse.ArgumentParser:
        summary, description, epilog = _COMMANDS[name]
        sub = commands.add_parser(
            name,
            help=summary,
            description=description,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if json:
            _add_json_option(sub, argparse.SUPPRESS)
        if connection:
            _add_connection_options(sub, argparse.SUPPRESS)
        return sub

    sub = add("positions", connection=True, json=True)
    sub.add_argument(
        "algo_ids", nargs="+", type=_ALGO_ID, metavar="ALGO_ID", help="grid (algo order) ids"
    )
    sub.set_defaults(command=_Command(sub, _run_positions))

    sub = add("close", connection=True, json=True)
    sub.add_argument("algo_id", type=_ALGO_ID, metavar="ALGO_ID", help="the grid to close")
    mode = sub.add_mutually_exclusive_group(required=True)
    mode.add_argument("--market", action="store_true", help="close the whole position at market")
    mode.add_argument(
        "--sz", type=_SZ, metavar="N", help="contracts to close with a limit order (needs --px)"
    )
    sub.add_argument("--px", type=_PX, metavar="P", help="the limit order's price (with --sz)")
    sub.set_defaults(command=_Command(sub, _run_close, _check_close))

    sub = add("cancel", connection=True, json=True)
    sub.add_argument("algo_id", type=_ALGO_ID, metavar="ALGO_ID", help="the grid")
    sub.add_argument(
        "ord_id", type=_ORD_ID, metavar="ORD_ID", help="the close order's id ('close' printed it)"
    )
    sub.set_defaults(command=_Command(sub, _run_cancel))

    sub = add("sweep", connection=True, json=True)
    sub.add_argument(
        "algo_ids", nargs="*", type=_ALGO_ID, metavar="ALGO_ID", help="grid (algo order) ids"
    )
    sub.add_argument(
        "--pending",
        action="store_true",
        help="discover the grids: every running or stopped-with-position grid of the account",
    )
    sub.add_argument(
        "--concurrency",
        type=_CONCURRENCY,
        default=_DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"requests in flight at once (default: {_DEFAULT_CONCURRENCY}); more than OKX's "
        "20 per 2 s only queue at the rate limiter, which fails nothing",
    )
    sub.set_defaults(command=_Command(sub, _run_sweep, _check_sweep))

    sub = add("simulate", connection=False, json=False)
    sub.add_argument(
        "--port", type=_PORT, default=8000, help="TCP port on 127.0.0.1 (default: 8000)"
    )
    sub.add_argument("--grids", type=_GRIDS, default=50, help="demo grids to create (default: 50)")
    sub.set_defaults(
        command=_Command(
            sub, _run_simulate, _refuse("simulate", _CONNECTION_OPTIONS + _JSON_OPTION)
        )
    )

    sub = add("demo", connection=False, json=True)
    sub.set_defaults(command=_Command(sub, _run_demo, _refuse("demo", _CONNECTION_OPTIONS)))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``okx-grid`` with ``argv`` (default ``sys.argv[1:]``) and return its exit code.

    Usage errors raise ``SystemExit(2)`` (argparse's way); ``--help`` raises ``SystemExit(0)``.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    command: _Command = args.command
    problem = command.check(args)
    if problem:
        command.parser.error(problem)
    out = Output(json=bool(args.json), stdout=sys.stdout, stderr=sys.stderr)
    try:
        return command.run(args, out)
    except KeyboardInterrupt:
        return out.fail(EXIT_INTERRUPTED, "interrupted")
