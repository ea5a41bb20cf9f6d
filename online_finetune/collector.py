"""Online data collection on the simulated Go1: episode commands and the logged training episode.

Episodes run through the runtime's rollout API (:mod:`go1o4.robot_runtime.rollout`: ``RobotRunner``,
``exploration``, ``load_checked_policy``); this module adds what online learning needs on top: the seeded
command of an episode and reading the episode back from the runtime's log, exactly as after a crash.
"""
import os
from typing import List, Optional

import numpy as np
from go1o4.robot_runtime.rollout import RobotRunner, exploration


def sample_command(cfg, rng: np.random.Generator) -> List[float]:
    """One (vx, vy, yaw rate) uniformly from the configured ranges."""
    return [float(rng.uniform(*cfg.vx)), float(rng.uniform(*cfg.vy)), float(rng.uniform(*cfg.yaw_rate))]


def collect_logged_episode(runner: RobotRunner, cfg, index: int, log_std, run_dir: str, meta: dict,
                           ledger: Optional[dict] = None, need_log_probs: bool = True):
    """Online training episode number ``index`` (its command and exploration seeded by (cfg.seed, index)), read back
    from the runtime's log exactly as after a crash; its final state goes to the run's ledger first.

    Returns (episode key relative to the runner's log folder, steps the robot took, segment or None if unusable)."""
    from go1o4.online_finetune.rollouts import append_ledger, load_segment
    from go1o4.online_finetune.runfiles import wait_closed

    rng = np.random.default_rng([cfg.seed, index])
    command = sample_command(cfg.commands, rng)
    expl = exploration(log_std, seed=int(rng.integers(2 ** 31)))
    res = runner.episode(command, cfg.episode_steps, exploration=expl, meta=dict(meta, command=command))
    if not res.log_path:
        if res.steps == 0:  # e.g. the T265 was already stale when the episode should start: nothing to learn from
            raise RuntimeError("online episode %d ended before its first step (%s: %s); nothing was logged"
                               % (index, res.end, res.reason))
        raise RuntimeError("the runtime did not log online episode %d (%s)" % (index, runner.log_error or "no log"))
    if not wait_closed(res.log_path):
        raise RuntimeError("the runtime's logger did not close %s" % res.log_path)
    key = os.path.relpath(res.log_path, runner.log_dir).replace(os.sep, "/")
    final = None if res.final_policy_input is None else [float(x) for x in res.final_policy_input]
    append_ledger(run_dir, dict(ledger or {}, key=key, steps=res.steps, end=res.end, reason=res.reason,
                                command=command, final_obs=final))
    return key, int(res.steps), load_segment(runner.log_dir, key, final, need_log_probs)
