"""The ``okx-grid`` command line, behind the ``cli`` extra (``pip install 'okx-grid-async[cli]'``).

`main` is the entry point. Without the extra (rich), it prints the one-line
install hint and exits 2; the library itself never imports this package.
"""

from __future__ import annotations

import sys

from ._environment import INSTALL_HINT
from ._exit import EXIT_USAGE

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run ``okx-grid`` with ``argv`` (default ``sys.argv[1:]``) and return its exit code."""
    try:
        import rich  # noqa: F401  (the cli extra)
    except ImportError:
        sys.stderr.write(INSTALL_HINT + "\n")
        return EXIT_USAGE
    from ._app import run

    return run(argv)
