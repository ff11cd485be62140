"""Every ```python block of docs/**/*.md and README.md runs, so no sample can rot.

Two kinds of sample, told apart by how they are written:

- A *program* (no top-level ``await``) runs as a script would: in a fresh namespace
  with ``__name__ == "__main__"``. It starts its own ``GridSimulator`` and calls
  ``asyncio.run`` itself.
- A *fragment* (top-level ``await``) uses names it does not define. It runs through
  ``run_fragment()``, the function of the ``run_fragment.py`` program that
  docs/quickstart.md gives readers to run fragments with, so the harness runs them
  as a reader does; that function starts a simulator and defines ``sim``,
  ``sim_url``, ``creds``, ``user_id`` and ``algo_id`` (its docstring says what each
  is). Each page with fragments says plainly that they are fragments, which names
  they use, and links to the runner. ``redis_url`` is a throw-away redis-server, for
  the fragments that use the name (the test skips without ``redis-server``, as
  tests/redis_server.py does).

Blocks that are not meant to run use other fences (``text``, ``console``, ``bash``).
A ``python`` block titled with a file name (```` ```python title="bot.py" ````) is a
file of an example, not run here on its own: those of docs/testing.md are a project
that tests/test_testing_page.py writes to a directory and runs pytest in;
docs/quickstart.md's ``run_fragment.py`` and ``fragment.py`` are run below, as the
page shows.
Each sample is compiled under its Markdown file's name with its own line numbers, so a
traceback points at the line of the page. Samples run in a worker thread with a time
limit; warnings are errors there too (pyproject's ``filterwarnings``).

Besides the samples, this module checks what the pages claim about the code: the
exception tree and the retry table of docs/errors.md against the classes and
``decide()``, the ``okx-grid --help`` texts and exit codes of docs/cli.md against the
parser, that docs/reference.md documents every public name, and that every page is in
mkdocs.yml's nav.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import gc
import inspect
import io
import re
import subprocess
import sys
import threading
import typing
from collections.abc import Callable, Coroutine, Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from types import CodeType
from typing import Final

import pytest

import okx_grid_async
import okx_grid_async.simulator
import okx_grid_async.testing
from okx_grid_async import (
    AuthenticationError,
    ClosingOrderExistsError,
    EndpointTimeoutError,
    GridNotFoundError,
    HTTPStatusError,
    MalformedResponseError,
    NoPositionError,
    OKXAPIError,
    OKXError,
    ParameterError,
    RateLimitError,
    RateLimiterUnavailableError,
    ServiceUnavailableError,
    TimestampExpiredError,
    TransportError,
)
from okx_grid_async._retry import Decision, decide
from okx_grid_async.cli._app import build_parser
from okx_grid_async.cli._exit import EXIT_CODE_HELP

ROOT: Final = Path(__file__).resolve().parent.parent
DOCS: Final = ROOT / "docs"
PAGES: Final = sorted([*DOCS.rglob("*.md"), *ROOT.glob("README.md")])
# Whatever a sample does, it must finish within this many seconds.
SAMPLE_TIME_LIMIT: Final = 60.0
# Where the fragments' runner is, and how every page with fragments links to it.
RUNNER_PAGE: Final = DOCS / "quickstart.md"
RUNNER_LINK: Final = "#running-the-fragments"
# The names run_fragment() defines (and redis_url, which the harness adds).
FRAGMENT_NAMES: Final = frozenset({"sim", "sim_url", "creds", "user_id", "algo_id", "redis_url"})

_FENCE: Final = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*)$")
_PYTHON_LANGUAGES: Final = frozenset({"python", "py", "python3"})
_PROJECT_FILE: Final = re.compile(r'title="(?P<file>[\w/.-]+\.py)"')


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    path: Path
    line: int  # 1-based line of the opening fence
    language: str
    info: str
    code: str

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def project_file(self) -> str | None:
        """The file name this block is titled with, if it is a file of a project example."""
        titled = _PROJECT_FILE.search(self.info)
        return None if titled is None else titled["file"]

    def compile(self) -> tuple[CodeType, bool]:
        """The code object, line numbers as in the page; True if it awaits at top level."""
        source = "\n" * self.line + self.code
        code = compile(
            source, str(self.path), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
        )
        return code, bool(code.co_flags & inspect.CO_COROUTINE)

    def names(self) -> set[str]:
        """Every name the block reads."""
        tree = ast.parse(self.code)
        return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}


def fenced_blocks(path: Path) -> Iterator[Block]:
    """The fenced code blocks of a Markdown file, indented ones (admonitions, tabs) too."""
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence, info = opening["indent"], opening["fence"], opening["info"].strip()
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            closing = _FENCE.match(lines[j])
            if (
                closing is not None
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not closing["info"].strip()
            ):
                break
            body.append(lines[j][len(indent) :] if lines[j].startswith(indent) else lines[j])
            j += 1
        language = info.split(maxsplit=1)[0].lower() if info else ""
        yield Block(path, i + 1, language, info, "\n".join(body) + "\n")
        i = j + 1


def python_blocks() -> list[Block]:
    return [
        b
        for page in PAGES
        for b in fenced_blocks(page)
        if b.language in _PYTHON_LANGUAGES and b.project_file is None
    ]


def run_with_time_limit(target: Callable[[], None], seconds: float) -> None:
    """Run ``target`` in a worker thread; re-raise what it raised; fail if it overruns."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            target()
            gc.collect()  # finalizers (unclosed sessions...) warn now, within this test
        except BaseException as exc:  # handed to the test's thread below
            failure.append(exc)

    worker = threading.Thread(target=run, name="docs-sample", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        pytest.fail(f"the sample was still running after {seconds:g} s", pytrace=False)
    if failure:
        raise failure[0]


def titled_block(page: Path, title: str) -> Block:
    """The one block of ``page`` titled ``title`` (a file name)."""
    (block,) = [b for b in fenced_blocks(page) if b.project_file == title]
    return block


FragmentRunner = Callable[..., Coroutine[None, None, None]]


def fragment_runner() -> FragmentRunner:
    """``run_fragment`` as docs/quickstart.md defines it, loaded from the page."""
    code, _ = titled_block(RUNNER_PAGE, "run_fragment.py").compile()
    namespace: dict[str, object] = {"__name__": "run_fragment"}
    exec(code, namespace)  # noqa: S102 (the docs' own sample)
    return typing.cast(FragmentRunner, namespace["run_fragment"])


def run_fragment(block: Block, redis_url: str | None) -> None:
    """Run a fragment as a reader does, with run_fragment.py (line numbers as in its page)."""
    names = {} if redis_url is None else {"redis_url": redis_url}
    source = "\n" * block.line + block.code
    asyncio.run(fragment_runner()(source, str(block.path), **names))


def run_program(code: CodeType) -> None:
    """Run a whole-program sample as ``python sample.py`` would."""
    exec(code, {"__name__": "__main__"})  # noqa: S102 (the docs' own samples)


SAMPLES: Final = python_blocks()


@pytest.mark.parametrize("block", [pytest.param(b, id=b.name) for b in SAMPLES])
def test_sample_runs(block: Block, request: pytest.FixtureRequest) -> None:
    code, awaits = block.compile()
    if not awaits:
        run_with_time_limit(lambda: run_program(code), SAMPLE_TIME_LIMIT)
        return
    redis_url: str | None = None
    if "redis_url" in block.names():
        redis_url = request.getfixturevalue("redis_url")
    run_with_time_limit(lambda: run_fragment(block, redis_url), SAMPLE_TIME_LIMIT)


def test_the_docs_have_samples() -> None:
    assert len(SAMPLES) >= 20, [b.name for b in SAMPLES]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_pages_with_fragments_say_so_and_link_to_the_runner(page: Path) -> None:
    fragments = [
        b for b in fenced_blocks(page) if b.language in _PYTHON_LANGUAGES and b.compile()[1]
    ]
    if not fragments:
        return
    text = page.read_text(encoding="utf-8")
    (admonition, *_) = re.findall(r"^!!! info .*\n(?:    .*\n)+", text, flags=re.MULTILINE)
    assert re.search(r"\b(?:are fragments|is a fragment)\b", admonition), (
        f"{page.name} has fragments ({fragments[0].name}, ...) but its first admonition "
        "does not say plainly that they are fragments"
    )
    assert RUNNER_LINK in admonition, f"{page.name} does not link to the fragments' runner"
    if page == RUNNER_PAGE:
        return  # its example fragment's names are those the runner's docstring lists
    for name in set().union(*(b.names() for b in fragments)) & FRAGMENT_NAMES:
        assert f"`{name}`" in admonition, f"{page.name} uses {name} but does not say what it is"


def test_the_runner_runs_a_fragment_as_its_page_shows(tmp_path: Path) -> None:
    """run_fragment.py as a program, on the page's example fragment, prints what the page says."""
    for name in ("run_fragment.py", "fragment.py"):
        (tmp_path / name).write_text(titled_block(RUNNER_PAGE, name).code, encoding="utf-8")
    (shown,) = [
        b
        for b in fenced_blocks(RUNNER_PAGE)
        if b.language == "console" and "run_fragment.py" in b.code
    ]
    command, expected = shown.code.split("\n", 1)
    assert command == "$ python run_fragment.py fragment.py"
    done = subprocess.run(
        [sys.executable, "-W", "error", "run_fragment.py", "fragment.py"],
        capture_output=True,
        text=True,
        timeout=SAMPLE_TIME_LIMIT,
        cwd=tmp_path,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == expected


def test_every_page_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    missing = [
        str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md") if str(p.relative_to(DOCS)) not in nav
    ]
    assert not missing


# ---------------------------------------------------------------- claims about the code


def test_the_reference_documents_every_public_name() -> None:
    reference = (DOCS / "reference.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^::: ([\w.]+)$", reference, flags=re.MULTILINE))
    public = {f"okx_grid_async.{name}" for name in okx_grid_async.__all__}
    public |= {f"okx_grid_async.simulator.{name}" for name in okx_grid_async.simulator.__all__}
    public |= {f"okx_grid_async.testing.{name}" for name in okx_grid_async.testing.__all__}
    assert sorted(public - documented) == []
    assert sorted(documented - public) == []


# The rows of the retry table in docs/errors.md: the error each row stands for.
RETRY_TABLE_ROWS: Final[dict[str, OKXError]] = {
    "RateLimitError 50011": RateLimitError("50011", "", 429),
    "ServiceUnavailableError 50013": ServiceUnavailableError("50013", "", 429),
    "ServiceUnavailableError 50001, 50026": ServiceUnavailableError("50001", "", 503),
    "EndpointTimeoutError 50004": EndpointTimeoutError("50004", "", 400),
    "TimestampExpiredError 50102": TimestampExpiredError("50102", "", 401),
    "TransportError sent=False": TransportError("refused", sent=False),
    "TransportError sent=True": TransportError("reset", sent=True),
    "HTTPStatusError 5xx": HTTPStatusError(502, "<html>"),
    "HTTPStatusError 4xx": HTTPStatusError(403, "<html>"),
    "HTTPStatusError 3xx": HTTPStatusError(307, "redirect"),
    "MalformedResponseError": MalformedResponseError("not JSON", 200, "{"),
    "AuthenticationError (other 501xx)": AuthenticationError("50113", "", 401),
    "ParameterError 50014, 51000": ParameterError("51000", "", 400),
    "GridError subclasses": NoPositionError("51058", "", 200),
    "OKXAPIError (any other code)": OKXAPIError("59999", "", 200),
    "RateLimiterUnavailableError": RateLimiterUnavailableError("Redis down"),
}
_CELL_DECISION: Final = {"retried": Decision.RETRY, "raised": Decision.RAISE}


def retry_table() -> dict[str, tuple[str, str]]:
    """The table after ``<!-- retry-table -->`` in docs/errors.md: row label -> (GET, POST)."""
    text = (DOCS / "errors.md").read_text(encoding="utf-8")
    _, marker, rest = text.partition("<!-- retry-table -->")
    assert marker, "docs/errors.md lost its <!-- retry-table --> marker"
    rows: dict[str, tuple[str, str]] = {}
    for line in rest.strip().splitlines()[2:]:
        if not line.startswith("|"):
            break
        label, get, post = (cell.strip() for cell in line.strip("|").split("|")[:3])
        rows[label.replace("`", "")] = (get, post)
    return rows


def _decision(cell: str) -> Decision:
    word = re.sub(r"[^a-z]", " ", cell.lower()).split()[0]
    if word == "outcomeunknownerror":
        return Decision.UNKNOWN
    return _CELL_DECISION[word]


def test_the_retry_table_is_what_decide_does() -> None:
    table = retry_table()
    assert sorted(table) == sorted(RETRY_TABLE_ROWS)
    for label, error in RETRY_TABLE_ROWS.items():
        get, post = table[label]
        assert (_decision(get), _decision(post)) == (decide("GET", error), decide("POST", error)), (
            label
        )


def test_grid_errors_are_raised_for_both_methods() -> None:
    for error in (GridNotFoundError("51293", "", 200), ClosingOrderExistsError("51342", "", 200)):
        assert decide("GET", error) is decide("POST", error) is Decision.RAISE


_HELP_TITLE: Final = re.compile(r'title="(?P<command>okx-grid(?: \w+)? --help)"')


def help_blocks() -> list[tuple[Block, list[str]]]:
    found = []
    for block in fenced_blocks(DOCS / "cli.md"):
        title = _HELP_TITLE.search(block.info)
        if title is not None:
            found.append((block, title["command"].split()[1:]))
    return found


@pytest.mark.parametrize(("block", "argv"), [pytest.param(*h, id=h[0].name) for h in help_blocks()])
def test_cli_help_in_the_docs_is_the_real_one(
    block: Block, argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")  # the width the pages were written at
    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 0
    assert block.code == out.getvalue()


def test_every_command_has_its_help_in_the_docs() -> None:
    (commands,) = (
        action.choices
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    shown = {tuple(argv) for _, argv in help_blocks()}
    assert shown == {("--help",)} | {(name, "--help") for name in commands}


def test_the_exit_code_table_lists_every_exit_code() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8").partition("## Exit codes")[2]
    table = re.findall(r"^\| (\d+) \|", text.partition("\n## ")[0], flags=re.MULTILINE)
    assert [int(code) for code in table] == [code for code, _ in EXIT_CODE_HELP]


def exception_tree() -> list[tuple[int, str]]:
    """(depth, class name) of each line of the first block under "## The exception tree"."""
    page = DOCS / "errors.md"
    heading = page.read_text(encoding="utf-8").splitlines().index("## The exception tree")
    tree = next(b for b in fenced_blocks(page) if b.line > heading)
    found = []
    for line in tree.code.splitlines():
        match = re.match(r"^(?P<prefix>[│├└─ ]*)(?P<name>\w+)", line)
        assert match is not None, line
        found.append((len(match["prefix"]) // 4, match["name"]))
    return found


def test_the_exception_tree_is_the_real_one() -> None:
    parents: list[str] = []
    tree = exception_tree()
    for depth, name in tree:
        del parents[depth:]
        if parents:
            bases = {base.__name__ for base in getattr(okx_grid_async, name).__bases__}
            assert parents[-1] in bases, f"{name} is drawn under {parents[-1]}, not a base"
        parents.append(name)
    exported = {
        name
        for name in okx_grid_async.__all__
        if isinstance(cls := getattr(okx_grid_async, name), type) and issubclass(cls, OKXError)
    }
    assert sorted(name for _, name in tree) == sorted(exported)
