"""The suite's own guard rails: a leaked session or a ResourceWarning fails a test run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

LEAKS = {
    "unclosed_session": """
        import aiohttp

        async def test_leaks_a_session() -> None:
            aiohttp.ClientSession()
    """,
    "resource_warning": """
        import gc

        def test_leaks_a_file() -> None:
            open(__file__)
            gc.collect()
    """,
}


def _run(tmp_path: Path, name: str, source: str) -> subprocess.CompletedProcess[str]:
    test_file = tmp_path / f"test_{name}.py"
    test_file.write_text(textwrap.dedent(source))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT), str(test_file)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip


@pytest.mark.parametrize("name", sorted(LEAKS))
def test_a_leak_fails_the_run(tmp_path: Path, name: str) -> None:
    run = _run(tmp_path, name, LEAKS[name])
    assert run.returncode == 1, run.stdout
    assert "1 failed" in run.stdout


def test_the_same_code_without_the_leak_passes(tmp_path: Path) -> None:
    clean = """
        import aiohttp

        async def test_closes_its_session() -> None:
            async with aiohttp.ClientSession():
                pass
    """
    run = _run(tmp_path, "clean", clean)
    assert run.returncode == 0, run.stdout
