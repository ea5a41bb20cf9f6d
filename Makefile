# go1o4 developer targets. `make demo` and `make test` work on a fresh machine: they create .venv.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo walk test lint vermin bench clean lerobot-venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU torch first (a local wheel on these machines); the [train] range is then already satisfied.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[sim,robot,train,warp,dev,loaders]"
	touch $(STAMP)

## main job on the simulated robot: the paper's real-robot recipe end to end with tiny budgets (a few minutes):
## shipped pretrained policy -> mattress data through the runtime -> offline Uni-O4 -> online PPO -> evaluation + baselines
demo: venv
	$(BIN)/go1o4 pipeline --quick --out runs/pipeline_quick
	@echo "report: runs/pipeline_quick/report.md (plots next to it)"

## the operator's view (about 40 s): stand up through the real SDK, then a scripted session walking the shipped policy
walk: venv
	$(BIN)/go1o4 demo
	$(BIN)/go1o4 session --policy sim_pretrain/policies/go1_flat.onnx --script robot_runtime/configs/demo_walk.yaml \
		--log --log-dir runs/demo_logs --quiet
	$(BIN)/go1o4 data info runs/demo_logs

## LeRobot's own LeRobotDataset for tests/test_data_ecosystem.py: lerobot 0.4.4 needs torch<2.11 + torchvision, which do
## not install beside the project's torch, so it gets a separate venv (~5.5 GB, a CUDA torch 2.14.1 that runs on the CPU;
## torch/torchvision come from this machine's disk). Only what lerobot.datasets imports; lerobot itself with --no-deps.
LEROBOT_VENV := .venv-lerobot
lerobot-venv: $(LEROBOT_VENV)/.installed

$(LEROBOT_VENV)/.installed:
	$(PY) -m venv $(LEROBOT_VENV)
	$(LEROBOT_VENV)/bin/pip install -q torch==2.14.1 torchvision==0.29.1
	$(LEROBOT_VENV)/bin/pip install -q datasets==4.8.5 huggingface-hub==0.35.3 accelerate==1.16.0 av==15.1.0 packaging==25.0
	$(LEROBOT_VENV)/bin/pip install -q --no-deps lerobot==0.4.4
	$(LEROBOT_VENV)/bin/python -c "from lerobot.datasets.lerobot_dataset import LeRobotDataset"
	touch $@

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
	rm -rf $(VENV) $(LEROBOT_VENV) build *.egg-info
