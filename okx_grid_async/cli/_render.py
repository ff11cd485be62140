"""What the commands draw, with rich: grid tables, the sweep's progress, the demo's report.

Every function here turns data into a rich renderable (or text) and nothing
else: no request, no exit code. `grids_table` is the table of ``positions`` and
``sweep``; `watch_view` the same grids as ``watch`` shows them, redrawn by
`WatchTable` (``rich.live.Live``) on each update, and `watch_lines` one update as
text for a pipe. `to_text` renders for a stream: aligned columns, never wrapped,
which scripts can split on spaces; styled on a terminal.
"""

from __future__ import annotations

import io
import shlex
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Final, TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from okx_grid_async import GridPosition
from okx_grid_async._constants import GRID_TIME_PERIOD

from ._grids import CLOSABLE_STATE, GridRow, SweepSummary

if TYPE_CHECKING:
    # Only the demo's types: importing _demo would import the simulator (aiohttp.web).
    from ._demo import DemoGrid, DemoSummary

__all__ = [
    "SweepProgress",
    "WatchTable",
    "demo_report",
    "export_lines",
    "format_decimal",
    "grids_table",
    "sweep_report",
    "to_text",
    "watch_lines",
    "watch_view",
]

# Wide enough that nothing written to a pipe or a file is ever wrapped.
_UNWRAPPED: Final = 10_000
_ARROW: Final = " → "
_STATE_STYLES: Final = {CLOSABLE_STATE: "green", "running": "yellow"}


def format_decimal(value: Decimal | None) -> str:
    """A number for a table: plain notation (never ``1E+2``), empty for ``None``."""
    return "" if value is None else format(value, "f")


def to_text(renderable: RenderableType, *, terminal: bool) -> str:
    """``renderable`` as lines of text, each ending in a newline, never wrapped.

    Styled on a ``terminal`` (which wraps long lines itself), plain elsewhere.
    Unwrapped, a string (a secret, say) stays whole on its line, where redaction
    finds it. Strings are shown as written, never read as rich markup.
    """
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        force_terminal=terminal,
        width=_UNWRAPPED,
        highlight=False,
        markup=False,
        emoji=False,
        soft_wrap=True,
    )
    console.print(renderable)
    return "".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())


