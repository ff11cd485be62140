"""okx-grid positions and sweep, in process against the simulator: rows, states, errors.

`cli` (tests/cli_runner.py) runs ``main(argv)`` with the account's credentials in
the environment and checks that no run shows the secret key or the passphrase.
"""

from __future__ import annotations

import sys
from decimal import Decimal

import pytest

from okx_grid_async._constants import (
    ACCOUNT_CONFIG_PATH,
    GRID_MAX_RATE,
    GRID_ORDERS_PENDING_PATH,
    GRID_POSITIONS_PATH,
)
from okx_grid_async._metrics_report import MetricsReport
from okx_grid_async.cli._exit import (
    EXIT_API_ERROR,
    EXIT_NETWORK,
    EXIT_OK,
    EXIT_SOME_FAILED,
)
from okx_grid_async.simulator import FaultKind, GridSimulator, SimAccount, max_in_window

from .cli_runner import Cli
from .conftest import ClientFactory

UNKNOWN_ALGO = "999999999999999999"
GRID_HEADER = ["ALGO_ID", "STATE", "INST_ID", "POS", "AVG_PX", "MARK_PX", "UPL", "NOTE"]


# ---------------------------------------------------------------- positions


async def test_positions_prints_json_with_decimals_as_strings_and_the_state(
    cli: Cli, sim: GridSimulator, account: SimAccount
) -> None:
    grid = sim.add_grid(account.user_id, pos=35, avg_px="29215.01", mark_px="29213.9")
    run = await cli("positions", grid.algo_id, "--json", "--demo-trading", "--user-id",
                    account.user_id)  # fmt: skip

    assert run.code == EXIT_OK, run.err
    [entry] = run.json()["grids"]
    assert (entry["algo_id"], entry["state"], entry["error"]) == (
        grid.algo_id,
        "no_close_position",
        None,
    )
    [row] = entry["positions"]
    assert row["inst_id"] == "BTC-USDT-SWAP"
    assert (row["pos"], row["avg_px"], row["mark_px"]) == ("35", "29215.01", "29213.9")
    assert Decimal(row["upl"]) == (Decimal("29213.9") - Decimal("29215.01")) * 35 * Decimal("0.01")
    assert row["c_time"].endswith("Z")
    assert {"lever", "liq_px", "imr", "mmr", "upl_ratio", "notional_usd"} <= row.keys()
    assert {r.demo for r in sim.requests if r.path == GRID_POSITIONS_PATH} == {True}


async def test_positions_table_has_a_state_column(
    cli: Cli, sim: GridSimulator, account: SimAccount
) -> None:
    stopped = sim.add_grid(account.user_id, pos=35, avg_px="29215.01", mark_px="29213.9")
    running = sim.add_grid(account.user_id, pos=-2, state="running")
    run = await cli("positions", stopped.algo_id, running.algo_id)
    assert run.code == EXIT_OK, run.err
    header, first, second = run.out.splitlines()
    assert header.split() == GRID_HEADER
    assert first.split()[:6] == [
        stopped.algo_id, "no_close_position", "BTC-USDT-SWAP", "35", "29215.01", "29213.9"
    ]  # fmt: skip
    assert second.split()[:4] == [running.algo_id, "running", "BTC-USDT-SWAP", "-2"]
    assert run.err == ""


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
async def test_positions_shows_every_grid_and_names_the_failing_ones(
    cli: Cli, sim: GridSimulator, account: SimAccount, as_json: bool
) -> None:
    first = sim.add_grid(account.user_id, pos=3)
    last = sim.add_grid(account.user_id, pos=0)
    ids = (first.algo_id, UNKNOWN_ALGO, last.algo_id)
    run = await cli("positions", *ids, *(["--json"] if as_json else []))

    assert run.code == EXIT_API_ERROR
    # stderr names the failing id, with OKX's code; the good ones are not there.
    [error] = [line for line in run.err.splitlines() if "error:" in line]
    assert error.startswith(f"okx-grid: error: grid {UNKNOWN_ALGO}: OKX code 51293")
    if as_json:
        grids = run.json()["grids"]
        assert [g["algo_id"] for g in grids] == list(ids)
        assert [g["error"] is None for g in grids] == [True, False, True]
        assert grids[1]["error"]["type"] == "GridNotFoundError"
        assert grids[1]["state"] == ""  # not in the pending list
        assert (grids[0]["positions"][0]["pos"], grids[2]["positions"][0]["pos"]) == ("3", "0")
    else:
        _, *rows = run.out.splitlines()
        assert [row.split()[0] for row in rows] == list(ids)
        assert rows[1].split()[1:5] == ["not", "pending", "error:", "OKX"]
        assert rows[2].endswith("empty")


