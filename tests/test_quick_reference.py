"""The README's "Quick reference" block runs as written (issue 18.3).

Every line is executed by bash in a scratch copy of the repository layout (symlinks; outputs such as runs/
and logs/ land in the scratch folder), after ``source .venv/bin/activate`` exactly as the README says.
The long commands get test budgets through ``GO1O4_ARGS_<COMMAND>`` (go1o4.cli.extra_args): the command
text stays the README's. ``go1o4 sim-robot`` runs in the background; the session attached to it is stopped
with SIGTERM (what Ctrl-C does in the session; SIGINT is ignored in a background job, as CI may run us). The real-Go1 line needs a robot at 192.168.123.10: skipped.
"""
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_pipeline_quick import TINY

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
PRETRAIN = ["--iterations", "1", "--no-progress", "--set", "env.num_envs=8", "env.num_workers=0",
            "runner.num_steps_per_env=8", "runner.bc_prior_steps=5", "runner.bc_epochs=1"]
OFFLINE = ["bc.steps=40", "bc.eval_every=20", "value.steps=40", "value.eval_every=20", "dynamics.ensemble_size=3",
           "dynamics.num_elites=2", "dynamics.epoch_steps=20", "dynamics.max_epochs=2", "improve.steps=30",
           "improve.ope_every=10", "ope.num_starts=16", "ope.horizon=5", "log_every=10", "bc.batch_size=64",
           "value.batch_size=64", "improve.batch_size=64", "dynamics.batch_size=64"]
PIPELINE = TINY  # test_pipeline_quick's tiny budgets
BUDGETS = {
    "GO1O4_ARGS_PRETRAIN": PRETRAIN,
    "GO1O4_ARGS_EVALUATE": ["--episodes", "1", "--steps", "50", "--workers", "0"],
    "GO1O4_ARGS_OFFLINE": ["--no-progress"] + sum((["--set", o] for o in OFFLINE), []),
    "GO1O4_ARGS_PIPELINE": ["--no-progress"] + sum((["--set", o] for o in PIPELINE), []),
    "GO1O4_ARGS_CALIBRATE": ["--no-progress", "--motor", "ideal_pd", "--stiffness", "100", "--damping", "6",
                             "--friction", "1.0", "--episodes", "1", "--seconds", "3"],
}


def quick_reference():
    """The README block's command lines, comments removed."""
    text = (REPO / "README.md").read_text()
    block = text.split("## Quick reference", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [re.sub(r"\s+#.*$", "", line).strip() for line in block.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """A folder that looks like the checkout (sources symlinked) with ../shared beside it."""
    root = tmp_path_factory.mktemp("quickref")
    repo = root / "repo"
    repo.mkdir()
    for entry in REPO.iterdir():
        if entry.name not in ("runs", "logs", ".venv", ".git") and not entry.name.startswith("."):
            (repo / entry.name).symlink_to(entry)
    (repo / ".venv").symlink_to(Path(sys.executable).resolve().parents[1] if not (REPO / ".venv").exists()
                                else REPO / ".venv")
    (root / "shared").symlink_to(SHARED)
    return repo


def bash(line, cwd, **kw):
    env = dict(os.environ, **{k: shlex.join(v) for k, v in BUDGETS.items()}, PYTHONUNBUFFERED="1")
    # after the README's activation, the venv running these tests stays first on PATH (a copied venv's
    # activate script may name the venv it was copied from)
    here = shlex.quote(str(Path(sys.executable).parent))
    return subprocess.Popen(["bash", "-c", "source .venv/bin/activate && PATH=%s:$PATH && %s" % (here, line)],
                            cwd=str(cwd), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True, **kw)


def run(line, cwd, timeout=600):
    p = bash(line, cwd)
    out, _ = p.communicate(timeout=timeout)
    assert p.returncode == 0, "%s\n%s" % (line, out[-4000:])
    assert "Traceback" not in out, out[-4000:]
    return out


def stop(proc) -> str:
    os.killpg(proc.pid, signal.SIGTERM)
    return proc.communicate(timeout=30)[0]


@pytest.mark.timeout(1800)  # ~5 min on two free cores (data import of the real logs ~1 min, pipeline ~1.5 min)
def test_readme_quick_reference_runs_as_written(scratch):
    lines = quick_reference()
    assert lines[0] == "source .venv/bin/activate"
    out = run("command -v go1o4", scratch)
    assert out.strip() == str(Path(sys.executable).parent / "go1o4")
    done, skipped, sim, rest = [], [], None, ""
    try:
        for line in lines[1:]:
            if "192.168.123.10" in line:  # a real Go1 (and its log dir /home/unitree/go1o4_logs)
                skipped.append(line)
                continue
            if line.startswith("go1o4 sim-robot"):
                sim = bash(line, scratch)
                ready = sim.stdout.readline()
                assert ready.startswith("sim-robot ready port=8007 control_port=8017"), ready
                assert "robot=sim-go1-8007 t265=T265_POSE/sim-go1-8007" in ready, ready
            elif line.startswith("go1o4 session"):
                assert sim is not None, "the README starts the simulated robot before the session"
                p = bash(line, scratch)
                time.sleep(12.0)
                os.killpg(p.pid, signal.SIGTERM)  # the operator's Ctrl-C / systemd's stop
                out, _ = p.communicate(timeout=60)
                assert p.returncode == 0, out[-4000:]
                assert "attached to the running simulated Go1 sim-go1-8007 on 127.0.0.1:8007" in out, out
                assert "T265_POSE/sim-go1-8007" in out and "T265 ok" in out, out
                assert "session summary:" in out and "Traceback" not in out and "t265_foreign" not in out, out
                rest = stop(sim)  # terminal 1 is done: the robot would only load the CPU from here on
                sim = None
            else:
                out = run(line, scratch)
            done.append(line)
    finally:
        if sim is not None:
            stop(sim)
    assert "sim-robot stopped" in rest, rest
    assert skipped == ["go1o4 session --config deploy/config/go1_default.yaml --robot-ip 192.168.123.10"]
    assert len(done) == len(lines) - 2
    for made in ("runs/flat", "logs/real", "runs/offline_quick/policy.onnx", "runs/pipeline_quick/report.md",
                 "policies/uni_o4_ac300/policy.onnx", "runs/calibrate/REPORT.md"):
        assert (scratch / made).exists(), made
