"""What okx-grid draws, without a run: tables as text, the progress bar, export lines, output."""

from __future__ import annotations

import io
import re
import shlex
from datetime import UTC, datetime
from decimal import Decimal

import msgspec
import pytest

from okx_grid_async import GridNotFoundError, GridPosition
from okx_grid_async.cli._exit import EXIT_API_ERROR, UsageError
from okx_grid_async.cli._grids import GridRow, summarize
from okx_grid_async.cli._output import Output
from okx_grid_async.cli._render import (
    SweepProgress,
    WatchTable,
    export_lines,
    format_decimal,
    grids_table,
    sweep_report,
    to_text,
    watch_lines,
    watch_view,
)

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _position(algo_id: str, pos: str, pos_side: str = "net") -> GridPosition:
    return GridPosition(
        algo_id=algo_id, algo_cl_ord_id="", inst_type="SWAP", inst_id="BTC-USDT-SWAP",
        c_time=None, u_time=None, avg_px=Decimal("29215.01"), ccy="USDT", lever=Decimal(5),
        liq_px=None, pos_side=pos_side, pos=Decimal(pos), mgn_mode="cross", mgn_ratio=None,
        imr=None, mmr=None, upl=Decimal("-0.39"), upl_ratio=None, last=None,
        notional_usd=None, adl=None, mark_px=Decimal("1E+2"),
    )  # fmt: skip


def _rows(message: str = "Algo order does not exist") -> list[GridRow]:
    return [
        GridRow(algo_id="1", state="no_close_position", positions=[_position("1", "35")],
                error=None),
        GridRow(algo_id="2", state="running", positions=[_position("2", "0")], error=None),
        GridRow(algo_id="3", state="", positions=None,
                error=GridNotFoundError("51293", message, 200)),
        GridRow(algo_id="4", state=None, positions=[], error=None),
    ]  # fmt: skip


def test_a_table_is_plain_aligned_columns_off_a_terminal() -> None:
    text = to_text(grids_table(_rows()), terminal=False)
    assert text.splitlines() == [
        "ALGO_ID  STATE              INST_ID        POS    AVG_PX  MARK_PX    UPL  NOTE",
        "1        no_close_position  BTC-USDT-SWAP   35  29215.01      100  -0.39",
        "2        running            BTC-USDT-SWAP    0  29215.01      100  -0.39  empty",
        "3        not pending                                                      error: OKX "
        "code 51293 (HTTP 200): Algo order does not exist",
        "4        ?                                                                empty",
    ]


def test_on_a_terminal_the_same_table_is_styled() -> None:
    plain = to_text(grids_table(_rows()), terminal=False)
    styled = to_text(grids_table(_rows()), terminal=True)
    assert "\x1b[" in styled
    assert "\x1b[31merror: OKX code 51293" in styled  # a failed grid's note in red
    assert [line.rstrip() for line in _ANSI.sub("", styled).splitlines()] == plain.splitlines()


def test_nothing_is_wrapped_so_redaction_finds_every_secret_whole() -> None:
    secret = "s3cr3t-" * 40  # far wider than any terminal
    text = to_text(grids_table(_rows(f"echoed {secret}")), terminal=True)
    assert secret in text
    assert text.count("\n") == 5
    shown = to_text(
        grids_table(_rows(f"echoed {secret}"), redact=lambda t: "[hidden]"), terminal=True
    )
    assert secret not in shown
    assert "[hidden]" in shown


def test_markup_in_data_is_shown_as_written() -> None:
    text = to_text(grids_table(_rows("[bold]not markup[/bold]")), terminal=True)
    assert "[bold]not markup[/bold]" in text


def test_the_sweep_report_counts_the_grids() -> None:
    summary = summarize(_rows())
    assert (summary.with_position, summary.closable, summary.empty, summary.failed) == (1, 1, 2, 1)
    assert to_text(sweep_report(summary), terminal=False).splitlines()[-1] == (
        "4 grids: 1 with a position (1 closable), 2 empty, 1 failed"
    )
    assert to_text(sweep_report(summarize([])), terminal=False) == "no grids found\n"


@pytest.mark.parametrize(
    ("value", "shown"),
    [(None, ""), (Decimal("1E+2"), "100"), (Decimal("-0.000001"), "-0.000001"), (Decimal(0), "0")],
)
def test_format_decimal_is_plain(value: Decimal | None, shown: str) -> None:
    assert format_decimal(value) == shown


