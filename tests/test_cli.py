"""okx-grid end to end: every command runs in a subprocess against a simulator served by the test.

The subprocesses are started with asyncio so the simulator, in this event loop,
keeps answering while they run. Every run is checked for the account's secret
key and passphrase in its output: they must never appear.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from okx_grid_async import (
    DeadlineExceededError,
    GridNotFoundError,
    InvalidArgumentError,
    MalformedResponseError,
    OKXError,
    OutcomeUnknownError,
    TransportError,
)
from okx_grid_async._cli import (
    EXIT_API_ERROR,
    EXIT_NETWORK,
    EXIT_OK,
    EXIT_OUTCOME_UNKNOWN,
    EXIT_SOME_FAILED,
    EXIT_USAGE,
    Progress,
    exit_code_for,
)
from okx_grid_async._constants import (
    ACCOUNT_CONFIG_PATH,
    GRID_CLOSE_POSITION_PATH,
    GRID_MAX_RATE,
    GRID_ORDERS_PENDING_PATH,
    GRID_POSITIONS_PATH,
)
from okx_grid_async._metrics_report import MetricsReport
from okx_grid_async.simulator import (
    DEMO_API_KEY,
    DEMO_PASSPHRASE,
    DEMO_SECRET_KEY,
    FaultKind,
    GridSimulator,
    SimAccount,
    max_in_window,
)

from .conftest import ClientFactory

RUN_TIMEOUT = 30.0
UNKNOWN_ALGO = "999999999999999999"


@dataclass(frozen=True)
class Run:
    """One finished okx-grid process."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def environment(credentials: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any OKX_ variable, plus ``credentials``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("OKX_")}
    env.update(credentials or {})
    return env


async def okx_grid(*args: str, env: Mapping[str, str], secrets: Sequence[str] = ()) -> Run:
    """Run ``python -m okx_grid_async ARGS`` to the end; fails if a secret is in its output."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "okx_grid_async",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env),
    )
    try:
        async with asyncio.timeout(RUN_TIMEOUT):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    run = Run(proc.returncode, out.decode(), err.decode())
    for secret in secrets:
        assert secret not in run.out
        assert secret not in run.err
    return run


class Cli:
    """okx-grid with the account's credentials in the environment."""

    def __init__(self, sim: GridSimulator, account: SimAccount) -> None:
        self.sim = sim
        self.account = account
        self.env = environment(
            {
                "OKX_API_KEY": account.api_key,
                "OKX_SECRET_KEY": account.secret_key,
                "OKX_PASSPHRASE": account.passphrase,
            }
        )

    async def __call__(self, *args: str) -> Run:
        """Run a command against the simulator (``--base-url`` its URL)."""
        return await self.run("--base-url", self.sim.url, *args)

    async def run(self, *args: str, env: Mapping[str, str] | None = None) -> Run:
        secrets = (self.account.secret_key, self.account.passphrase)
        return await okx_grid(*args, env=self.env if env is None else env, secrets=secrets)


# ``sim`` (a started GridSimulator) and ``account`` (an account on it) come from conftest.py.
@pytest.fixture
def cli(sim: GridSimulator, account: SimAccount) -> Cli:
    return Cli(sim, account)


# ---------------------------------------------------------------- positions


async def test_positions_prints_json_with_decimals_as_strings(
    cli: Cli, sim: GridSimulator, account: SimAccount
) -> None:
    grid = sim.add_grid(account.user_id, pos=35, avg_px="29215.01", mark_px="29213.9")
    as_json, as_table = await asyncio.gather(
        cli("positions", grid.algo_id, "--json", "--demo-trading", "--user-id", account.user_id),
        cli("positions", grid.algo_id),
    )

    assert as_json.code == EXIT_OK, as_json.err
    [entry] = as_json.json()["grids"]
    assert entry["algo_id"] == grid.algo_id
    assert entry["error"] is None
    [row] = entry["positions"]
    assert row["inst_id"] == "BTC-USDT-SWAP"
    assert row["pos"] == "35"
    assert row["avg_px"] == "29215.01"
    assert row["mark_px"] == "29213.9"
    assert Decimal(row["upl"]) == (Decimal("29213.9") - Decimal("29215.01")) * 35 * Decimal("0.01")
    assert row["c_time"].endswith("Z")
    assert {"lever", "liq_px", "imr", "mmr", "upl_ratio", "notional_usd"} <= row.keys()
    positions = [r for r in sim.requests if r.path == GRID_POSITIONS_PATH]
    assert sorted(r.demo for r in positions) == [False, True]  # the --demo-trading run only

    assert as_table.code == EXIT_OK, as_table.err
    header, line = as_table.out.splitlines()
    assert header.split() == ["ALGO_ID", "INST_ID", "POS", "AVG_PX", "MARK_PX", "UPL", "NOTE"]
    assert line.split()[:5] == [grid.algo_id, "BTC-USDT-SWAP", "35", "29215.01", "29213.9"]


