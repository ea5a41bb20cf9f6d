"""Online PPO trainer robustness: NaN updates rejected, hot-swap refuses unfit policies, SIGKILL mid-update + resume.

The resume test runs ``go1o4 online`` as a real subprocess against the simulated Go1 (lock-step, mattress,
real SDK over UDP on 127.0.0.1), kills it with SIGKILL while an update is in flight, resumes it, and checks
from the checkpoint and the episode logs that no logged step was lost and no update was applied twice.
"""
import copy
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import yaml
from go1o4.data.dataset import TransitionDataset
from go1o4.data.reader import load_episode
from go1o4.online_finetune.config import OnlineConfig
from go1o4.online_finetune.rollouts import episode_keys, make_segment
from go1o4.online_finetune.trainer import CHECKPOINT, OnlineTrainer
from go1o4.robot_runtime.rollout import RobotRunner, RolloutConfig
from runtime_helpers import wrong_shape_policy

from go1o4 import contract as C
from go1o4.config import load_config
from go1o4.policy_contract import ContractMismatch, file_sha256, load_contract, save_contract
from go1o4.rl.networks import Critic, GaussianActor

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def offline_like_dir(folder, seed=0):
    """An offline run's export files (policy_actor.pt, value_v.pt, config.yaml) from the real network classes."""
    torch.manual_seed(seed)
    os.makedirs(folder, exist_ok=True)
    actor = GaussianActor(init_std=0.4)
    critic = Critic(hidden=[64, 64], activation="relu")
    torch.save(actor.state_dict(), os.path.join(folder, "policy_actor.pt"))
    torch.save(critic.state_dict(), os.path.join(folder, "value_v.pt"))
    with open(os.path.join(folder, "config.yaml"), "w") as f:
        yaml.safe_dump({"value": {"activation": "relu"}}, f)
    return folder