def _table(*headers: str, numbers: Sequence[str] = ()) -> Table:
    """A table of aligned columns without borders; the columns named in ``numbers`` align right."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for header in headers:
        table.add_column(header, justify="right" if header in numbers else "left")
    return table


def _state(state: str | None) -> Text:
    if state is None:
        return Text("?", style="dim")
    if not state:
        return Text("not pending", style="dim")
    return Text(state, style=_STATE_STYLES.get(state, ""))


_GRID_HEADERS: Final = ("ALGO_ID", "STATE", "INST_ID", "POS", "AVG_PX", "MARK_PX", "UPL", "NOTE")
_WATCH_HEADERS: Final = (
    "ALGO_ID", "INST_ID", "STATE", "POS", "AVG_PX", "MARK_PX", "UPL", "UPDATED", "NOTE",
)  # fmt: skip
_NUMBERS: Final = ("POS", "AVG_PX", "MARK_PX", "UPL")


def _as_written(text: str) -> str:
    return text


def _updated(position: GridPosition) -> datetime | None:
    """When the row was pushed (``pTime``), or for a row read over REST, when it changed."""
    return position.p_time or position.u_time


def _grid_cells(row: GridRow, redact: Callable[[str], str]) -> list[dict[str, RenderableType]]:
    """The cells of ``row``, by column header: a line per position, one if none or failed."""
    state = _state(row.state)
    if row.error is not None:
        error = Text(redact(f"error: {row.error}"), style="red")
        return [{"ALGO_ID": Text(row.algo_id, style="red"), "STATE": state, "NOTE": error}]
    if row.positions is None:  # only while watching: nothing came yet
        return [{"ALGO_ID": row.algo_id, "STATE": state, "NOTE": Text("waiting", style="dim")}]
    if not row.positions:
        return [{"ALGO_ID": row.algo_id, "STATE": state, "NOTE": "empty"}]
    return [
        {
            "ALGO_ID": row.algo_id,
            "STATE": state,
            "INST_ID": p.inst_id,
            "POS": format_decimal(p.pos),
            "AVG_PX": format_decimal(p.avg_px),
            "MARK_PX": format_decimal(p.mark_px),
            "UPL": format_decimal(p.upl),
            "UPDATED": _clock(_updated(p)),
            "NOTE": "empty" if p.is_empty else "",
        }
        for p in row.positions
    ]


def _rows_table(
    headers: Sequence[str], rows: Sequence[GridRow], redact: Callable[[str], str]
) -> Table:
    table = _table(*headers, numbers=_NUMBERS)
    for row in rows:
        for cells in _grid_cells(row, redact):
            table.add_row(*(cells.get(header, "") for header in headers))
    return table


def grids_table(rows: Sequence[GridRow], *, redact: Callable[[str], str] = _as_written) -> Table:
    """One line per position of each grid (one for an empty or failed grid).

    A failed grid's NOTE is ``error: ...``, in red on a terminal, beside its id.
    ``redact`` is applied to each error's text before the table is laid out: a
    live view fits the table to the terminal, where a secret wrapped over two
    lines would escape redaction of the drawn text.
    """
    return _rows_table(_GRID_HEADERS, rows, redact)


def _clock(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).strftime("%H:%M:%S")


def _iso(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def watch_view(
    rows: Sequence[GridRow],
    *,
    updates: int,
    note: str = "",
    redact: Callable[[str], str] = _as_written,
) -> RenderableType:
    """``okx-grid watch``'s screen: the grids' table (UPDATED in UTC), a line of counts,
    and the last ``note`` (a lost connection, say) if any.

    A grid not heard of yet is ``waiting``; a failed one has its error. Errors and
    the note are redacted before the layout, as in `grids_table`.
    """
    counts = Text(
        f"{len(rows)} {'grid' if len(rows) == 1 else 'grids'}, {updates} "
        f"{'update' if updates == 1 else 'updates'}; UPDATED is UTC; Ctrl-C to stop",
        style="dim",
    )
    lines: list[RenderableType] = [_rows_table(_WATCH_HEADERS, rows, redact), "", counts]
    if note:
        lines.append(Text(redact(note), style="yellow"))
    return Group(*lines)


def _state_word(state: str | None) -> str:
    """A grid's state as one word, for a line that splits on spaces."""
    return "?" if state is None else state or "not-pending"


def watch_lines(row: GridRow) -> str:
    """One grid's update as ``key=value`` lines, a line per position, for a pipe or a file.

    ``updated`` is ISO 8601 UTC. A failed grid's line ends with ``error=`` and the
    message, which may hold spaces: it is the rest of the line.
    """
    head = f"algo_id={row.algo_id} state={_state_word(row.state)}"
    if row.error is not None:
        return f"{head} error={row.error}"
    if not row.positions:
        return head
    return "\n".join(
        f"{head} inst_id={p.inst_id} pos={format_decimal(p.pos)} "
        f"avg_px={format_decimal(p.avg_px)} mark_px={format_decimal(p.mark_px)} "
        f"upl={format_decimal(p.upl)} updated={_iso(_updated(p))}"
        for p in row.positions
    )


class WatchTable:
    """``okx-grid watch``'s live view on a terminal: `watch_view`, redrawn in place.

    Redrawn on each `show`, from the command's own task (no refresh thread);
    `close` leaves the last view on the screen.
    """

    __slots__ = ("_live",)

    def __init__(self, stream: TextIO) -> None:
        console = Console(
            file=stream, force_terminal=True, highlight=False, markup=False, emoji=False
        )
        self._live = Live(
            console=console, auto_refresh=False, redirect_stdout=False, redirect_stderr=False
        )

    def show(self, view: RenderableType) -> None:
        """Draw ``view`` in place of the last one."""
        self._live.update(view, refresh=self._live.is_started)
        if not self._live.is_started:
            self._live.start(refresh=True)

    def close(self) -> None:
        """Stop redrawing; the last view stays."""
        self._live.stop()


def sweep_report(
    summary: SweepSummary, *, redact: Callable[[str], str] = _as_written
) -> RenderableType:
    """The sweep's table (`grids_table`) and a line of counts."""
    if not summary.grids:
        return "no grids found"
    counts = (
        f"{len(summary.grids)} grids: {summary.with_position} with a position "
        f"({summary.closable} closable), {summary.empty} empty, {summary.failed} failed"
    )
    return Group(grids_table(summary.grids, redact=redact), "", counts)


