"""okx-grid close and cancel in process against the simulator, their hints, and Ctrl-C.

The Ctrl-C tests run ``main`` in the main thread, where SIGINT is delivered,
against a simulator served from another thread (`SimulatorThread`).
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest

from okx_grid_async._constants import GRID_CLOSE_POSITION_PATH, GRID_POSITIONS_PATH
from okx_grid_async.cli import main
from okx_grid_async.cli._exit import (
    EXIT_API_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_OUTCOME_UNKNOWN,
)
from okx_grid_async.simulator import FaultKind, GridSimulator, SimAccount

from .cli_runner import Cli, SimulatorThread

UNKNOWN_ALGO = "999999999999999999"


async def test_close_market_closes_the_grid(
    cli: Cli, sim: GridSimulator, account: SimAccount
) -> None:
    grid = sim.add_grid(account.user_id, pos=-12)
    as_json = await cli("close", grid.algo_id, "--market", "--json")
    assert as_json.code == EXIT_OK, as_json.err
    assert (as_json.json()["algo_id"], as_json.json()["ord_id"]) == (grid.algo_id, "")
    assert (grid.state, grid.pos, sim.close_calls(grid.algo_id)) == ("stopped", Decimal(0), 1)

    other = sim.add_grid(account.user_id, pos=3)
    as_text = await cli("close", other.algo_id, "--market")
    assert as_text.out == f"grid {other.algo_id}: position closed at market\n"


@pytest.mark.parametrize(
    ("sz", "px", "said"),
    [
        ("1", "30000", "1 contract at 30000"),
        ("2.5", "29999.9", "2.5 contracts at 29999.9"),
        ("0.1", "30000.0", "0.1 contracts at 30000.0"),
    ],
)
async def test_a_limit_close_says_what_it_placed(
    cli: Cli, sim: GridSimulator, account: SimAccount, sz: str, px: str, said: str
) -> None:
    grid = sim.add_grid(account.user_id, pos=35, mark_px="29213.9")
    run = await cli("close", grid.algo_id, "--sz", sz, "--px", px)
    assert run.code == EXIT_OK, run.err
    [order] = grid.orders
    assert (order.sz, order.px, order.state) == (Decimal(sz), Decimal(px), "live")
    assert run.out == f"grid {grid.algo_id}: limit close order {order.ord_id} placed for {said}\n"
    bodies = [json.loads(r.body) for r in sim.requests if r.path == GRID_CLOSE_POSITION_PATH]
    assert bodies == [{"algoId": grid.algo_id, "mktClose": False, "sz": sz, "px": px}]


async def test_cancel_cancels_the_close_order_so_the_grid_can_be_closed_again(
    cli: Cli, sim: GridSimulator, account: SimAccount
) -> None:
    grid = sim.add_grid(account.user_id, pos=10, mark_px="29000")
    placed = await cli("close", grid.algo_id, "--sz", "2", "--px", "29500", "--json")
    assert placed.code == EXIT_OK, placed.err
    ord_id = placed.json()["ord_id"]
    refused = await cli("close", grid.algo_id, "--market")
    assert refused.code == EXIT_API_ERROR  # 51342: a closing order already exists
    cancelled = await cli("cancel", grid.algo_id, ord_id, "--json")
    assert cancelled.code == EXIT_OK, cancelled.err
    assert cancelled.json()["ord_id"] == ord_id
    assert [o.state for o in grid.orders] == ["canceled"]
    as_text = await cli("close", grid.algo_id, "--sz", "1", "--px", "29500")
    cancelled_text = await cli("cancel", grid.algo_id, grid.orders[-1].ord_id)
    assert cancelled_text.out == (
        f"grid {grid.algo_id}: close order {grid.orders[-1].ord_id} cancelled\n"
    ), as_text.err
    closed = await cli("close", grid.algo_id, "--market")
    assert closed.code == EXIT_OK, closed.err
    again = await cli("cancel", grid.algo_id, ord_id, "--json")
    assert again.code == EXIT_API_ERROR
    assert again.json()["error"]["type"] == "OrderNotFoundError"


# ---------------------------------------------------------------- errors and their hints


async def _running(cli: Cli) -> str:
    return cli.sim.add_grid(cli.account.user_id, state="running").algo_id


async def _with_a_close_order(cli: Cli) -> str:
    """A grid with a limit close order waiting, placed by ``okx-grid close``; its ord_id."""
    grid = cli.sim.add_grid(cli.account.user_id, pos=10, mark_px="29000")
    placed = await cli("close", grid.algo_id, "--sz", "2", "--px", "29500")
    assert placed.code == EXIT_OK, placed.err
    return grid.algo_id


async def _unknown(cli: Cli) -> str:
    return UNKNOWN_ALGO


@pytest.mark.parametrize(
    ("grid", "error_type", "code", "hint"),
    [
        pytest.param(
            _running,
            "GridStateError",
            "51059",
            "only a grid stopped with its position kept (STATE no_close_position) can be "
            "closed: see its STATE with 'okx-grid positions {algo_id}'",
            id="running-51059",
        ),
        pytest.param(
            _with_a_close_order,
            "ClosingOrderExistsError",
            "51342",
            "a limit close order of this grid is waiting: cancel it with "
            "'okx-grid cancel {algo_id} ORD_ID'",
            id="close-order-51342",
        ),
        pytest.param(_unknown, "GridNotFoundError", "51293", None, id="unknown-51293"),
    ],
)
async def test_a_refused_close_exits_3_with_its_type_code_and_hint(
    cli: Cli,
    grid: Callable[[Cli], Awaitable[str]],
    error_type: str,
    code: str,
    hint: str | None,
) -> None:
    algo_id = await grid(cli)
    run = await cli("close", algo_id, "--market", "--json")
    assert run.code == EXIT_API_ERROR
    error = run.json()["error"]
    assert (error["type"], error["code"], error["http_status"]) == (error_type, code, 200)
    lines = run.err.splitlines()
    assert lines[0] == f"okx-grid: error: {error['message']}"
    if hint is None:
        assert len(lines) == 1
    else:
        assert lines[1].startswith(f"okx-grid: hint: {hint.format(algo_id=algo_id)}")


async def test_an_unknown_outcome_exits_4_with_the_reconcile_advice(
    cli: Cli, sim: GridSimulator, account: SimAccount
) -> None:
    grid = sim.add_grid(account.user_id)
    sim.inject_fault(FaultKind.APPLY_THEN_DROP, GRID_CLOSE_POSITION_PATH)
    run = await cli("close", grid.algo_id, "--market", "--json")
    assert run.code == EXIT_OUTCOME_UNKNOWN
    assert run.err.startswith(f"okx-grid: error: outcome unknown for algo {grid.algo_id}")
    assert f"run 'okx-grid positions {grid.algo_id}'" in run.err
    error = run.json()["error"]
    assert (error["type"], error["algo_id"]) == ("OutcomeUnknownError", grid.algo_id)
    assert error["request"]["mktClose"] is True
    assert error["advice"].startswith("the close may have been executed")
    # The close was executed once and never sent again.
    assert sim.close_calls(grid.algo_id) == 1
    assert grid.state == "stopped"


async def test_an_unknown_cancel_outcome_advises_for_the_cancel(
    cli: Cli, sim: GridSimulator, account: SimAccount
) -> None:
    algo_id = await _with_a_close_order(cli)
    [order] = sim.grid(algo_id).orders
    sim.inject_fault(FaultKind.APPLY_THEN_DROP)
    run = await cli("cancel", algo_id, order.ord_id)
    assert run.code == EXIT_OUTCOME_UNKNOWN
    assert "okx-grid: hint: the cancel may have been executed" in run.err


# ---------------------------------------------------------------- Ctrl-C


def _interrupt_when(ready: Callable[[], bool]) -> threading.Thread:
    """A thread sending SIGINT to the main thread once ``ready()``, as Ctrl-C would.

    It gives up (sending nothing) after 20 s, so that a run that never gets
    there fails on its own instead of being interrupted at a random place.
    """
    main_thread = threading.main_thread().ident
    assert main_thread is not None

    def wait_then_interrupt() -> None:
        deadline = time.monotonic() + 20.0
        while not ready():
            if time.monotonic() > deadline:
                return
            time.sleep(0.02)
        signal.pthread_kill(main_thread, signal.SIGINT)

    thread = threading.Thread(target=wait_then_interrupt, name="ctrl-c")
    thread.start()
    return thread


def _login(threaded: SimulatorThread, env: pytest.MonkeyPatch) -> SimAccount:
    account = threaded.call(lambda sim: sim.add_account())
    env.setenv("OKX_API_KEY", account.api_key)
    env.setenv("OKX_SECRET_KEY", account.secret_key)
    env.setenv("OKX_PASSPHRASE", account.passphrase)
    env.setenv("OKX_BASE_URL", threaded.call(lambda sim: sim.url))
    return account


def test_ctrl_c_during_a_close_exits_4_with_the_advice(
    clean_environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with SimulatorThread() as threaded:
        account = _login(threaded, clean_environment)
        grid = threaded.call(lambda sim: sim.add_grid(account.user_id))
        threaded.call(
            lambda sim: sim.inject_fault(FaultKind.APPLY_THEN_HANG, GRID_CLOSE_POSITION_PATH)
        )
        ctrl_c = _interrupt_when(lambda: threaded.call(lambda s: s.close_calls(grid.algo_id)) > 0)
        code = main(["close", grid.algo_id, "--market", "--json", "--timeout", "30"])
        ctrl_c.join()
    out, err = capsys.readouterr()
    assert code == EXIT_OUTCOME_UNKNOWN
    assert err.splitlines() == [
        f"okx-grid: error: interrupted during the close of grid {grid.algo_id}",
        f"okx-grid: hint: the close may have been executed: run 'okx-grid positions "
        f"{grid.algo_id}' and check the position before trying again",
    ]
    error = json.loads(out)["error"]
    assert (error["type"], error["algo_id"]) == ("InterruptionError", grid.algo_id)


def test_ctrl_c_during_a_read_exits_130(
    clean_environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with SimulatorThread() as threaded:
        account = _login(threaded, clean_environment)
        grid = threaded.call(lambda sim: sim.add_grid(account.user_id))
        threaded.call(lambda sim: sim.inject_fault(FaultKind.APPLY_THEN_HANG, GRID_POSITIONS_PATH))

        def reading() -> bool:
            return bool(threaded.call(lambda s: s.arrivals(account.user_id, GRID_POSITIONS_PATH)))

        ctrl_c = _interrupt_when(reading)
        code = main(["sweep", grid.algo_id, "--timeout", "30", "--json"])
        ctrl_c.join()
    out, err = capsys.readouterr()
    assert code == EXIT_INTERRUPTED
    assert err == "okx-grid: error: interrupted\n"
    assert json.loads(out)["error"]["type"] == "InterruptionError"
