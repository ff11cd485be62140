"""The package's import graph: no cycle, and the command line kept out of the library.

The graph is read from the source (ast), every ``import`` and ``from ... import``
of every module: those run when the module is imported, and those deferred into
a function or behind ``if TYPE_CHECKING:``, which a cycle could still run through
once they execute.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

import okx_grid_async

PACKAGE: Final = Path(okx_grid_async.__file__).parent
NAME: Final = "okx_grid_async"
MAX_LINES: Final = 600


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = [NAME, *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES: Final = _modules()


def _deferred(tree: ast.Module) -> set[int]:
    """ids of the import nodes inside a function or an ``if TYPE_CHECKING:`` block."""
    deferred: set[int] = set()
    for node in ast.walk(tree):
        is_function = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        is_type_checking = isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        if is_function or is_type_checking:
            deferred.update(
                id(n) for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom)
            )
    return deferred


def _imports_rich(path: Path) -> bool:
    """Whether the module at ``path`` imports rich or one of its modules, anywhere."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        if any(name == "rich" or name.startswith("rich.") for name in names):
            return True
    return False


def _imports(module: str, *, deferred: bool) -> Iterator[str]:
    """The package's modules that ``module`` imports (with the deferred imports or not)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = set() if deferred else _deferred(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            # `from package import submodule` imports the submodule.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target not in MODULES and "." in target:
                target = target.rpartition(".")[0]
            if target in MODULES and target != module:
                yield target


def _cycles(*, deferred: bool) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    graph = {module: set(_imports(module, deferred=deferred)) for module in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in graph[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    return found


def test_importing_any_module_runs_no_cycle() -> None:
    assert _cycles(deferred=False) == []


def test_no_cycle_anywhere_even_through_deferred_imports() -> None:
    # Deferred imports count too: they run when the function holding them does.
    assert _cycles(deferred=True) == []


def test_the_library_never_imports_the_command_line_nor_rich() -> None:
    """Without the cli extra (rich), everything but okx_grid_async.cli imports."""
    for module, path in MODULES.items():
        if module == NAME or module.startswith(f"{NAME}.cli") or module == f"{NAME}.__main__":
            continue
        assert not [t for t in _imports(module, deferred=True) if t.startswith(f"{NAME}.cli")]
        assert not _imports_rich(path), module


@pytest.mark.parametrize("module", [m for m in MODULES if m.startswith(f"{NAME}.cli")])
def test_no_module_of_the_command_line_is_long(module: str) -> None:
    lines = MODULES[module].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{module}: {lines} lines"


def test_the_graph_sees_the_imports() -> None:
    """The checks above would pass on an empty graph: this one would not."""
    assert f"{NAME}.cli._render" in set(_imports(f"{NAME}.cli._output", deferred=False))
    assert f"{NAME}.cli._demo" in set(_imports(f"{NAME}.cli._simulator", deferred=True))
    assert f"{NAME}.cli._demo" not in set(_imports(f"{NAME}.cli._simulator", deferred=False))
    assert f"{NAME}.simulator._server" in set(_imports(f"{NAME}.simulator", deferred=False))
    assert _imports_rich(MODULES[f"{NAME}.cli._render"])