async def test_an_api_error_exits_3_with_one_error_line(cli: Cli) -> None:
    run = await cli("positions", UNKNOWN_ALGO, "--json")
    assert run.code == EXIT_API_ERROR
    assert run.err.splitlines()[0].startswith("okx-grid: error: OKX code 51293")
    error = run.json()["error"]
    assert (error["type"], error["code"]) == ("GridNotFoundError", "51293")


async def test_a_network_failure_exits_5(cli: Cli, closed_port: int) -> None:
    run = await cli.run("--base-url", f"http://127.0.0.1:{closed_port}", "positions", "1")
    assert run.code == EXIT_NETWORK
    assert run.err.startswith("okx-grid: error: ")


# ---------------------------------------------------------------- close


async def test_close_market_closes_the_grid(
    cli: Cli, sim: GridSimulator, account: SimAccount
) -> None:
    grid = sim.add_grid(account.user_id, pos=-12)
    run = await cli("close", grid.algo_id, "--market", "--json")
    assert run.code == EXIT_OK, run.err
    result = run.json()
    assert (result["algo_id"], result["ord_id"]) == (grid.algo_id, "")
    assert grid.state == "stopped"
    assert grid.pos == 0
    assert sim.close_calls(grid.algo_id) == 1


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
    closed = await cli("close", grid.algo_id, "--market")
    assert closed.code == EXIT_OK, closed.err
    again = await cli("cancel", grid.algo_id, ord_id)
    assert again.code == EXIT_API_ERROR


async def test_close_with_size_and_price_sends_them_as_decimal_text(
    cli: Cli, sim: GridSimulator, account: SimAccount
) -> None:
    grid = sim.add_grid(account.user_id, pos=35, mark_px="29213.9")
    other = sim.add_grid(account.user_id, pos=35, mark_px="29213.9")
    as_json, as_text = await asyncio.gather(
        cli("close", grid.algo_id, "--sz", "2.5", "--px", "29999.9", "--json"),
        cli("close", other.algo_id, "--sz", "0.1", "--px", "30000"),
    )

    assert as_json.code == EXIT_OK, as_json.err
    [order] = grid.orders
    assert as_json.json()["ord_id"] == order.ord_id != ""
    assert (order.sz, order.px, order.state) == (Decimal("2.5"), Decimal("29999.9"), "live")
    bodies = [json.loads(r.body) for r in sim.requests if r.path == GRID_CLOSE_POSITION_PATH]
    sent = next(b for b in bodies if b["algoId"] == grid.algo_id)
    assert sent == {"algoId": grid.algo_id, "mktClose": False, "sz": "2.5", "px": "29999.9"}

    assert as_text.code == EXIT_OK, as_text.err
    [other_order] = other.orders
    assert other_order.sz == Decimal("0.1")
    assert as_text.out.strip() == (
        f"grid {other.algo_id}: limit close order {other_order.ord_id} placed for "
        "0.1 contracts at 30000"
    )


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
    # The close was executed once and never sent again.
    assert sim.close_calls(grid.algo_id) == 1
    assert grid.state == "stopped"


# ---------------------------------------------------------------- usage errors


