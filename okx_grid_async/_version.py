"""The package's version, from one source: pyproject.toml, as installed."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Final

__all__ = ["__version__"]

_DISTRIBUTION: Final = "okx-grid-async"


def _installed_version() -> str:
    try:
        return version(_DISTRIBUTION)
    except PackageNotFoundError:
        # Imported from a source tree that was never installed: no metadata to read.
        # "0+unknown" is a valid PEP 440 version that sorts below every release.
        return "0+unknown"


__version__: Final = _installed_version()
"""The installed version, as pyproject.toml gives it (``"0+unknown"`` never installed)."""
