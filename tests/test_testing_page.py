"""The complete example of docs/testing.md runs: its files, written out, pass pytest as shown."""

from __future__ import annotations

import pytest

from .test_docs import DOCS, fenced_blocks

pytest_plugins = ["pytester"]

PAGE = DOCS / "testing.md"


def project_files() -> dict[str, str]:
    """The page's files, by name: each ```python block titled with a file name."""
    return {b.project_file: b.code for b in fenced_blocks(PAGE) if b.project_file is not None}


def test_the_page_shows_a_bot_its_tests_and_the_naive_bot() -> None:
    assert sorted(project_files()) == ["bot.py", "test_bot.py", "test_naive_bot.py"]


def test_the_example_runs_as_the_page_says(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\n"
        "asyncio_mode = auto\n"
        "asyncio_default_fixture_loop_scope = function\n"
        "filterwarnings = error\n"
    )
    for name, code in project_files().items():
        pytester.path.joinpath(name).write_text(code, encoding="utf-8")
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_naive_bot*",
            "okx-grid-async strict teardown: the simulator saw",
            "  grid * (user *): market close at t=* (refused 51059, pos 0 -> 0) "
            "repeats market close at t=* (executed, pos 35 -> 0)",
            "(opt out with @pytest.mark.okx(strict=False))",
        ]
    )
    shown = PAGE.read_text(encoding="utf-8")
    assert "4 passed, 1 error" in shown
    # Before the short summary, which repeats the message in full when $CI is set.
    report = result.stdout.str().partition("short test summary info")[0]
    duplicates = report.count("(refused 51059, pos 0 -> 0) repeats market close")
    assert duplicates == shown.count("(refused 51059, pos 0 -> 0) repeats market close") == 3