async def test_positions_reads_a_repeated_id_once(
    cli: Cli, sim: GridSimulator, account: SimAccount
) -> None:
    grid = sim.add_grid(account.user_id)
    run = await cli("positions", grid.algo_id, grid.algo_id, "--json")
    assert run.code == EXIT_OK, run.err
    assert len(run.json()["grids"]) == 1
    assert len(sim.arrivals(account.user_id, GRID_POSITIONS_PATH)) == 1


async def test_a_state_list_that_fails_leaves_state_unknown_and_says_why(
    cli: Cli, sim: GridSimulator, account: SimAccount
) -> None:
    grid = sim.add_grid(account.user_id, pos=4)
    sim.inject_fault(FaultKind.HTTP_500_HTML, GRID_ORDERS_PENDING_PATH, count=10)
    run = await cli("--timeout", "2", "positions", grid.algo_id)
    assert run.code == EXIT_OK, run.err
    assert run.out.splitlines()[1].split()[:2] == [grid.algo_id, "?"]
    assert run.err.startswith("okx-grid: the grids' states could not be read (STATE shows ?): ")


async def test_a_network_failure_exits_5(cli: Cli, closed_port: int) -> None:
    run = await cli.run("--base-url", f"http://127.0.0.1:{closed_port}", "positions", "1")
    assert run.code == EXIT_NETWORK
    assert run.err.startswith("okx-grid: error: ")
    assert run.out == ""


@pytest.mark.parametrize(
    ("option", "environment", "used"),
    [
        (False, True, "environment"),
        (True, True, "option"),
        (True, False, "option"),
    ],
)
async def test_the_base_url_comes_from_okx_base_url_unless_given(
    cli: Cli,
    sim: GridSimulator,
    account: SimAccount,
    closed_port: int,
    clean_environment: pytest.MonkeyPatch,
    option: bool,
    environment: bool,
    used: str,
) -> None:
    grid = sim.add_grid(account.user_id)
    nowhere = f"http://127.0.0.1:{closed_port}"
    if environment:
        clean_environment.setenv("OKX_BASE_URL", sim.url if used == "environment" else nowhere)
    args = ("--base-url", sim.url) if option else ()
    run = await cli.run(*args, "positions", grid.algo_id)
    assert run.code == EXIT_OK, run.err


# ---------------------------------------------------------------- sweep


async def test_sweep_of_ids_shows_states_positions_empties_and_errors(
    cli: Cli, sim: GridSimulator, account: SimAccount
) -> None:
    full = sim.add_grid(account.user_id, pos=35)
    empty = sim.add_grid(account.user_id, pos=0)
    running = sim.add_grid(account.user_id, pos=5, state="running")
    ids = (UNKNOWN_ALGO, full.algo_id, empty.algo_id, running.algo_id)
    as_json = await cli("sweep", *ids, "--json")
    as_table = await cli("sweep", *ids)

    assert as_json.code == EXIT_SOME_FAILED
    doc = as_json.json()
    assert [g["algo_id"] for g in doc["grids"]] == list(ids)
    unknown, with_position, without, _ = doc["grids"]
    assert (unknown["positions"], unknown["error"]["code"]) == (None, "51293")
    assert unknown["error"]["type"] == "GridNotFoundError"
    assert (with_position["positions"][0]["pos"], with_position["error"]) == ("35", None)
    assert (without["positions"][0]["pos"], without["error"]) == ("0", None)
    assert [g["state"] for g in doc["grids"]] == ["", "no_close_position", "no_close_position",
                                                   "running"]  # fmt: skip
    assert (doc["with_position"], doc["closable"], doc["empty"], doc["failed"]) == (2, 1, 1, 1)

    assert as_table.code == EXIT_SOME_FAILED
    lines = as_table.out.splitlines()
    assert lines[0].split() == GRID_HEADER
    assert "error: OKX code 51293" in lines[1]
    assert lines[3].endswith("empty")
    assert lines[4].split()[:2] == [running.algo_id, "running"]
    assert lines[-1] == "4 grids: 2 with a position (1 closable), 1 empty, 1 failed"
    # stderr is not a terminal here: no progress bar, and sweep names no failure there.
    assert as_table.err == ""