async def test_bad_arguments_exit_2_and_send_nothing(cli: Cli, account: SimAccount) -> None:
    bad = [
        ["positions"],
        ["positions", "12ab"],
        ["positions", account.secret_key],
        ["close", "1"],
        ["close", "1", "--market", "--sz", "1", "--px", "1"],
        ["close", "1", "--market", "--px", "1"],
        ["close", "1", "--sz", "1"],
        ["close", "1", "--sz", "-1", "--px", "100"],
        ["close", "1", "--sz", "0", "--px", "100"],
        ["close", "1", "--sz", "nan", "--px", "100"],
        ["close", "1", "--sz", "1", "--px", account.passphrase],
        ["close", "1", "--sz", "1", "--px", "1e999999999"],  # not 10**9 digits sent
        ["close", "1", "--sz", "1_000", "--px", "100"],
        ["close", "1", "--sz", "1", "--px", "\uff11\uff10\uff10"],  # full-width digits
        ["sweep"],
        ["sweep", "1", "--pending"],
        ["sweep", "--pending", "--concurrency", "0"],
        ["--timeout", "0", "positions", "1"],
        ["positions", "1", "--base-url", "http://example.com"],
        ["positions", "1", "--user-id", "not-digits"],
        ["demo"],  # --base-url does not apply to the demo
        ["frobnicate"],
    ]
    runs = await asyncio.gather(*(cli(*args) for args in bad))
    for args, run in zip(bad, runs, strict=True):
        assert run.code == EXIT_USAGE, (args, run)
        assert "okx-grid: error: " in run.err, (args, run.err)
        assert run.out == "", args
    assert cli.sim.requests == []


async def test_missing_credentials_are_named_and_nothing_is_sent(cli: Cli) -> None:
    run = await cli.run(
        "--base-url", cli.sim.url, "positions", "1", env=environment({"OKX_API_KEY": "k"})
    )
    assert run.code == EXIT_USAGE
    [line] = run.err.splitlines()
    assert line.startswith("okx-grid: error: missing environment variable(s): ")
    for name in ("OKX_API_KEY", "OKX_SECRET_KEY", "OKX_PASSPHRASE"):
        assert name in line
    assert run.out == ""
    assert cli.sim.requests == []


async def test_a_credential_with_a_line_ending_exits_2_naming_it_and_sends_nothing(
    cli: Cli, account: SimAccount
) -> None:
    # A .env file with CRLF line endings leaves a CR at the end of every value.
    env = dict(cli.env, OKX_PASSPHRASE=account.passphrase + "\r")
    as_text, as_json = await asyncio.gather(
        cli.run("--base-url", cli.sim.url, "positions", "1", env=env),
        cli.run("--base-url", cli.sim.url, "positions", "1", "--json", env=env),
    )
    for run in (as_text, as_json):
        assert run.code == EXIT_USAGE, run
        [line] = run.err.splitlines()
        assert line.startswith("okx-grid: error: OKX_PASSPHRASE contains a control character (CR)")
        assert "Traceback" not in run.err
    assert as_text.out == ""
    error = as_json.json()["error"]
    assert error["message"].startswith("OKX_PASSPHRASE contains a control character (CR)")
    assert cli.sim.requests == []


# ---------------------------------------------------------------- sweep


async def test_sweep_of_ids_shows_positions_empties_and_errors(
    cli: Cli, sim: GridSimulator, account: SimAccount
) -> None:
    full = sim.add_grid(account.user_id, pos=35)
    empty = sim.add_grid(account.user_id, pos=0)
    ids = (UNKNOWN_ALGO, full.algo_id, empty.algo_id)
    as_json, as_table = await asyncio.gather(cli("sweep", *ids, "--json"), cli("sweep", *ids))

    assert as_json.code == EXIT_SOME_FAILED
    doc = as_json.json()
    assert [g["algo_id"] for g in doc["grids"]] == list(ids)
    unknown, with_position, without = doc["grids"]
    assert (unknown["positions"], unknown["error"]["code"]) == (None, "51293")
    assert (with_position["positions"][0]["pos"], with_position["error"]) == ("35", None)
    assert (without["positions"][0]["pos"], without["error"]) == ("0", None)
    assert (doc["with_position"], doc["empty"], doc["failed"]) == (1, 1, 1)

    assert as_table.code == EXIT_SOME_FAILED
    lines = as_table.out.splitlines()
    assert "error: OKX code 51293" in lines[1]
    assert lines[3].endswith("empty")
    assert lines[-1] == "3 grids: 1 with a position, 1 empty, 1 failed"
    # stderr is a pipe here, not a terminal: no progress bar.
    assert as_table.err == ""


