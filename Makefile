# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SPEC   ?= examples/demo.yaml

.PHONY: demo test test-deps lint bench install dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first and pinned: a looser requirement elsewhere would pull the CUDA build.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -q "torch==2.13.0"
	$(BIN)/python -m pip install --disable-pip-version-check -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --disable-pip-version-check -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed
dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed  ## install into .venv and run the demo sweep locally (offline, CPU)
	$(BIN)/xit run $(SPEC)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check xit tests

# Real servers the tests start (Prometheus, Pushgateway): installed on Debian as root, else those tests
# skip with the reason (and fail under CI=true).
test-deps:
	bash scripts/install-test-deps.sh

test: lint test-deps  ## install with dev extras, lint, install test servers, run the tests
	$(BIN)/python -m pytest -q

clean:
	rm -rf xit-runs reports .pytest_cache .ruff_cache