async def test_sweep_pending_discovers_every_pending_grid_with_its_state(
    cli: Cli, sim: GridSimulator, account: SimAccount
) -> None:
    grids = sim.add_demo_grids(account.user_id, 15)
    pending = {g.algo_id: g.state for g in grids if g.state != "stopped"}
    run = await cli("sweep", "--pending", "--concurrency", "5", "--json")
    assert run.code == EXIT_OK, run.err
    doc = run.json()
    assert [g["algo_id"] for g in doc["grids"]] == sorted(pending, key=int, reverse=True)
    assert {g["algo_id"]: g["state"] for g in doc["grids"]} == pending
    assert (doc["with_position"], doc["failed"]) == (len(pending), 0)
    assert len(sim.arrivals(account.user_id, GRID_ORDERS_PENDING_PATH)) == 1


async def test_sweep_of_an_account_without_grids_says_so(cli: Cli) -> None:
    run = await cli("sweep", "--pending")
    assert (run.code, run.out) == (EXIT_OK, "no grids found\n")


async def test_sweep_far_above_the_budget_queues_and_fails_nothing(
    cli: Cli, sim: GridSimulator, account: SimAccount
) -> None:
    """60 grids at concurrency 300 queue 4 s at 20 per 2 s: past a 1 s --timeout, no failure."""
    sim.add_demo_grids(account.user_id, 60)
    run = await cli("sweep", "--pending", "--concurrency", "300", "--timeout", "1", "--json")
    assert run.code == EXIT_OK, run.err
    doc = run.json()
    assert doc["failed"] == 0
    arrivals = sim.arrivals(account.user_id, GRID_POSITIONS_PATH)
    assert len(arrivals) == len(doc["grids"]) > 40
    assert [a.code for a in arrivals].count("50011") == 0
    assert max_in_window([a.t for a in arrivals], 2.0) <= GRID_MAX_RATE


async def test_a_wait_past_wait_timeout_fails_those_grids_and_sends_nothing_for_them(
    cli: Cli, sim: GridSimulator, account: SimAccount
) -> None:
    grids = sim.add_demo_grids(account.user_id, 30)
    ids = [g.algo_id for g in grids[:25]]
    # 25 reads, 20 per 2 s: the last five would wait 2 s; they give up at once instead.
    run = await cli("sweep", *ids, "--wait-timeout", "0.5", "--json")
    assert run.code == EXIT_SOME_FAILED, run.err
    failed = [g for g in run.json()["grids"] if g["error"] is not None]
    assert len(failed) == 5
    assert {g["error"]["type"] for g in failed} == {"WaitTimeoutError"}
    assert all("nothing was sent" in g["error"]["message"] for g in failed)
    assert len(sim.arrivals(account.user_id, GRID_POSITIONS_PATH)) == 20


# ---------------------------------------------------------------- --redis-url


async def _budget_keys(redis_url: str, user_id: str) -> list[bytes | str]:
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url)
    try:
        keys: list[bytes | str] = await client.keys(f"okx-grid:{{{user_id}}}:*")
    finally:
        await client.aclose()
    return keys


async def test_redis_url_paces_through_the_shared_limiter(
    cli: Cli, sim: GridSimulator, account: SimAccount, redis_url: str
) -> None:
    grid = sim.add_grid(account.user_id)
    run = await cli("--redis-url", redis_url, "--user-id", account.user_id, "sweep",
                    grid.algo_id, "--json")  # fmt: skip
    assert run.code == EXIT_OK, run.err
    assert run.json()["with_position"] == 1
    assert await _budget_keys(redis_url, account.user_id)  # where other processes see it


