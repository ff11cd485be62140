"""``okx-grid watch``: grids' positions and states as OKX pushes them, until Ctrl-C.

Two streams over the business WebSocket feed one view: ``watch_positions`` for
the grids' positions, and ``watch_grids("ANY")`` for their states (a grid
stopped with its position kept is the change worth seeing). The states start
from the pending-grids list, read once over REST as ``positions`` does, so that
the snapshot ``watch_grids`` pushes on subscribing changes nothing, and an
update is a line only when something changed.

Where updates go: a table redrawn in place on a terminal (`WatchTable`); with
``--json`` one JSON line per update, the grid as ``positions --json`` shows it;
elsewhere (a pipe, a file, where redrawing makes no sense) one ``key=value``
line per position of the grid that changed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Final, Protocol, TypeAlias

from okx_grid_async import GridClient, GridOrder, GridPosition, OKXError, WatchFailure

from ._arguments import ALGO_ID, COUNT
from ._command import Command
from ._environment import PROG
from ._exit import EXIT_OK, exit_code_for
from ._grids import GridRow, StatesUnknown, pending_states
from ._output import Output
from ._render import WatchTable, watch_lines, watch_view
from ._session import with_client

__all__ = ["COMMANDS"]


class _Ended:
    """A stream ended by itself: nothing is left to watch (every id was refused)."""

    __slots__ = ()


class _StatesFailure:
    """The states stream could not read or subscribe something: STATE may lag."""

    __slots__ = ("error",)

    def __init__(self, error: OKXError) -> None:
        self.error = error


_ENDED: Final = _Ended()
_Event: TypeAlias = GridPosition | GridOrder | WatchFailure | _StatesFailure | _Ended | Exception


class _Watched:
    """The watched grids as last heard of, in the order given: one `GridRow` each.

    A row's ``positions`` is ``None`` until its first push, then its positions by
    side (one for a net position, two for long and short).
    """

    __slots__ = ("_positions", "_rows")

    def __init__(self, algo_ids: Sequence[str], states: dict[str, str] | None) -> None:
        self._rows = {
            algo_id: GridRow(
                algo_id=algo_id,
                state=None if states is None else states.get(algo_id, ""),
                positions=None,
                error=None,
            )
            for algo_id in algo_ids
        }
        self._positions: dict[str, dict[str, GridPosition]] = {}

    @property
    def ids(self) -> list[str]:
        return list(self._rows)

    @property
    def rows(self) -> list[GridRow]:
        return list(self._rows.values())

    def apply(self, event: GridPosition | GridOrder | WatchFailure) -> GridRow | None:
        """The row ``event`` changed, or None when it changed nothing shown."""
        row = self._rows.get(event.algo_id)
        if row is None:  # another grid of the account (watch_grids sees them all)
            return None
        if isinstance(event, GridPosition):
            sides = self._positions.setdefault(event.algo_id, {})
            sides[event.pos_side] = event
            row.positions = list(sides.values())
            row.error = None  # a resync read that failed, then a push: watched again
        elif isinstance(event, GridOrder):
            if row.state == event.state:
                return None
            row.state = event.state
        else:
            row.error = event.error
        return row

    def exit_code(self) -> int:
        """The first failed grid's error's exit code, as for ``positions``; else 0."""
        codes = [exit_code_for(row.error) for row in self.rows if row.error is not None]
        return codes[0] if codes else EXIT_OK


class _Screen(Protocol):
    def show(self, row: GridRow, updates: int) -> None:
        """``row`` changed; it is update number ``updates``."""

    def note(self, text: str) -> None:
        """A line for the person watching, not an update: a lost connection, say."""

    def close(self) -> None:
        """The watch ended (or failed)."""


class _Warnings(logging.Handler):
    """The library's warnings (a lost connection, a refused subscription) as the screen's
    notes: prefixed and redacted like every line, and never torn through a live view."""

    def __init__(self, screen: _Screen) -> None:
        super().__init__(logging.WARNING)
        self._screen = screen

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._screen.note(self.format(record))
        except Exception:  # logging's rule: a handler never raises into the caller
            self.handleError(record)


@contextlib.contextmanager
def _warnings_to(screen: _Screen) -> Iterator[None]:
    logger = logging.getLogger("okx_grid_async")
    handler = _Warnings(screen)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def _name_failure(out: Output, row: GridRow) -> None:
    assert row.error is not None
    out.report(row.error, algo_id=row.algo_id, prefix=f"grid {row.algo_id}: ")


class _Lines:
    """``--json``, or a stdout that is no terminal: each update written as it comes."""

    __slots__ = ("_out",)

    def __init__(self, out: Output) -> None:
        self._out = out

    def show(self, row: GridRow, updates: int) -> None:
        self._out.result(row, lambda: watch_lines(row))
        if row.error is not None:
            _name_failure(self._out, row)

    def note(self, text: str) -> None:
        self._out.note(text)

    def close(self) -> None:
        """Every line is out already."""


class _Live:
    """A terminal: the table redrawn in place; failed grids named on stderr at the end,
    where a line would not tear the view."""

    __slots__ = ("_note", "_out", "_table", "_updates", "_watched")

    def __init__(self, out: Output, watched: _Watched) -> None:
        self._out = out
        self._watched = watched
        self._table = WatchTable(out.stdout)
        self._updates = 0
        self._note = ""
        self._draw()

    def show(self, row: GridRow, updates: int) -> None:
        self._updates = updates
        self._draw()

    def note(self, text: str) -> None:
        self._note = text
        self._draw()

    def _draw(self) -> None:
        view = watch_view(
            self._watched.rows, updates=self._updates, note=self._note, redact=self._out.redact
        )
        self._table.show(view)

    def close(self) -> None:
        self._table.close()
        for row in self._watched.rows:
            if row.error is not None:
                _name_failure(self._out, row)


async def _pump(
    stream: AsyncIterator[GridPosition | GridOrder | WatchFailure],
    queue: asyncio.Queue[_Event],
    *,
    states: bool,
) -> None:
    """Hand ``stream``'s items to the command's task, then how it ended."""
    try:
        async for item in stream:
            if states and isinstance(item, WatchFailure):
                await queue.put(_StatesFailure(item.error))
            else:
                await queue.put(item)
    except Exception as exc:  # raised where the command waits: `_watch`
        await queue.put(exc)
    else:
        await queue.put(_ENDED)


async def _watch(client: GridClient, watched: _Watched, screen: _Screen, count: int | None) -> int:
    """Show each update until ``count`` were shown, nothing is left to watch, or a stream fails."""
    # One slot: a stream keeps a grid's newer version in place of one not yet
    # taken (it conflates), so a slow terminal sees the latest, never a backlog.
    queue: asyncio.Queue[_Event] = asyncio.Queue(maxsize=1)
    updates = 0
    async with (
        client.watch_positions(watched.ids) as positions,
        client.watch_grids("ANY") as grids,
    ):
        pumps = [
            asyncio.create_task(_pump(positions, queue, states=False)),
            asyncio.create_task(_pump(grids, queue, states=True)),
        ]
        try:
            while count is None or updates < count:
                event = await queue.get()
                if isinstance(event, Exception):
                    raise event
                if isinstance(event, _Ended):
                    break
                if isinstance(event, _StatesFailure):
                    screen.note(f"the grids' states may lag (STATE): {event.error}")
                    continue
                row = watched.apply(event)
                if row is not None:
                    updates += 1
                    screen.show(row, updates)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
    return watched.exit_code()


def _watch_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "algo_ids", nargs="+", type=ALGO_ID, metavar="ALGO_ID", help="grid (algo order) ids"
    )
    parser.add_argument(
        "--count",
        type=COUNT,
        metavar="N",
        help="stop after N updates (default: run until Ctrl-C); --count 1 shows the first",
    )


def _run_watch(args: argparse.Namespace, out: Output) -> int:
    async def work(client: GridClient) -> int:
        algo_ids = list(dict.fromkeys(args.algo_ids))
        found = await pending_states(client, set(algo_ids))
        if isinstance(found, StatesUnknown):
            out.note(
                f"the grids' states could not be read (STATE shows ? until pushed): {found.error}"
            )
        watched = _Watched(algo_ids, None if isinstance(found, StatesUnknown) else found)
        live = not out.json and out.stdout.isatty()
        screen: _Screen = _Live(out, watched) if live else _Lines(out)
        try:
            with _warnings_to(screen):
                return await _watch(client, watched, screen, args.count)
        finally:
            screen.close()

    return with_client(args, out, work)


COMMANDS: Final = (
    Command(
        name="watch",
        summary="watch grids' positions and states live, as OKX pushes them",
        description="""\
Watch grids over OKX's WebSocket: first each grid's position as it is, then
an update on every change of its position (a close, a fill, a mark-price move)
or of its STATE (no_close_position: stopped with its position kept, which
'close' acts on). On a terminal the table is redrawn in place; with --json
each update is one JSON line, the grid as 'positions --json' shows it;
elsewhere (a pipe, a file) one key=value line per position. A grid that
cannot be watched (an unknown id) shows its error, is named on stderr, and
sets the exit code; the others go on. A lost connection is opened again, and
what changed meanwhile read once over REST. Runs until Ctrl-C or --count.""",
        examples=f"""\
examples:
  {PROG} watch 581234567890123456
  {PROG} watch 581234567890123456 581234567890123999 --json
  {PROG} watch 581234567890123456 --json --count 1    # the position, pushed once""",
        run=_run_watch,
        arguments=_watch_arguments,
    ),
)
