"""Evaluation on the (simulated) mattress through the runtime: return, velocity-tracking error, fall rate.

Each policy runs deterministically (its mean action) for ``episodes`` episodes per commanded forward
speed, from standing, with the scripted resetter between episodes. Per episode:

* return: sum of the runtime's per-step reward (the Uni-O4 real-robot reward, T265 velocities);
* tracking error: mean over steps after ``warmup_steps`` of |v_xy - c_xy| (m/s), v from the T265 in the
  trunk frame (what the robot measures);
* fall: the episode ended terminal (|roll| or |pitch| beyond the safety limit);
* safety stop: any other early end caused by the robot (a watchdog rule), not the time limit.

An episode cut because the T265 stream went stale or bad (``t265_*``: the camera, not the policy; on a
loaded machine the simulated camera's LCM messages can arrive late) is run again, up to ``retries`` times,
as an operator would repeat the run; the number of repeats is reported.
"""
from typing import Any, Dict, List, Sequence

import numpy as np

FIELDS = ("return", "tracking_error", "fall", "safety_stop", "steps", "mean_vx")


def episode_metrics(res, command: Sequence[float], warmup_steps: int) -> Dict[str, float]:
    """Metrics of one runtime EpisodeResult (pure)."""
    v = np.asarray(res.v_body, dtype=np.float64).reshape(-1, 3)
    r = np.asarray(res.reward, dtype=np.float64).reshape(-1)
    c = np.asarray(command, dtype=np.float64)[:2]
    start = min(warmup_steps, max(len(v) - 1, 0))
    err = np.linalg.norm(v[start:, :2] - c, axis=1) if len(v) else np.zeros(0)
    ok = np.isfinite(err)
    stop = not res.terminal and res.reason not in ("time_limit",) and not res.reason.startswith("t265")
    return {"return": float(np.nansum(r)), "tracking_error": float(err[ok].mean()) if ok.any() else float("nan"),
            "fall": float(res.terminal), "safety_stop": float(stop), "steps": float(res.steps),
            "mean_vx": float(np.nanmean(v[start:, 0])) if len(v) and np.isfinite(v[start:, 0]).any() else float("nan")}


def aggregate(rows: List[Dict[str, float]]) -> Dict[str, float]:
    """Mean of each metric over episodes (fall -> fall rate)."""
    out = {}
    for k in FIELDS:
        x = np.asarray([r[k] for r in rows], dtype=np.float64)
        out[k] = float(np.nanmean(x)) if np.isfinite(x).any() else float("nan")
    out["episodes"] = float(len(rows))
    out["camera_repeats"] = float(sum(r.get("repeats", 0) for r in rows))
    return out


def camera_cut(res) -> bool:
    return not res.terminal and res.reason.startswith("t265")


def evaluate(runner, policy, speeds: Sequence[float], episodes: int, episode_steps: int, warmup_steps: int,
             progress=None, retries: int = 3) -> Dict[str, Any]:
    """Run ``policy`` (an object with ``act``) deterministically; {"speeds": {vx: metrics}, "episodes": [...]}."""
    per_speed, rows_all = {}, []
    for vx in speeds:
        rows = []
        for i in range(episodes):
            cmd = (float(vx), 0.0, 0.0)
            repeats = -1
            while True:
                repeats += 1
                res = runner.episode(cmd, episode_steps, exploration=None, record=False, policy=policy,
                                     meta={"evaluation": True})
                if not camera_cut(res) or repeats >= retries:
                    break
            m = episode_metrics(res, cmd, warmup_steps)
            m.update(speed=float(vx), episode=i, reason=res.reason, repeats=repeats)
            rows.append(m)
            if progress is not None:
                progress(res.steps)
        per_speed["%.2f" % vx] = aggregate(rows)
        rows_all += rows
    return {"speeds": per_speed, "all": aggregate(rows_all), "episodes": rows_all}
