"""okx-grid watch in process against the simulator: JSON lines, plain lines, the live
table, the failures that end it, and Ctrl-C.

A watch runs until Ctrl-C, so these runs stop with ``--count``, except the Ctrl-C
test, which runs ``main`` in the main thread against a `SimulatorThread`. Changes
are made in the simulator once the run has written the lines before them, so that
each one is an update of its own (not folded into the snapshot).
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import signal
import threading
import time
from collections.abc import Callable, Sequence
from decimal import Decimal

import pytest

from okx_grid_async._constants import GRID_ORDERS_PENDING_PATH
from okx_grid_async.cli import main
from okx_grid_async.cli._exit import EXIT_API_ERROR, EXIT_INTERRUPTED, EXIT_NETWORK, EXIT_OK
from okx_grid_async.simulator import FaultKind, GridSimulator, SimAccount
from okx_grid_async.testing import add_running_grid, stop_grid_keeping_position

from .cli_runner import Cli, Run, SimulatorThread

UNKNOWN_ALGO = "123"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_TIMEOUT = 30.0


class _Stream(io.StringIO):
    """A stdout the test reads while the run writes it; a terminal if ``terminal``.

    ``written`` is called after each write (from the run's thread).
    """

    def __init__(self, *, terminal: bool = False) -> None:
        super().__init__()
        self._terminal = terminal
        self.written: Callable[[], object] = lambda: None

    def isatty(self) -> bool:
        return self._terminal

    def write(self, text: str) -> int:
        n = super().write(text)
        self.written()
        return n


Step = tuple[Callable[[str], bool], Callable[[], object]]


def _lines(n: int) -> Callable[[str], bool]:
    return lambda out: out.count("\n") >= n


async def _watch(
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
    *args: str,
    steps: Sequence[Step] = (),
    terminal: bool = False,
) -> Run:
    """Run ``okx-grid watch ARGS``; each step's action runs once its condition holds of
    what stdout has so far (unless the run ended first)."""
    stdout, stderr = _Stream(terminal=terminal), io.StringIO()
    monkeypatch.setattr("sys.stdout", stdout)
    monkeypatch.setattr("sys.stderr", stderr)
    loop, changed = asyncio.get_running_loop(), asyncio.Event()
    stdout.written = lambda: loop.call_soon_threadsafe(changed.set)
    run = asyncio.ensure_future(
        asyncio.to_thread(main, ["--base-url", cli.sim.url, "watch", *args])
    )
    run.add_done_callback(lambda _: changed.set())
    async with asyncio.timeout(_TIMEOUT):
        for ready, action in steps:
            while True:
                changed.clear()
                if ready(stdout.getvalue()) or run.done():
                    break
                await changed.wait()
            action()
        code = await run
    out, err = stdout.getvalue(), stderr.getvalue()
    for secret in (cli.account.secret_key, cli.account.passphrase):
        assert secret not in out + err
    return Run(code, out, err)


def _json_lines(run: Run) -> list[dict[str, object]]:
    return [json.loads(line) for line in run.out.splitlines()]


async def test_json_lines_the_snapshot_then_each_change(
    cli: Cli, sim: GridSimulator, account: SimAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    grid = add_running_grid(sim, account.user_id, 35)
    other = add_running_grid(sim, account.user_id, 3)  # pushed on the states stream: ignored
    run = await _watch(
        cli,
        monkeypatch,
        grid.algo_id,
        grid.algo_id,  # given twice, watched once
        "--json",
        "--count",
        "4",
        steps=[
            (_lines(1), lambda: sim.set_mark_price(grid.algo_id, Decimal("29500"))),
            (_lines(2), lambda: stop_grid_keeping_position(sim, other.algo_id)),
            (_lines(2), lambda: stop_grid_keeping_position(sim, grid.algo_id)),
        ],
    )
    assert run.code == EXIT_OK, run.err
    lines = _json_lines(run)
    assert len(lines) == 4
    assert {line["algo_id"] for line in lines} == {grid.algo_id}
    first, moved = (line["positions"] for line in lines[:2])
    assert isinstance(first, list)
    assert isinstance(moved, list)
    assert (first[0]["pos"], first[0]["mark_px"], lines[0]["state"]) == ("35", "29213.9", "running")
    assert first[0]["p_time"] is not None  # pushed, not read over REST
    assert (moved[0]["mark_px"], lines[1]["state"]) == ("29500", "running")
    # The stop pushes the position (a new uTime) and the state, in either order.
    assert lines[3]["state"] == "no_close_position"
    assert all(line["error"] is None for line in lines)
    assert sim.ws_connections() == 0  # both streams closed on the way out


async def test_an_unknown_grid_is_a_line_of_its_own_and_sets_the_exit_code(
    cli: Cli, sim: GridSimulator, account: SimAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    grid = add_running_grid(sim, account.user_id, 35)
    run = await _watch(cli, monkeypatch, grid.algo_id, UNKNOWN_ALGO, "--json", "--count", "2")
    assert run.code == EXIT_API_ERROR
    by_id = {line["algo_id"]: line for line in _json_lines(run)}
    assert by_id[grid.algo_id]["error"] is None
    unknown = by_id[UNKNOWN_ALGO]
    assert (unknown["state"], unknown["positions"]) == ("", None)
    assert isinstance(unknown["error"], dict)
    assert (unknown["error"]["type"], unknown["error"]["code"]) == ("GridNotFoundError", "60018")
    assert f"okx-grid: error: grid {UNKNOWN_ALGO}: OKX code 60018" in run.err
    # The stream's own warning comes through okx-grid's output: prefixed (and redacted).
    assert f"okx-grid: WebSocket: algoId={UNKNOWN_ALGO}&channel=grid-positions refused" in run.err


async def test_off_a_terminal_each_update_is_a_key_value_line(
    cli: Cli, sim: GridSimulator, account: SimAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    grid = add_running_grid(sim, account.user_id, 35)
    run = await _watch(cli, monkeypatch, UNKNOWN_ALGO, grid.algo_id, "--count", "2")
    assert run.code == EXIT_API_ERROR
    lines = sorted(run.out.splitlines())  # the two grids' first lines come in any order
    assert re.fullmatch(
        f"algo_id={grid.algo_id} state=running inst_id=BTC-USDT-SWAP pos=35 "
        r"avg_px=29215\.01 mark_px=29213\.9 upl=-0\.3885 "
        r"updated=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z",
        lines[1],
    ), lines
    assert lines[0].startswith(
        f"algo_id={UNKNOWN_ALGO} state=not-pending error=OKX code 60018 (HTTP 101): "
    )
    assert "\x1b[" not in run.out


async def test_a_watch_of_unknown_grids_only_ends_by_itself(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = await _watch(cli, monkeypatch, UNKNOWN_ALGO, "--json")  # no --count: it ends
    assert run.code == EXIT_API_ERROR
    assert [line["algo_id"] for line in _json_lines(run)] == [UNKNOWN_ALGO]


async def test_unread_states_show_as_unknown_until_pushed(
    cli: Cli, sim: GridSimulator, account: SimAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    grid = add_running_grid(sim, account.user_id, 35)
    sim.inject_fault(FaultKind.MALFORMED_JSON, GRID_ORDERS_PENDING_PATH, count=10)
    run = await _watch(cli, monkeypatch, grid.algo_id, "--json", "--count", "2")
    assert run.code == EXIT_OK, run.err
    assert "okx-grid: the grids' states could not be read (STATE shows ? until pushed)" in run.err
    # The position and the state, pushed by the two streams in either order.
    lines = _json_lines(run)
    assert lines[0]["state"] in (None, "running")
    assert lines[1]["state"] == "running"


async def test_a_refused_login_exits_3_with_the_credentials_hint(
    cli: Cli, sim: GridSimulator, account: SimAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    grid = add_running_grid(sim, account.user_id, 35)
    sim.ws_refuse_login()
    run = await _watch(cli, monkeypatch, grid.algo_id, "--json")
    assert run.code == EXIT_API_ERROR
    error = json.loads(run.out.splitlines()[-1])["error"]
    assert (error["type"], error["code"]) == ("LoginRefusedError", "60009")
    assert "okx-grid: hint: check OKX_API_KEY, OKX_SECRET_KEY, OKX_PASSPHRASE" in run.err
    assert sim.ws_connections() == 0


async def test_an_unreachable_host_exits_5(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, closed_port: int
) -> None:
    stderr = io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)
    url = f"http://127.0.0.1:{closed_port}"
    code = await asyncio.to_thread(main, ["--base-url", url, "watch", "1", "--timeout", "2"])
    assert code == EXIT_NETWORK
    assert stderr.getvalue().startswith("okx-grid: error: ")


async def test_on_a_terminal_the_table_is_redrawn_in_place(
    cli: Cli, sim: GridSimulator, account: SimAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    grid = add_running_grid(sim, account.user_id, 35)
    run = await _watch(
        cli,
        monkeypatch,
        grid.algo_id,
        UNKNOWN_ALGO,
        "--count",
        "3",
        terminal=True,
        steps=[
            (
                lambda out: "2 updates" in out,
                lambda: sim.set_mark_price(grid.algo_id, Decimal("29500")),
            )
        ],
    )
    assert run.code == EXIT_API_ERROR
    assert "\x1b[" in run.out  # styled and redrawn: cursor moves
    screens = _ANSI.sub("", run.out).split("ALGO_ID")
    assert "0 updates" in screens[1]  # drawn before anything came: every grid waiting
    assert re.search(f"{grid.algo_id} +running +waiting", screens[1])
    last = screens[-1]
    assert re.search(r"INST_ID +STATE +POS +AVG_PX +MARK_PX +UPL +UPDATED +NOTE", last)
    assert re.search(
        f"{grid.algo_id} +BTC-USDT-SWAP +running +35 +29215.01 +29500 +[-0-9.]+ "
        r"+\d\d:\d\d:\d\d",
        last,
    ), last
    assert re.search(f"{UNKNOWN_ALGO} +not pending +error: OKX code 60018", last)
    assert "2 grids, 3 updates; UPDATED is UTC; Ctrl-C to stop" in last
    assert "WebSocket: algoId=123&channel=grid-positions refused" in last  # the last note
    # Named on stderr once the view is closed, not through it.
    assert run.err == (
        f"okx-grid: error: grid {UNKNOWN_ALGO}: OKX code 60018 (HTTP 101): Wrong URL or "
        f"channel:grid-positions,algoId:{UNKNOWN_ALGO} doesn't exist.\n"
    )


def test_ctrl_c_exits_130_with_the_streams_closed(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    stdout, stderr = _Stream(), io.StringIO()
    clean_environment.setattr("sys.stdout", stdout)
    clean_environment.setattr("sys.stderr", stderr)
    main_thread = threading.main_thread().ident
    assert main_thread is not None
    with SimulatorThread() as threaded:
        account = threaded.call(lambda sim: sim.add_account())
        for name, value in (
            ("OKX_API_KEY", account.api_key),
            ("OKX_SECRET_KEY", account.secret_key),
            ("OKX_PASSPHRASE", account.passphrase),
            ("OKX_BASE_URL", threaded.call(lambda sim: sim.url)),
        ):
            clean_environment.setenv(name, value)
        grid = threaded.call(lambda sim: add_running_grid(sim, account.user_id, 35))

        def interrupt_once_watching() -> None:
            deadline = time.monotonic() + 20.0  # else the test fails on its own: no random SIGINT
            while "\n" not in stdout.getvalue():
                if time.monotonic() > deadline:
                    return
                time.sleep(0.02)
            signal.pthread_kill(main_thread, signal.SIGINT)

        ctrl_c = threading.Thread(target=interrupt_once_watching, name="ctrl-c")
        ctrl_c.start()
        try:
            code = main(["watch", grid.algo_id, "--json"])
        finally:
            ctrl_c.join()
        open_sockets = threaded.call(lambda sim: sim.ws_connections())
        deadline = time.monotonic() + 5.0
        while open_sockets and time.monotonic() < deadline:  # the server sees the close frame
            time.sleep(0.02)
            open_sockets = threaded.call(lambda sim: sim.ws_connections())
    assert code == EXIT_INTERRUPTED
    assert stderr.getvalue() == "okx-grid: error: interrupted\n"
    first, last = stdout.getvalue().splitlines()
    assert json.loads(first)["algo_id"] == grid.algo_id
    assert json.loads(last)["error"]["type"] == "InterruptionError"
    assert open_sockets == 0
