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

## main job on the simulated robot: stand up through the real SDK, then an operator session walking the shipped policy
demo: venv
	$(BIN)/go1o4 demo
	$(BIN)/go1o4 session --policy sim_pretrain/policies/go1_flat.onnx --script robot_runtime/configs/demo_walk.yaml \
		--log --log-dir runs/demo_logs --quiet
	$(BIN)/go1o4 data info runs/demo_logs

## the test suite
test: venv
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check .
	$(BIN)/python scripts/check_py38.py

## benchmarks: each prints its numbers and writes benchmarks/results/<name>.json (see benchmarks/README.md)
BENCHES ?= bench_mj_step bench_sink bench_simulator bench_env bench_data bench_offline bench_runtime
bench: venv
	$(BIN)/pip install -q -e ".[bench]"
	for b in $(BENCHES); do $(BIN)/python -m benchmarks.$$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