async def test_unreachable_redis_exits_5_before_any_grid_request(
    cli: Cli, sim: GridSimulator, account: SimAccount, closed_port: int
) -> None:
    grid = sim.add_grid(account.user_id)
    run = await cli("--redis-url", f"redis://:hunter2@127.0.0.1:{closed_port}/0", "positions",
                    grid.algo_id, "--json")  # fmt: skip
    assert run.code == EXIT_NETWORK
    assert "redis" in run.err.lower()
    assert "hunter2" not in run.err + run.out
    [grid_read] = run.json()["grids"]
    assert grid_read["error"]["type"] == "RateLimiterUnavailableError"
    # The states' list failed the same way: not said twice.
    assert "states could not be read" not in run.err
    # Reading the key's User ID (account/config, paced in process) is all that was sent.
    assert [a.path for a in sim.arrivals(account.user_id)] == [ACCOUNT_CONFIG_PATH]


async def test_the_redis_url_can_come_from_the_environment_and_the_option_wins(
    cli: Cli,
    sim: GridSimulator,
    account: SimAccount,
    redis_url: str,
    closed_port: int,
    clean_environment: pytest.MonkeyPatch,
) -> None:
    grid = sim.add_grid(account.user_id)
    # No --redis-url on the command line: the password stays out of `ps`.
    clean_environment.setenv("OKX_GRID_REDIS_URL", redis_url)
    shared = await cli("--user-id", account.user_id, "sweep", grid.algo_id)
    assert shared.code == EXIT_OK, shared.err
    assert await _budget_keys(redis_url, account.user_id)

    clean_environment.setenv("OKX_GRID_REDIS_URL", f"redis://:hunter2@127.0.0.1:{closed_port}/0")
    unreachable = await cli("positions", grid.algo_id)
    assert unreachable.code == EXIT_NETWORK
    assert "redis" in unreachable.err.lower()
    assert "hunter2" not in unreachable.err + unreachable.out
    option_wins = await cli("--redis-url", redis_url, "positions", grid.algo_id)
    assert option_wins.code == EXIT_OK, option_wins.err


# ---------------------------------------------------------------- --metrics


async def test_metrics_prints_the_run_s_opentelemetry_figures_on_stderr(
    cli: Cli, sim: GridSimulator, account: SimAccount
) -> None:
    grid = sim.add_grid(account.user_id)
    run = await cli("positions", grid.algo_id, "--user-id", account.user_id, "--metrics")
    assert run.code == EXIT_OK, run.err
    lines = run.err.splitlines()
    assert lines[0] == "okx-grid: metrics (OpenTelemetry):"
    endpoint = f"endpoint={GRID_POSITIONS_PATH}"
    assert f"  okx_grid.requests{{{endpoint},outcome=ok}} 1 {{request}}" in lines
    assert f"  okx_grid.limiter.queue{{{endpoint}}} 0 {{request}}" in lines
    # The read of the position, and the one of the pending list for its state.
    waits = [line for line in lines if line.startswith("  okx_grid.limiter.wait.duration")]
    assert [w.split("} ")[0].split("=")[1] for w in waits] == sorted(
        [GRID_POSITIONS_PATH, GRID_ORDERS_PENDING_PATH]
    )
    assert all(" count=1 sum=" in w for w in waits)
    assert account.user_id not in run.err
    assert grid.algo_id not in run.err


async def test_metrics_without_the_sdk_come_from_the_rate_limiter(
    sim: GridSimulator,
    account: SimAccount,
    make_client: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.metrics", None)
    report = MetricsReport()
    assert report.meter_provider is None
    grid = sim.add_grid(account.user_id)
    async with make_client() as client:
        await client.get_positions(grid.algo_id)
        text = report.render(client)
    first, line = text.splitlines()
    assert first == "metrics (rate limiter; install opentelemetry-sdk for all of them):"
    assert line.startswith(f"  {GRID_POSITIONS_PATH}: granted=1 waited=")