def test_export_lines_are_quoted_for_a_shell() -> None:
    values = {"OKX_BASE_URL": "http://127.0.0.1:8000", "OKX_PASSPHRASE": "it's a $pass"}
    lines = export_lines(values).splitlines()
    assert lines[0] == "export OKX_BASE_URL=http://127.0.0.1:8000"
    assert [shlex.split(line) for line in lines] == [
        ["export", f"{name}={value}"] for name, value in values.items()
    ]


# ---------------------------------------------------------------- watch


def test_watch_lines_give_a_line_per_position_and_the_error_last() -> None:
    pushed = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    long, short = _position("7", "2", "long"), _position("7", "-1", "short")
    row = GridRow(
        algo_id="7",
        state=None,
        positions=[long, msgspec.structs.replace(short, p_time=pushed)],
        error=None,
    )
    assert watch_lines(row).splitlines() == [
        "algo_id=7 state=? inst_id=BTC-USDT-SWAP pos=2 avg_px=29215.01 mark_px=100 upl=-0.39 "
        "updated=",
        "algo_id=7 state=? inst_id=BTC-USDT-SWAP pos=-1 avg_px=29215.01 mark_px=100 upl=-0.39 "
        "updated=2026-01-02T03:04:05.678Z",
    ]
    waiting = GridRow(algo_id="8", state="running", positions=None, error=None)
    assert watch_lines(waiting) == "algo_id=8 state=running"
    assert watch_lines(_rows()[2]) == (
        "algo_id=3 state=not-pending error=OKX code 51293 (HTTP 200): Algo order does not exist"
    )


def test_the_live_view_redacts_before_it_wraps() -> None:
    secret = "s3cr3t-" * 6
    terminal = Terminal()
    table = WatchTable(terminal)
    table.show(
        watch_view(
            _rows(f"echoed {secret}"),
            updates=1,
            note=f"lost {secret}",
            redact=lambda t: t.replace(secret, "***"),
        )
    )
    table.close()
    drawn = _ANSI.sub("", terminal.getvalue())  # 80 columns: the error wraps
    assert "echoed" in drawn  # the error, its secret wrapped onto another line
    assert drawn.count("***") % 2 == 0  # each frame: the error's and the note's
    assert "lost ***" in drawn
    assert "s3cr3t" not in drawn
    assert "4 grids, 1 update; UPDATED is UTC" in drawn


# ---------------------------------------------------------------- progress


def test_progress_is_drawn_on_a_terminal_only() -> None:
    terminal, pipe = Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        progress = SweepProgress(stream)
        progress.expect(1, complete=False)
        progress.advance()
        progress.expect(2)
        progress.advance()
        progress.close()
        progress.close()  # closing twice is harmless
    assert pipe.getvalue() == ""
    drawn = _ANSI.sub("", terminal.getvalue())
    assert "reading positions" in drawn
    assert "1/1+" in drawn  # still discovering
    assert drawn.rstrip().endswith("2/2 0:00:00")


def test_progress_of_nothing_draws_nothing() -> None:
    terminal = Terminal()
    progress = SweepProgress(terminal)
    progress.advance()
    progress.close()
    assert terminal.getvalue() == ""


# ---------------------------------------------------------------- output


def test_output_redacts_every_stream_and_keeps_secrets_out_of_its_repr() -> None:
    out, err = io.StringIO(), io.StringIO()
    output = Output(json=True, stdout=out, stderr=err, secrets=["hunter2", "passphrase1"])
    output.note("a note with hunter2")
    output.result({"echo": "passphrase1"}, lambda: "unused")
    assert output.fail(UsageError("bad hunter2", hint="not passphrase1")) == 2
    assert "hunter2" not in out.getvalue() + err.getvalue()
    assert "passphrase1" not in out.getvalue() + err.getvalue()
    assert err.getvalue().splitlines() == [
        "okx-grid: a note with ***",
        "okx-grid: error: bad ***",
        "okx-grid: hint: not ***",
    ]
    assert out.getvalue().splitlines() == [
        '{"echo":"***"}',
        '{"error":{"type":"UsageError","message":"bad ***"}}',
    ]
    assert "hunter2" not in repr(output)
    public = output.showing("hunter2")
    public.note("hunter2 passphrase1")
    assert err.getvalue().splitlines()[-1] == "okx-grid: hunter2 ***"


def test_json_output_refuses_what_it_cannot_encode() -> None:
    output = Output(json=True, stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(NotImplementedError, match="cannot encode object"):
        output.result(object(), lambda: "unused")


def test_an_error_s_exit_code_is_returned() -> None:
    output = Output(json=False, stdout=io.StringIO(), stderr=io.StringIO())
    assert output.fail(GridNotFoundError("51293", "gone", 200)) == EXIT_API_ERROR
