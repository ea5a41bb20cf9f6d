# go1o4 developer targets. `make demo` and `make test` work on a fresh machine: they create .venv.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint vermin bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU torch first (a local wheel on these machines); the [train] range is then already satisfied.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[sim,robot,train,dev]"
	touch $(STAMP)

## main job on the simulated robot
demo: venv
	$(BIN)/go1o4 demo

## the test suite
test: venv
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check .
	$(BIN)/python scripts/check_py38.py

bench: venv
	$(BIN)/python -m benchmarks.run_all

clean:
	rm -rf $(VENV) build *.egg-info
