# Two entry points (see README): `make demo` runs the main job, `make test` the test suite.
# Both set up .venv first (idempotent).
VENV ?= .venv
PYTHON := $(VENV)/bin/python

.PHONY: setup demo test test-all lint format clean

setup:
	@bash scripts/setup.sh
	@$(VENV)/bin/liwi weights fetch u2netp  # the default prior: cached, sha256-checked

demo: setup
	$(VENV)/bin/liwi demo

# --durations: every CI log names its 25 slowest tests (where suite time goes)
test: setup
	@bash scripts/setup_test_system.sh
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m pytest -m "not slow and not gpu" --durations=25 $(PYTEST_ARGS)

test-all: setup
	$(PYTHON) -m pytest -m "not gpu" $(PYTEST_ARGS)

lint:
	$(PYTHON) -m ruff check .

format:
	$(PYTHON) -m ruff format .
	$(PYTHON) -m ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info platform/*.egg-info