async def test_sweep_pending_discovers_every_pending_grid(
    cli: Cli, sim: GridSimulator, account: SimAccount
) -> None:
    grids = sim.add_demo_grids(account.user_id, 15)
    pending = sorted((g.algo_id for g in grids if g.state != "stopped"), key=int, reverse=True)
    run = await cli("sweep", "--pending", "--concurrency", "5", "--json")
    assert run.code == EXIT_OK, run.err
    doc = run.json()
    assert [g["algo_id"] for g in doc["grids"]] == pending
    assert (doc["with_position"], doc["failed"]) == (len(pending), 0)
    assert len(sim.arrivals(account.user_id, GRID_ORDERS_PENDING_PATH)) == 1


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


async def test_a_wait_past_wait_timeout_exits_5_and_sends_nothing(
    cli: Cli, sim: GridSimulator, account: SimAccount
) -> None:
    grids = sim.add_demo_grids(account.user_id, 30)
    ids = [g.algo_id for g in grids[:25]]
    # 25 reads, 20 per 2 s: the last five would wait 2 s; they give up at once instead.
    run = await cli("sweep", *ids, "--wait-timeout", "0.5", "--json")
    assert run.code == EXIT_SOME_FAILED, run.err
    doc = run.json()
    failed = [g for g in doc["grids"] if g["error"] is not None]
    assert len(failed) == 5
    assert all("nothing was sent" in g["error"]["message"] for g in failed)
    assert len(sim.arrivals(account.user_id, GRID_POSITIONS_PATH)) == 20


# ---------------------------------------------------------------- demo, simulate, help


async def test_demo_completes_without_a_rejection(cli: Cli) -> None:
    run = await cli.run("demo", "--json")
    assert run.code == EXIT_OK, run.err
    doc = run.json()
    assert doc["rejections"] == 0
    assert (doc["market_closes"], doc["limit_closes"]) == (3, 2)
    figures = {f["endpoint"]: f for f in doc["limiter"]}
    positions = figures[GRID_POSITIONS_PATH]
    # The sweep reads every grid; each limit close reads its grid once more, to check sz.
    reads = len(doc["grids"]) + doc["limit_closes"]
    assert positions["granted"] == positions["arrivals"] == reads > GRID_MAX_RATE
    assert all(f["rejections_50011"] == 0 for f in doc["limiter"])
    assert all(f["max_in_window"] <= GRID_MAX_RATE for f in doc["limiter"])
    assert doc["wall_time_s"] < 60
    assert any(g["action"].startswith("empty") for g in doc["grids"])


async def test_simulate_serves_until_ctrl_c_and_exits_0() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "okx_grid_async",
        "simulate",
        "--port",
        "0",
        "--grids",
        "3",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environment(),
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(RUN_TIMEOUT):
            first = (await proc.stdout.readline()).decode()
            url = first.rsplit(" ", 1)[-1].strip()
            assert url.startswith("http://127.0.0.1:"), first
            demo = {
                "OKX_API_KEY": DEMO_API_KEY,
                "OKX_SECRET_KEY": DEMO_SECRET_KEY,
                "OKX_PASSPHRASE": DEMO_PASSPHRASE,
            }
            run = await okx_grid(
                "--base-url", url, "sweep", "--pending", "--json", env=environment(demo)
            )
            assert run.code == EXIT_OK, run.err
            assert len(run.json()["grids"]) == 3
            proc.send_signal(signal.SIGINT)
            _, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == EXIT_OK
    assert err.decode().splitlines() == [
        "okx-grid: starting the simulator; Ctrl-C stops it",
        "okx-grid: simulator stopped",
    ]


async def test_help_of_every_command_exits_0(cli: Cli) -> None:
    commands: list[list[str]] = [[], ["positions"], ["close"], ["sweep"], ["simulate"], ["demo"]]
    runs = await asyncio.gather(*(cli.run(*command, "--help") for command in commands))
    for command, run in zip(commands, runs, strict=True):
        assert run.code == EXIT_OK, command
        assert "examples:" in run.out, command
    listed = {int(line.split()[0]) for line in runs[0].out.split("exit codes:")[1].splitlines()[1:]}
    assert {EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_API_ERROR, EXIT_OUTCOME_UNKNOWN} <= listed
    assert EXIT_NETWORK in listed


