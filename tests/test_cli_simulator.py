"""okx-grid demo and okx-grid simulate, in process: the commands that need no account."""

from __future__ import annotations

import asyncio
import io
import shlex
import signal
import socket
import threading
import time
from collections.abc import Callable

import msgspec
import pytest

from okx_grid_async import Credentials, GridClient, GridNotFoundError, GridPosition, SweepResult
from okx_grid_async._constants import GRID_CLOSE_POSITION_PATH, GRID_MAX_RATE, GRID_POSITIONS_PATH
from okx_grid_async.cli import _demo, main
from okx_grid_async.cli._demo import DemoSummary
from okx_grid_async.cli._exit import EXIT_NETWORK, EXIT_OK
from okx_grid_async.cli._render import demo_report, to_text
from okx_grid_async.simulator import FaultKind, GridSimulator, SimAccount

from .cli_runner import Cli
from .conftest import ClientFactory

# ---------------------------------------------------------------- demo


async def test_demo_closes_a_few_shows_before_and_after_and_is_never_rejected(cli: Cli) -> None:
    run = await cli.run("demo", "--json")
    assert run.code == EXIT_OK, run.err
    doc = run.json()
    assert doc["rejections"] == 0
    assert (doc["market_closes"], doc["limit_closes"]) == (3, 2)
    figures = {f["endpoint"]: f for f in doc["limiter"]}
    positions = figures[GRID_POSITIONS_PATH]
    # The sweep reads every grid, each limit close reads its grid once more to check
    # sz, and the five grids acted on are read again to show what changed.
    reads = len(doc["grids"]) + doc["limit_closes"] + 5
    assert positions["granted"] == positions["arrivals"] == reads > GRID_MAX_RATE
    assert positions["mean_wait_s"] == pytest.approx(positions["waited_s"] / reads, abs=0.002)
    assert all(f["rejections_50011"] == 0 for f in doc["limiter"])
    assert all(f["max_in_window"] <= GRID_MAX_RATE for f in doc["limiter"])
    assert doc["wall_time_s"] < 60

    by_action: dict[str, list[dict[str, str]]] = {}
    for grid in doc["grids"]:
        by_action.setdefault(grid["action"].split(" ")[0], []).append(grid)
    market = by_action["closed"]
    assert [(g["state"], g["state_after"], g["pos_after"]) for g in market] == [
        ("no_close_position", "stopped", "0")
    ] * 3
    assert all(g["pos"] != "0" for g in market)
    limit = by_action["limit"]
    # A limit close waits for its price: the grid and its position stay as they were.
    assert [(g["state_after"], g["pos_after"] == g["pos"]) for g in limit] == [
        ("no_close_position", True)
    ] * 2
    assert all(g["ord_id"] for g in limit)
    assert {g["state"] for g in by_action["-"]} == {"no_close_position"}
    assert by_action["empty:"]
    assert by_action["running:"]

    text = to_text(demo_report(msgspec.convert(doc, DemoSummary)), terminal=False)
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line[:1].isdigit()}
    for grid in market:
        assert rows[grid["algo_id"]][2:8] == ["no_close_position", "→", "stopped", grid["pos"],
                                               "→", "0"]  # fmt: skip
    for grid in by_action["-"]:
        assert rows[grid["algo_id"]][2:4] == ["no_close_position", grid["pos"]]
        assert rows[grid["algo_id"]][-1] == "-"
    assert "STATE and POSITION: before → after, where the demo changed them." in text
    assert "ACTION '-': stopped with its position kept, so closable, but left alone" in text
    assert "MEAN_WAIT_S: how long a request waited for its rate-limit slot, on average." in text
    assert "Rejected for rate (50011): 0." in text


# ---------------------------------------------------------------- simulate


def _simulate(
    monkeypatch: pytest.MonkeyPatch, args: list[str], use: Callable[[dict[str, str]], None]
) -> tuple[int, str, str]:
    """Run ``okx-grid simulate ARGS`` in the main thread; once its export lines are out,
    ``use`` them (as a shell would read them) from another thread, then press Ctrl-C.

    Returns the exit code, stdout and stderr. A simulator that prints nothing within
    20 s is left running... until the test fails on its own: no SIGINT at random.
    """
    stdout, stderr = io.StringIO(), io.StringIO()
    monkeypatch.setattr("sys.stdout", stdout)
    monkeypatch.setattr("sys.stderr", stderr)
    main_thread = threading.main_thread().ident
    assert main_thread is not None

    def use_then_interrupt() -> None:
        deadline = time.monotonic() + 20.0
        while stdout.getvalue().count("\n") < 4:
            if time.monotonic() > deadline:
                return
            time.sleep(0.02)
        lines = stdout.getvalue().splitlines()
        try:
            use(dict(shlex.split(line)[1].split("=", 1) for line in lines))
        finally:
            signal.pthread_kill(main_thread, signal.SIGINT)

    helper = threading.Thread(target=use_then_interrupt)
    helper.start()
    try:
        code = main(["simulate", "--port", "0", *args])
    finally:
        helper.join()
    return code, stdout.getvalue(), stderr.getvalue()


