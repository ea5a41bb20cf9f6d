"""Training runs the rsl_rl way: a folder per run, --resume by folder, Ctrl-C saves and exits with one line."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from go1o4.runs import RunError, latest_checkpoint, new_run_dir, resolve_run

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO, "sim_pretrain", "configs", "flat.yaml")
TINY = ["env.num_envs=4", "env.num_workers=1", "runner.num_steps_per_env=8", "runner.max_iterations=100000",
        "runner.save_interval=100000", "runner.save_every_s=0", "runner.actor_hidden=[512, 256, 128]",
        "runner.critic_hidden=[32]", "ppo.num_minibatches=2", "ppo.epochs=1", "runner.bc_prior_steps=0"]


def test_run_folders_never_shared_and_resume_picks_the_latest(tmp_path):
    now = time.mktime((2026, 12, 4, 21, 0, 0, 0, 0, -1))
    a, b = new_run_dir(str(tmp_path), now=now), new_run_dir(str(tmp_path), now=now)
    assert a != b and os.path.basename(a) == "2026-12-04_21-00-00" and b == a + "_2"
    assert os.path.basename(new_run_dir(str(tmp_path), "mattress", now=now)) == "2026-12-04_21-00-00_mattress"
    with pytest.raises(RunError, match="holds no checkpoint"):
        latest_checkpoint(a)
    for n in ("model_50.pt", "model_100.pt", "model_7.pt"):
        open(os.path.join(a, n), "w").close()
    assert latest_checkpoint(a).endswith("model_100.pt")
    open(os.path.join(a, "model_last.pt"), "w").close()
    assert resolve_run(None, a) == (a, os.path.join(a, "model_last.pt"))
    with pytest.raises(RunError, match="--out ROOT"):
        resolve_run(None, None)
    with pytest.raises(RunError, match="--run-name"):
        new_run_dir(str(tmp_path), "../x")


def _ctrl_c_reaches_it():
    """A child started from a background job inherits SIGINT ignored (POSIX: asynchronous commands of a shell
    without job control), and Python then keeps ignoring it: give the child the default, as a terminal would."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _pretrain(args, **kw):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "go1o4.cli", "pretrain", "--config", CONFIG, "--no-progress",
                             "--set"] + TINY + args, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_ctrl_c_reaches_it, **kw)


def test_ctrl_c_saves_a_checkpoint_and_exits_with_one_line(tmp_path):
    root = str(tmp_path / "runs")
    p = _pretrain(["--out", root], start_new_session=True)  # its own process group, as under a terminal
    deadline = time.monotonic() + 300
    run = None
    while time.monotonic() < deadline and p.poll() is None:  # wait for two finished iterations
        runs = os.listdir(root) if os.path.isdir(root) else []
        if runs:
            run = os.path.join(root, runs[0])
            prog = os.path.join(run, "progress.jsonl")
            if os.path.exists(prog) and len(open(prog).read().splitlines()) >= 2:
                break
        time.sleep(0.2)
    assert p.poll() is None, p.communicate()
    os.killpg(p.pid, signal.SIGINT)  # Ctrl-C reaches the trainer and its env worker
    out, err = p.communicate(timeout=600)  # a guard against a hang only: a loaded machine may be slow
    assert p.returncode == 130, err
    assert "Traceback" not in err and "Traceback" not in out, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and "interrupted at iteration" in lines[0] and "--resume " + run in lines[0], err
    ckpt = torch.load(os.path.join(run, "model_last.pt"), weights_only=True)
    done = ckpt["iteration"]
    assert done >= 2 and "run folder: %s" % run in out

    # --resume RUN continues in the same folder from its latest checkpoint; a new run gets its own folder
    r = _pretrain(["--resume", run, "--iterations", "1"])
    out, err = r.communicate(timeout=300)
    assert r.returncode == 0, err
    assert "resumed from %s at iteration %d" % (os.path.join(run, "model_last.pt"), done) in out
    assert torch.load(os.path.join(run, "model_last.pt"), weights_only=True)["iteration"] == done + 1
    assert os.listdir(root) == [os.path.basename(run)]


def test_wandb_is_optional_and_explained(tmp_path, capsys):
    import importlib.util

    from go1o4.cli import main

    if importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed here: the missing-package message cannot be shown")
    for cmd in (["pretrain", "--config", CONFIG, "--out", str(tmp_path / "p")],
                ["offline", "--dataset", "uni_o4_real", "--out", str(tmp_path / "o")]):
        assert main(cmd + ["--wandb"]) == 2
        assert "--wandb needs the wandb package" in capsys.readouterr().err


def test_offline_ctrl_c_saves_its_checkpoint(tmp_path):
    from go1o4.data.dataset import TransitionDataset, compute_stats
    from go1o4.offline_finetune.synthetic import make_synthetic

    tr = make_synthetic(num_episodes=10, steps=60, seed=2)
    data = str(tmp_path / "synthetic.h5")
    TransitionDataset(stats=compute_stats(tr.observations, tr.actions, tr.rewards, 1e-2), meta={"reward": "synthetic"},
                      **{k: getattr(tr, k) for k in ("observations", "actions", "rewards", "next_observations",
                                                     "terminals", "timeouts", "episode_ids")}).save(data)
    out = str(tmp_path / "offline")
    sets = ["bc.steps=1000000", "bc.eval_every=1000000", "bc.batch_size=64", "log_every=10",
            "checkpoint_every=1000000", "torch_threads=1"]
    p = subprocess.Popen([sys.executable, "-m", "go1o4.cli", "offline", "--dataset", data, "--preset", "quick",
                          "--out", out, "--no-progress"] + sum((["--set", s] for s in sets), []), cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                         preexec_fn=_ctrl_c_reaches_it)
    metrics = os.path.join(out, "metrics.json")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and p.poll() is None and not os.path.isdir(os.path.join(out, "tb")):
        time.sleep(0.2)  # the BC stage logged its step-0 evaluation: its loop starts now
    time.sleep(3.0)  # some BC steps (no periodic checkpoint before 1e6 steps)
    assert p.poll() is None, p.communicate()
    os.killpg(p.pid, signal.SIGINT)
    _, err = p.communicate(timeout=600)  # a guard against a hang only: a loaded machine may be slow
    lines = [x for x in err.splitlines() if x.strip()]
    assert p.returncode == 130 and "Traceback" not in err and len(lines) == 1, err
    assert "interrupted; checkpoint in %s" % out in lines[0]
    ckpt = torch.load(os.path.join(out, "checkpoint.pt"), map_location="cpu", weights_only=True)
    assert ckpt["stages"]["bc"]["steps"] > 0 and os.path.exists(metrics)
