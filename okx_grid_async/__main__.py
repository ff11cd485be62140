"""``python -m okx_grid_async``: the ``okx-grid`` command line."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
