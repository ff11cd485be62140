"""okx-grid's usage errors, help, exit codes, missing extra and secrets, in process.

One test runs ``python -m okx_grid_async`` in a subprocess: the secret-leak
check of a whole process, tracebacks and all.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

import okx_grid_async
from okx_grid_async import (
    DeadlineExceededError,
    GridNotFoundError,
    InvalidArgumentError,
    MalformedResponseError,
    OKXError,
    OutcomeUnknownError,
    TransportError,
    WaitTimeoutError,
    __version__,
)
from okx_grid_async.cli import main
from okx_grid_async.cli._app import COMMANDS
from okx_grid_async.cli._environment import INSTALL_HINT
from okx_grid_async.cli._exit import (
    EXIT_API_ERROR,
    EXIT_CODE_HELP,
    EXIT_NETWORK,
    EXIT_OK,
    EXIT_OUTCOME_UNKNOWN,
    EXIT_USAGE,
    CommandError,
    InterruptionError,
    UsageError,
    exit_code_for,
)
from okx_grid_async.simulator import GridSimulator, SimAccount

from .cli_runner import CLI_VARIABLES, Cli

SECRET = "the-account's-secret"  # stands for a value the tests replace with the account's


# ---------------------------------------------------------------- usage errors


@pytest.mark.parametrize(
    ("args", "usage"),
    [
        (["positions"], "positions"),
        (["positions", "12ab"], "positions"),
        (["positions", SECRET], "positions"),
        (["positions", "1", "--bogus"], "positions"),
        (["close", "1"], "close"),
        (["close", "1", "--market", "--sz", "1", "--px", "1"], "close"),
        (["close", "1", "--market", "--px", "1"], "close"),
        (["close", "1", "--sz", "1"], "close"),
        (["close", "1", "--sz", "-1", "--px", "100"], "close"),
        (["close", "1", "--sz", "0", "--px", "100"], "close"),
        (["close", "1", "--sz", "nan", "--px", "100"], "close"),
        (["close", "1", "--sz", "1", "--px", SECRET], "close"),
        (["close", "1", "--sz", "1", "--px", "1e999999999"], "close"),  # not 10**9 digits
        (["close", "1", "--sz", "1_000", "--px", "100"], "close"),
        (["close", "1", "--sz", "1", "--px", "\uff11\uff10\uff10"], "close"),  # full-width
        (["cancel", "1", "x"], "cancel"),
        (["sweep"], "sweep"),
        (["sweep", "1", "--pending"], "sweep"),
        (["sweep", "--pending", "--concurrency", "0"], "sweep"),
        (["--timeout", "0", "positions", "1"], ""),
        (["--wait-timeout", "soon", "positions", "1"], ""),
        (["positions", "1", "--user-id", "not-digits", "--timeout", "-1"], "positions"),
        (["demo", "--base-url", "http://127.0.0.1:1"], "demo"),
        (["--base-url", "http://127.0.0.1:1", "demo"], "demo"),
        (["--metrics", "demo"], "demo"),
        (["simulate", "--base-url", "x"], "simulate"),
        (["simulate", "--json"], "simulate"),
        (["--json", "simulate"], "simulate"),
        (["simulate", "--port", "65536"], "simulate"),
        (["frobnicate"], ""),
        ([], ""),
    ],
)
async def test_bad_arguments_exit_2_with_the_command_s_usage_and_send_nothing(
    cli: Cli, account: SimAccount, args: list[str], usage: str
) -> None:
    # A secret given as an argument is echoed redacted (cli checks it never appears).
    args = [account.secret_key if arg == SECRET else arg for arg in args]
    run = await cli(*args)
    assert run.code == EXIT_USAGE, run
    assert run.out == ""
    assert run.err.startswith(f"usage: okx-grid {usage}".rstrip())
    assert run.err.splitlines()[-1].startswith("okx-grid: error: ")
    if SECRET in args or account.secret_key in args:
        assert "***" in run.err
    assert cli.sim.requests == []


async def test_an_option_a_command_does_not_take_is_named(cli: Cli) -> None:
    run = await cli.run("simulate", "--base-url", "x", "--json")
    assert run.err.splitlines() == [
        "usage: okx-grid simulate [-h] [--port PORT] [--grids GRIDS]",
        "okx-grid: error: --base-url, --json: not used by 'simulate'",
    ]


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"OKX_API_KEY": "k"}, "missing environment variable(s): OKX_SECRET_KEY, OKX_PASSPHRASE"),
        ({}, "missing environment variable(s): OKX_API_KEY, OKX_SECRET_KEY, OKX_PASSPHRASE"),
        # A .env file with CRLF line endings leaves a CR at the end of every value.
        (None, "OKX_PASSPHRASE contains a control character (CR)"),
    ],
    ids=["two-missing", "all-missing", "crlf"],
)
async def test_credentials_that_cannot_be_used_exit_2_naming_them_and_send_nothing(
    cli: Cli,
    account: SimAccount,
    clean_environment: pytest.MonkeyPatch,
    environment: dict[str, str] | None,
    message: str,
    as_json: bool,
) -> None:
    if environment is None:
        clean_environment.setenv("OKX_PASSPHRASE", account.passphrase + "\r")
    else:
        for name in ("OKX_API_KEY", "OKX_SECRET_KEY", "OKX_PASSPHRASE"):
            clean_environment.delenv(name)
        for name, value in environment.items():
            clean_environment.setenv(name, value)
    run = await cli("positions", "1", *(["--json"] if as_json else []))
    assert run.code == EXIT_USAGE, run
    [line] = run.err.splitlines()
    assert line.startswith(f"okx-grid: error: {message}")
    assert line.endswith("('okx-grid simulate' prints demo ones)")
    if as_json:
        error = run.json()["error"]
        assert (error["type"], error["message"]) == ("UsageError", line[len("okx-grid: error: ") :])
    else:
        assert run.out == ""
    assert cli.sim.requests == []


async def test_a_bad_base_url_is_a_usage_error(cli: Cli) -> None:
    run = await cli.run("--base-url", "http://example.com", "positions", "1", "--json")
    assert run.code == EXIT_USAGE
    assert run.json()["error"]["type"] == "UsageError"
    assert cli.sim.requests == []


# ---------------------------------------------------------------- help and version


@pytest.mark.parametrize("command", [[], *([c.name] for c in COMMANDS)], ids=lambda c: " ".join(c))
async def test_help_of_every_command_exits_0_with_examples(cli: Cli, command: list[str]) -> None:
    run = await cli.run(*command, "--help")
    assert run.code == EXIT_OK
    assert run.out.startswith(f"usage: okx-grid {' '.join(command)}".rstrip())
    assert "\nexamples:\n" in run.out
    assert run.err == ""


async def test_the_help_lists_every_exit_code(cli: Cli) -> None:
    run = await cli.run("--help")
    listed = [int(line.split()[0]) for line in run.out.split("exit codes:\n")[1].splitlines()]
    assert listed == [code for code, _ in EXIT_CODE_HELP]


async def test_version(cli: Cli) -> None:
    run = await cli.run("--version")
    assert (run.code, run.out) == (EXIT_OK, f"okx-grid {__version__}\n")


def test_python_dash_m_runs_the_command_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # As `python -m okx_grid_async` runs it (runpy meets pytest's import hook here).
    path = Path(okx_grid_async.__file__).with_name("__main__.py")
    code = compile(path.read_text(encoding="utf-8"), str(path), "exec")
    monkeypatch.setattr(sys, "argv", ["okx-grid", "--version"])
    with pytest.raises(SystemExit) as exited:
        exec(code, {"__name__": "__main__", "__package__": "okx_grid_async"})  # noqa: S102
    assert exited.value.code == EXIT_OK
    assert capsys.readouterr().out == f"okx-grid {__version__}\n"


def test_without_the_cli_extra_it_prints_the_install_hint_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "rich", None)  # as if rich were not installed
    assert main(["sweep", "--pending"]) == EXIT_USAGE
    assert capsys.readouterr() == ("", f"{INSTALL_HINT}\n")
    assert INSTALL_HINT == (
        "okx-grid: the command line needs its extra: pip install 'okx-grid-async[cli]'"
    )


# ---------------------------------------------------------------- exit codes


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidArgumentError("bad"), EXIT_USAGE),
        (GridNotFoundError("51293", "Algo order does not exist", 200), EXIT_API_ERROR),
        (MalformedResponseError("cut", 200, "{"), EXIT_API_ERROR),
        (OutcomeUnknownError("1", {"path": "/"}, "dropped"), EXIT_OUTCOME_UNKNOWN),
        (TransportError("refused", sent=False), EXIT_NETWORK),
        (DeadlineExceededError("late"), EXIT_NETWORK),
        (WaitTimeoutError("/x", 0.0, 1.0), EXIT_NETWORK),
        (UsageError("no credentials"), EXIT_USAGE),
        (InterruptionError("interrupted"), 130),
        (InterruptionError("interrupted", exit_code=EXIT_OUTCOME_UNKNOWN), EXIT_OUTCOME_UNKNOWN),
        (CommandError("rejected"), EXIT_API_ERROR),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_exit_code_for_each_error(error: OKXError | CommandError, code: int) -> None:
    assert exit_code_for(error) == code


# ---------------------------------------------------------------- secrets, in a real process


async def test_a_whole_process_never_shows_the_secret_or_the_passphrase(
    sim: GridSimulator, account: SimAccount, closed_port: int
) -> None:
    """The secrets given where a command echoes its arguments, and in a Redis URL."""
    env = {name: value for name, value in os.environ.items() if name not in CLI_VARIABLES}
    env.update(
        OKX_API_KEY=account.api_key,
        OKX_SECRET_KEY=account.secret_key,
        OKX_PASSPHRASE=account.passphrase,
        OKX_BASE_URL=sim.url,
        OKX_GRID_REDIS_URL=f"redis://:{account.passphrase}@127.0.0.1:{closed_port}/0",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "okx_grid_async", "close", account.secret_key, "--market",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    async with asyncio.timeout(30):
        out, err = await proc.communicate()
    assert proc.returncode == EXIT_USAGE
    shown = out.decode() + err.decode()
    assert "okx-grid: error: argument ALGO_ID: an algo id must be a non-empty string of digits, " \
           "not '***'" in shown  # fmt: skip
    for secret in (account.secret_key, account.passphrase):
        assert secret not in shown
