"""What a type checker says of calls into the library: the overloads and Literals hold.

Each case is one statement, checked by mypy with the project's configuration
(strict) in a function of its own; a case with an error code must be reported
with that code on its line, a case with ``None`` must raise nothing. Without the
overloads of ``close_position`` the ``call-overload`` cases type-check, and this
test fails.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parent.parent

CASES: Final[dict[str, tuple[str, str | None]]] = {
    "market close": ('await client.close_position("1", mkt_close=True)', None),
    "market close with a deadline": (
        'await client.close_position("1", mkt_close=True, timeout=1.0, wait_timeout=2.0)',
        None,
    ),
    "limit close": ('await client.close_position("1", mkt_close=False, sz=1, px="2")', None),
    "limit close, Decimal": (
        'await client.close_position("1", mkt_close=False, sz=Decimal(1), px=Decimal(2))',
        None,
    ),
    "market close with sz": (
        'await client.close_position("1", mkt_close=True, sz=1)',
        "call-overload",
    ),
    "market close with px": (
        'await client.close_position("1", mkt_close=True, px="2")',
        "call-overload",
    ),
    "market close with sz=None": (
        'await client.close_position("1", mkt_close=True, sz=None)',
        "call-overload",
    ),
    "limit close without sz": (
        'await client.close_position("1", mkt_close=False, px="2")',
        "call-overload",
    ),
    "limit close without px": (
        'await client.close_position("1", mkt_close=False, sz=1)',
        "call-overload",
    ),
    "limit close without either": (
        'await client.close_position("1", mkt_close=False)',
        "call-overload",
    ),
    "limit close with a float": (
        'await client.close_position("1", mkt_close=False, sz=1.5, px="2")',
        "call-overload",
    ),
    "mode from a bool variable": (
        'await client.close_position("1", mkt_close=flag)',
        "call-overload",
    ),
    "limiter_stats by name": ('client.limiter_stats("close-position")', None),
    "limiter_stats by default": ("client.limiter_stats()", None),
    "limiter_stats by a GridEndpoint": ("client.limiter_stats(endpoint)", None),
    "limiter_stats by path": (
        'client.limiter_stats("/api/v5/tradingBot/grid/close-position")',
        "arg-type",
    ),
}

_HEADER: Final = """\
from decimal import Decimal

from okx_grid_async import GridClient, GridEndpoint
"""
_CASE: Final = """

async def case_{index}(client: GridClient, flag: bool, endpoint: GridEndpoint) -> None:
    {statement}
"""
_ERROR: Final = re.compile(r"^[^:]+:(?P<line>\d+): error: .*\[(?P<code>[a-z-]+)\]$")


def check(cases: list[str], directory: Path) -> dict[str, set[str]]:
    """The error codes mypy reports for each case, run on one file of them all."""
    source = _HEADER
    lines: dict[int, str] = {}
    for index, name in enumerate(cases):
        source += _CASE.format(index=index, statement=CASES[name][0])
        lines[source.count("\n")] = name  # the statement is the file's last line so far
    path = directory / "typing_cases.py"
    path.write_text(source, encoding="utf-8")
    # From the project's root: the editable install's import hook is invisible to mypy,
    # which finds the package in the working directory instead.
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "pyproject.toml", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    found: dict[str, set[str]] = {name: set() for name in cases}
    for line in done.stdout.splitlines():
        error = _ERROR.match(line)
        if error is None:
            continue
        assert int(error["line"]) in lines, f"an error outside the cases:\n{done.stdout}"
        found[lines[int(error["line"])]].add(error["code"])
    assert done.returncode == (1 if any(found.values()) else 0), done.stdout + done.stderr
    return found


def test_mypy_reports_exactly_the_expected_errors(tmp_path: Path) -> None:
    found = check(list(CASES), tmp_path)
    expected = {name: {code} if code else set() for name, (_, code) in CASES.items()}
    assert found == expected