def test_simulate_prints_export_lines_serves_them_and_stops_on_ctrl_c(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    found: list[int] = []

    def count_grids(env: dict[str, str]) -> None:
        async def count() -> None:
            credentials = Credentials.from_env(env)
            async with GridClient(credentials, base_url=env["OKX_BASE_URL"]) as client:
                found.append(len([grid async for grid in client.iter_grids()]))

        asyncio.run(count())

    code, out, err = _simulate(monkeypatch, ["--grids", "3"], count_grids)
    assert code == EXIT_OK
    names = [line.split("=")[0] for line in out.splitlines()]
    assert names == [
        "export OKX_BASE_URL",
        "export OKX_API_KEY",
        "export OKX_SECRET_KEY",
        "export OKX_PASSPHRASE",
    ]
    assert out.startswith("export OKX_BASE_URL=http://127.0.0.1:")
    assert found == [3]
    notes = err.splitlines()
    assert notes[0].startswith("okx-grid: simulator listening on http://127.0.0.1:")
    assert notes[0].endswith(": demo account 100000000000001, 3 grids; Ctrl-C stops it")
    assert notes[1:] == [
        "okx-grid: paste those lines into another shell, then try: okx-grid sweep --pending",
        "okx-grid: simulator stopped",
    ]


def test_simulate_shows_the_demo_credentials_even_when_they_are_exported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from okx_grid_async.simulator import DEMO_PASSPHRASE, DEMO_SECRET_KEY

    # They are fake and public: hiding them would break the lines to paste.
    monkeypatch.setenv("OKX_SECRET_KEY", DEMO_SECRET_KEY)
    monkeypatch.setenv("OKX_PASSPHRASE", DEMO_PASSPHRASE)
    code, out, _ = _simulate(monkeypatch, ["--grids", "0"], lambda env: None)
    assert code == EXIT_OK
    assert f"export OKX_SECRET_KEY={shlex.quote(DEMO_SECRET_KEY)}" in out
    assert f"export OKX_PASSPHRASE={shlex.quote(DEMO_PASSPHRASE)}" in out


def test_simulate_on_a_port_in_use_exits_5(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["simulate", "--port", str(port)]) == EXIT_NETWORK
    err = capsys.readouterr().err
    assert err.startswith(f"okx-grid: error: cannot serve on 127.0.0.1:{port}: ")


# ---------------------------------------------------------------- the demo's steps


async def _position(client: GridClient, algo_id: str) -> GridPosition:
    [position] = await client.get_positions(algo_id)
    return position


async def test_the_demo_reads_a_grid_whose_close_is_in_doubt_instead_of_closing_again(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id, pos=8)
    async with make_client() as client:
        position = await _position(client, grid.algo_id)
        sim.inject_fault(FaultKind.APPLY_THEN_DROP, GRID_CLOSE_POSITION_PATH)
        said = await _demo._close(client, position, market=True)
    assert said == ("close outcome unknown; the grid is now closed", "")
    assert sim.close_calls(grid.algo_id) == 1


async def test_the_demo_says_when_the_grid_cannot_be_read_after_a_close_in_doubt(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id, pos=8)
    async with make_client(max_attempts=1) as client:
        position = await _position(client, grid.algo_id)
        sim.inject_fault(FaultKind.APPLY_THEN_DROP, GRID_CLOSE_POSITION_PATH)
        sim.inject_fault(FaultKind.HTTP_500_HTML, GRID_POSITIONS_PATH)
        action, ord_id = await _demo._close(client, position, market=True)
    assert action.startswith("close outcome unknown; reading the grid failed: HTTP 500")
    assert ord_id == ""


async def test_the_demo_shows_a_refused_close_and_a_failed_read(
    sim: GridSimulator, account: SimAccount, make_client: ClientFactory
) -> None:
    grid = sim.add_grid(account.user_id, pos=8, state="running")
    async with make_client() as client:
        position = await _position(client, grid.algo_id)
        action, _ = await _demo._close(client, position, market=False)
        sent = len(sim.requests)
        await _demo._read_again(client, [])  # nothing acted on: nothing read
    assert len(sim.requests) == sent
    assert action.startswith("close failed: OKX code 51059")
    unread = SweepResult(grid.algo_id, None, GridNotFoundError("51293", "gone", 200))
    assert _demo._no_action(unread, "") == "read failed: OKX code 51293 (HTTP 200): gone"