def export_lines(variables: Mapping[str, str]) -> str:
    """``export NAME=value`` lines, quoted for a POSIX shell, ready to paste."""
    return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in variables.items())


class SweepProgress:
    """A sweep's progress bar on ``stream`` when it is a terminal; nothing elsewhere.

    While the ids are still being discovered the total is what was found so far,
    marked ``+``. Redrawn on each change, from the sweep's own task: no thread.
    """

    __slots__ = ("_progress", "_task")

    def __init__(self, stream: TextIO) -> None:
        self._progress: Progress | None = None
        self._task = TaskID(0)
        if stream.isatty():
            self._progress = Progress(
                TextColumn("reading positions"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}{task.fields[more]}"),
                TimeElapsedColumn(),
                console=Console(file=stream, force_terminal=True),
                auto_refresh=False,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._task = self._progress.add_task("", total=0, more="")

    def expect(self, total: int, *, complete: bool = True) -> None:
        """``total`` ids are known; ``complete`` False while more may come."""
        if self._progress is not None:
            if not self._progress.live.is_started:
                self._progress.start()
            more = "" if complete else "+"
            self._progress.update(self._task, total=total, more=more, refresh=True)

    def advance(self) -> None:
        """One more id is done."""
        if self._progress is not None:
            self._progress.advance(self._task)
            self._progress.refresh()

    def close(self) -> None:
        """Leave the bar as it ended, on a line of its own."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _change(before: str, after: str) -> str:
    return before if before == after else f"{before}{_ARROW}{after}"


def _demo_row(grid: DemoGrid) -> tuple[str, ...]:
    return (
        grid.algo_id,
        grid.inst_id,
        _change(grid.state, grid.state_after),
        _change(format_decimal(grid.pos), format_decimal(grid.pos_after)),
        format_decimal(grid.upl),
        grid.action,
        grid.ord_id,
    )


def demo_report(summary: DemoSummary) -> RenderableType:
    """The demo's report: what it did to each grid, then the rate limiter's figures."""
    grids = _table(
        "ALGO_ID", "INSTRUMENT", "STATE", "POSITION", "UPL", "ACTION", "ORD_ID",
        numbers=("POSITION", "UPL"),
    )  # fmt: skip
    for grid in summary.grids:
        grids.add_row(*_demo_row(grid))
    window = f"MAX_IN_{GRID_TIME_PERIOD:g}S"
    limiter = _table(
        "ENDPOINT", "GRANTED", "ARRIVED", window, "REJECTED_50011", "MEAN_WAIT_S",
        numbers=("GRANTED", "ARRIVED", window, "REJECTED_50011", "MEAN_WAIT_S"),
    )  # fmt: skip
    for f in summary.limiter:
        limiter.add_row(
            f.endpoint.rsplit("/", 1)[-1],
            str(f.granted),
            str(f.arrivals),
            str(f.max_in_window),
            str(f.rejections_50011),
            f"{f.mean_wait_s:.3f}",
        )
    busiest = max(summary.limiter, key=lambda f: f.waited_s)
    return Group(
        f"Simulator at {summary.simulator_url}: user {summary.user_id}, "
        f"{summary.grids_created} grids, {len(summary.grids)} of them pending.",
        f"Swept {len(summary.grids)} positions in {summary.sweep_s:.1f} s; closed "
        f"{summary.market_closes} at market, placed {summary.limit_closes} limit close "
        f"{'order' if summary.limit_closes == 1 else 'orders'}.",
        "",
        grids,
        "",
        f"STATE and POSITION: before{_ARROW}after, where the demo changed them.\n"
        "ACTION '-': stopped with its position kept, so closable, but left alone: the demo\n"
        f"closes only {summary.market_closes} at market and {summary.limit_closes} with limit "
        "orders.",
        "",
        f"Rate limiter ({summary.rate_limit}):",
        limiter,
        "",
        "MEAN_WAIT_S: how long a request waited for its rate-limit slot, on average.\n"
        "Requests queued together wait side by side, so the waits add up to more than the\n"
        f"run: {busiest.waited_s:.1f} s in all for {busiest.endpoint.rsplit('/', 1)[-1]}.",
        "",
        f"Rejected for rate (50011): {summary.rejections}. Wall time: {summary.wall_time_s:.1f} s.",
    )