def small_dataset(n=200, episodes=4, seed=0):
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, C.POLICY_INPUT_DIM)).astype(np.float32)
    return TransitionDataset(obs, rng.normal(size=(n, C.NUM_ACTIONS)).astype(np.float32),
                             rng.uniform(0, 0.1, n).astype(np.float32), obs, np.zeros(n, np.float32),
                             np.zeros(n, np.float32), np.repeat(np.arange(episodes), n // episodes).astype(np.int32),
                             stats={"obs_mean": obs.mean(0), "obs_std": obs.std(0)}, meta={"reward": "logged"})


def tiny_config(**over):
    base = ["total_steps=400", "steps_per_update=150", "episode_steps=80", "minibatch_size=50", "ppo.epochs=2",
            "curve.episodes=0", "robot.session_overrides=[runtime.settle_s=0.1]"]
    return load_config(OnlineConfig, None, base + ["%s=%s" % kv for kv in over.items()])


def on_policy_segments(actor, n_seg=3, steps=60, nan_reward=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    segs = []
    for i in range(n_seg):
        obs = torch.randn(steps, C.POLICY_INPUT_DIM, generator=g)
        with torch.no_grad():
            dist = actor.distribution(obs)
            act = dist.sample()
            lp = dist.log_prob(act).sum(-1)
        r = torch.rand(steps, generator=g).numpy() * 0.1
        seg = make_segment("s/episode_%05d.h5" % i, obs.numpy(), act.numpy(), lp.numpy(), r,
                           "terminal" if i == 0 else "truncation", obs[-1].numpy())
        if nan_reward and i == 1:
            seg.rewards[10] = np.nan  # slips past the loader: the update itself must catch it
        segs.append(seg)
    return segs


def _params(trainer):
    return copy.deepcopy(trainer.ppo.state_dict())


def _same(a, b):
    for k in ("actor", "critic"):
        for name in a[k]:
            if not torch.equal(a[k][name], b[k][name]):
                return False
    return True


@pytest.fixture
def trainer(tmp_path):
    return OnlineTrainer(tiny_config(), str(tmp_path / "run"), offline_dir=offline_like_dir(str(tmp_path / "off")),
                         dataset=small_dataset(), progress=False)


def test_nan_update_is_rejected_and_previous_policy_kept(trainer):
    before, sha = _params(trainer), trainer.state.policy_sha256
    trainer.pending = on_policy_segments(trainer.actor, nan_reward=True)
    row = trainer.update()
    assert not row["accepted"] and "not finite" in row["reason"]
    assert _same(before, _params(trainer))
    assert trainer.ppo.state_dict()["actor_opt"]["state"] == {}  # optimiser state restored too (never stepped)
    st = trainer.state.to_dict()
    assert (st["update"], st["attempts"], st["rejected"], st["policy"]) == (0, 1, 1, "policies/update_00000.onnx")
    assert st["policy_sha256"] == sha == file_sha256(os.path.join(trainer.out, st["policy"]))
    assert len(st["consumed"]) == 3  # the bad data is not retried forever

    trainer.ppo.cfg.actor_lr = 1e36  # parameters overflow during the update: rejected as well
    trainer.pending = on_policy_segments(trainer.actor, seed=1)
    row = trainer.update()
    assert not row["accepted"] and _same(before, _params(trainer))
    assert all(torch.isfinite(p).all() for p in trainer.actor.parameters())

    trainer.ppo.cfg.actor_lr = 2e-5
    trainer.pending = on_policy_segments(trainer.actor, seed=2)
    row = trainer.update()
    assert row["accepted"] and row["ppo/behaviour_logp_gap"] < 1e-4
    assert not _same(before, _params(trainer))
    assert trainer.state.update == 1 and trainer.state.policy == "policies/update_00001.onnx"
    assert trainer.runner.policy.path.endswith("update_00001.onnx")  # hot-swapped after its checks
    ck = torch.load(os.path.join(trainer.out, CHECKPOINT), weights_only=True)
    assert ck["state"]["rejected"] == 2 and ck["state"]["update"] == 1


def test_hot_swap_refuses_unfit_policies(trainer, tmp_path):
    runner = RobotRunner(RolloutConfig(), None)
    good = runner.swap_policy(os.path.join(trainer.out, trainer.state.policy))
    with pytest.raises(ContractMismatch, match="input"):
        runner.swap_policy(wrong_shape_policy(str(tmp_path), n_in=280))
    with pytest.raises(ContractMismatch, match="output"):
        runner.swap_policy(wrong_shape_policy(str(tmp_path), n_out=10))
    assert runner.policy is good
    bad = str(tmp_path / "bad_gains.onnx")  # right shapes, wrong contract (another robot's gains)
    src = os.path.join(trainer.out, trainer.state.policy)
    with open(src, "rb") as f, open(bad, "wb") as g:
        g.write(f.read())
    contract = load_contract(os.path.splitext(src)[0] + ".yaml")
    contract["control"]["kp"] = 28.0
    save_contract(str(tmp_path / "bad_gains.yaml"), contract)
    with pytest.raises(ContractMismatch, match="kp"):
        runner.swap_policy(bad)
    assert runner.policy is good


def _alive(marker):
    """Whether a process has ``marker`` in its command line (the sim robot's T265 channel names its parent)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if marker.encode() in f.read():
                    return True
        except OSError:
            continue
    return False


def _wait_gone(marker, timeout=10.0):
    deadline = time.monotonic() + timeout
    while _alive(marker):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _read_until(proc, marker, who, timeout=240.0):
    """Read the child's output until a line contains ``marker`` (it is then stalled before its checkpoint)."""
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        assert line, "%s exited early:\n%s" % (who, "".join(lines))
        lines.append(line)
        if marker in line:
            return lines
    pytest.fail("%r not seen within %.0f s:\n%s" % (marker, timeout, "".join(lines)))


def _spawn(args):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "go1o4.cli", "online", "--no-progress"] + args, cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_sigkill_mid_update_then_resume_loses_no_step_and_repeats_no_update(tmp_path):
    off = offline_like_dir(str(tmp_path / "off"))
    ds_path = str(tmp_path / "dataset.h5")
    small_dataset().save(ds_path)
    out = str(tmp_path / "run")
    common = ["--out", out, "--set", "total_steps=400", "--set", "steps_per_update=150", "--set", "episode_steps=80",
              "--set", "minibatch_size=50", "--set", "ppo.epochs=2", "--set", "curve.episodes=0",
              "--set", "robot.session_overrides=[runtime.settle_s=0.1]"]
    proc = _spawn(common + ["--offline", off, "--dataset", ds_path, "--set", "faults.stall_before_checkpoint_s=60"])
    try:
        _read_until(proc, "update 1 done, stalling", "trainer")
        on_disk = episode_keys(os.path.join(out, "logs"))
        assert _alive("GO1O4_T265_%d_" % proc.pid)
        os.kill(proc.pid, signal.SIGKILL)  # the simulated Go1 child dies with it (PR_SET_PDEATHSIG)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _wait_gone("GO1O4_T265_%d_" % proc.pid), "the simulated Go1 outlived the killed trainer"
    ck = torch.load(os.path.join(out, CHECKPOINT), weights_only=True)
    assert ck["state"]["attempts"] == 0 and ck["state"]["consumed"] == []  # the update in flight never landed
    assert len(on_disk) >= 2

    resume = common + ["--set", "faults.stall_before_checkpoint_s=0"]
    res = subprocess.run([sys.executable, "-m", "go1o4.cli", "online", "--no-progress"] + resume, cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "go into the next update" in res.stdout
    st = torch.load(os.path.join(out, CHECKPOINT), weights_only=True)["state"]
    keys = episode_keys(os.path.join(out, "logs"))
    assert sorted(st["consumed"]) == sorted(keys) and len(set(st["consumed"])) == len(st["consumed"])
    assert st["consumed"][:len(on_disk)] == on_disk  # the first update after the restart took the pre-kill episodes
    assert [h["attempt"] for h in st["history"]] == list(range(1, st["attempts"] + 1))
    assert st["update"] == st["attempts"] - st["rejected"] and st["rejected"] == 0
    logged = sum(load_episode(os.path.join(out, "logs", k)).num_steps for k in keys)
    assert st["consumed_logged"] == logged >= 400
    first = st["history"][0]
    assert first["episodes"] == len(on_disk)
    assert os.path.exists(os.path.join(out, "policy.onnx"))
    ep = load_episode(os.path.join(out, "logs", keys[-1]))
    assert np.isfinite(ep.steps["log_prob"]).all() and ep.meta["online_update"] >= 1


def test_one_trainer_per_run_directory(trainer, tmp_path):
    from go1o4.online_finetune.runfiles import RunDirBusy

    with pytest.raises(RunDirBusy, match="another trainer is running"):
        OnlineTrainer(tiny_config(), trainer.out, progress=False)


# ----------------------------------------------------------------------------- the IQL online baseline
IQL_CHILD = """
import json, sys
from go1o4.data.dataset import TransitionDataset
from go1o4.config import load_config
from go1o4.online_finetune.baselines import IQLOnline
from go1o4.online_finetune.config import IQLOnlineConfig, OnlineConfig
iql_dir, ds, out, over = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
cfg = load_config(OnlineConfig, None, over)
IQLOnline(cfg, IQLOnlineConfig(updates_per_step=0.1, batch_size=32), iql_dir, TransitionDataset.load(ds), out,
          progress=False).train()
"""


def iql_like_dir(folder):
    """An offline IQL run's files as IQLOnline reads them: config.yaml, checkpoint.pt (value), policy_actor.pt."""
    from go1o4.offline_finetune.config import OfflineConfig
    from go1o4.offline_finetune.value import IQLValue

    from go1o4.config import save_config

    torch.manual_seed(0)
    os.makedirs(folder, exist_ok=True)
    cfg = load_config(OfflineConfig, None, ["value.q_hidden=[64,64]", "value.v_hidden=[64,64]"])
    save_config(cfg, os.path.join(folder, "config.yaml"))
    torch.save({"modules": {"value": IQLValue(cfg.value).state_dict()}}, os.path.join(folder, "checkpoint.pt"))
    torch.save(GaussianActor(init_std=0.4).state_dict(), os.path.join(folder, "policy_actor.pt"))
    return folder


def _iql_child(iql_dir, ds, out, total, stall):
    over = ["total_steps=%d" % total, "episode_steps=80", "curve.episodes=0",
            "robot.session_overrides=[runtime.settle_s=0.1]", "faults.stall_before_checkpoint_s=%g" % stall]
    return subprocess.Popen([sys.executable, "-c", IQL_CHILD, iql_dir, ds, out, json.dumps(over)], cwd=REPO,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_iql_online_sigkill_then_resume_loses_no_step_and_repeats_no_gradient_step(tmp_path):
    """IQL online on the simulated Go1: two episodes checkpointed, a third consumed and SIGKILLed before its
    checkpoint; the restart trains on that third episode from its log, once, and carries on to the budget."""
    from go1o4.online_finetune.baselines import CHECKPOINT as IQL_CKPT
    from go1o4.online_finetune.rollouts import load_segment, read_ledger

    iql_dir, ds, out = iql_like_dir(str(tmp_path / "iql")), str(tmp_path / "ds.h5"), str(tmp_path / "run")
    small_dataset().save(ds)
    first = _iql_child(iql_dir, ds, out, 150, 0)
    assert first.wait(240) == 0, first.stdout.read()
    before = torch.load(os.path.join(out, IQL_CKPT), weights_only=True)["state"]
    assert before["consumed"] == episode_keys(os.path.join(out, "logs"))

    proc = _iql_child(iql_dir, ds, out, 400, 60)
    try:
        _read_until(proc, "stalling", "IQL online")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed = torch.load(os.path.join(out, IQL_CKPT), weights_only=True)["state"]
    assert killed["consumed"] == before["consumed"] and killed["grad_steps"] == before["grad_steps"]
    on_disk = episode_keys(os.path.join(out, "logs"))
    assert len(on_disk) == len(before["consumed"]) + 1  # the episode trained on when the kill came

    last = _iql_child(iql_dir, ds, out, 400, 0)
    text = last.communicate(timeout=300)[0]
    assert last.returncode == 0, text
    assert "1 episode(s)" in text and "consumed first" in text
    st = torch.load(os.path.join(out, IQL_CKPT), weights_only=True)["state"]
    keys = episode_keys(os.path.join(out, "logs"))
    assert st["consumed"] == keys and st["consumed"][:len(on_disk)] == on_disk and not st["skipped"]
    assert st["steps"] == sum(load_episode(os.path.join(out, "logs", k)).num_steps for k in keys) >= 400
    ledger, owed, grad = read_ledger(out), 0.0, 0  # gradient steps owed by exactly these episodes, each once
    for k in keys:
        owed += 0.1 * len(load_segment(os.path.join(out, "logs"), k, (ledger.get(k) or {}).get("final_obs"),
                                       need_log_probs=False))
        while owed >= 1.0:
            owed, grad = owed - 1.0, grad + 1
    assert st["grad_steps"] == grad > 0
    assert os.path.exists(os.path.join(out, "policy.onnx"))


def test_trainer_state_reads_old_checkpoints_or_fails_clearly():
    from go1o4.online_finetune.trainer import TrainerState

    st = TrainerState(update=3, consumed=["s/episode_00000.h5"], policy="policies/update_00003.onnx")
    assert TrainerState.from_dict(st.to_dict()) == st
    old = st.to_dict()
    del old["wall_s"]  # written before the wall clock was recorded
    assert TrainerState.from_dict(old).wall_s == 0.0
    broken = st.to_dict()
    del broken["consumed"]
    broken["epoch"] = 1
    with pytest.raises(ValueError, match=r"missing \['consumed'\], unknown \['epoch'\]"):
        TrainerState.from_dict(broken)
    with pytest.raises(ValueError, match="not a mapping"):
        TrainerState.from_dict([1, 2])