# ---------------------------------------------------------------- in process


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidArgumentError("bad"), EXIT_USAGE),
        (GridNotFoundError("51293", "Algo order does not exist", 200), EXIT_API_ERROR),
        (MalformedResponseError("cut", 200, "{"), EXIT_API_ERROR),
        (OutcomeUnknownError("1", {"path": "/"}, "dropped"), EXIT_OUTCOME_UNKNOWN),
        (TransportError("refused", sent=False), EXIT_NETWORK),
        (DeadlineExceededError("late"), EXIT_NETWORK),
    ],
)
def test_exit_code_for_each_error(error: OKXError, code: int) -> None:
    assert exit_code_for(error) == code


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_drawn_on_a_terminal_only() -> None:
    terminal, pipe = _Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        progress = Progress(stream)
        progress.expect(1, complete=False)
        progress.expect(2)
        progress.advance()
        progress.advance()
        progress.close()
    assert pipe.getvalue() == ""
    assert terminal.getvalue().split("\r")[1:] == [
        "[" + "." * 30 + "] 0/1+",
        "[" + "." * 30 + "] 0/2",
        "[" + "#" * 15 + "." * 15 + "] 1/2",
        "[" + "#" * 30 + "] 2/2\n",
    ]


# ---------------------------------------------------------------- --redis-url


async def test_redis_url_paces_through_the_shared_limiter(
    cli: Cli, sim: GridSimulator, account: SimAccount, redis_url: str
) -> None:
    import redis.asyncio as aioredis

    grid = sim.add_grid(account.user_id)
    run = await cli("--redis-url", redis_url, "--user-id", account.user_id, "sweep",
                    grid.algo_id, "--json")  # fmt: skip
    assert run.code == EXIT_OK, run.err
    assert run.json()["with_position"] == 1
    client = aioredis.from_url(redis_url)
    try:
        keys = await client.keys(f"okx-grid:{{{account.user_id}}}:*")
    finally:
        await client.aclose()
    assert keys  # the budget lived in Redis, where other processes see it


async def test_unreachable_redis_exits_5_before_any_grid_request(
    cli: Cli, sim: GridSimulator, account: SimAccount, closed_port: int
) -> None:
    grid = sim.add_grid(account.user_id)
    run = await cli("--redis-url", f"redis://:hunter2@127.0.0.1:{closed_port}/0", "positions",
                    grid.algo_id)  # fmt: skip
    assert run.code == EXIT_NETWORK
    assert "redis" in run.err.lower()
    assert "hunter2" not in run.err + run.out
    # Reading the key's User ID (account/config, paced in process) is all that was sent.
    assert [a.path for a in sim.arrivals(account.user_id)] == [ACCOUNT_CONFIG_PATH]


async def test_the_redis_url_can_come_from_the_environment_and_the_option_wins(
    cli: Cli, sim: GridSimulator, account: SimAccount, redis_url: str, closed_port: int
) -> None:
    import redis.asyncio as aioredis

    grid = sim.add_grid(account.user_id)
    # No --redis-url on the command line: the password stays out of `ps`.
    env = dict(cli.env, OKX_GRID_REDIS_URL=redis_url)
    shared = await cli.run(
        "--base-url", sim.url, "--user-id", account.user_id, "sweep", grid.algo_id, env=env
    )
    assert shared.code == EXIT_OK, shared.err
    client = aioredis.from_url(redis_url)
    try:
        assert await client.keys(f"okx-grid:{{{account.user_id}}}:*")
    finally:
        await client.aclose()

    down = dict(cli.env, OKX_GRID_REDIS_URL=f"redis://:hunter2@127.0.0.1:{closed_port}/0")
    unreachable = await cli.run("--base-url", sim.url, "positions", grid.algo_id, env=down)
    assert unreachable.code == EXIT_NETWORK
    assert "redis" in unreachable.err.lower()
    assert "hunter2" not in unreachable.err + unreachable.out
    option_wins = await cli.run(
        "--base-url", sim.url, "--redis-url", redis_url, "positions", grid.algo_id, env=down
    )
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
    (wait,) = [line for line in lines if line.startswith("  okx_grid.limiter.wait.duration")]
    assert wait.startswith(f"  okx_grid.limiter.wait.duration{{{endpoint}}} count=1 sum=")
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
