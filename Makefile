# Everything a fresh clone needs is set up here: `make demo` and `make test` start from nothing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest redis bench docs clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,cli]'
	touch $(STAMP)

# The tests start their own redis-server on a free loopback port; Debian's package provides it.
redis:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing redis-server (Debian package)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server >/dev/null; }
	@command -v redis-server >/dev/null 2>&1 || { echo "redis-server is required for the tests"; exit 1; }

demo: $(STAMP)
	$(BIN)/okx-grid demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Under coverage, which fails below pyproject's [tool.coverage.report] fail_under.
pytest: $(STAMP) redis
	OKX_GRID_REQUIRE_REDIS=1 $(BIN)/python -m coverage run -m pytest -q
	$(BIN)/python -m coverage report

test: lint typecheck pytest

# The peers (ccxt, python-okx) are benchmark-only: never runtime dependencies.
bench: $(STAMP) redis
	$(BIN)/python -m pip install --quiet -r benchmarks/requirements.txt
	$(BIN)/python -m benchmarks

docs: $(STAMP)
	$(BIN)/python -m pip install --quiet -r docs/requirements.txt
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache site .coverage
