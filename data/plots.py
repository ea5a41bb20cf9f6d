"""PNG plots of an episode (velocity tracking, joint tracking, reward, safety events) and of a dataset."""
from typing import Optional

import numpy as np
from go1o4.data.dataset import TransitionDataset
from go1o4.data.log_format import Episode
from go1o4.data.rewards import RewardInputError, body_velocities, compute_reward

from go1o4 import contract as C


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_episode(ep: Episode, out_png: str, reward: Optional[str] = None) -> str:
    """Commanded vs measured velocity, joint tracking (q vs q_des), reward, safety events over time."""
    plt = _pyplot()
    n = ep.num_steps
    t = np.asarray(ep.steps["time"], dtype=np.float64) if "time" in ep.steps else np.arange(n) / ep.rate_hz
    t = t - (t[0] if n else 0.0)
    fig, axes = plt.subplots(4, 1, figsize=(11, 12), sharex=True)
    fig.suptitle("%s  (%d steps, %s: %s, %s)" % (ep.name or ep.source, n, ep.end, ep.reason, ep.status))

    ax = axes[0]
    cmd = (np.asarray(ep.steps["command"])[:, :3] if "command" in ep.steps
           else np.asarray(ep.steps["obs"])[:, C.OBS_SLICES["commands"]][:, :3] / C.COMMAND_SCALES[:3])
    try:
        v, w = body_velocities(ep.steps)
        label = "T265 body"
    except RewardInputError:
        v = np.asarray(ep.steps.get("t265_velocity_world", np.full((n, 3), np.nan)))
        w = np.asarray(ep.steps.get("t265_angular_velocity", np.full((n, 3), np.nan)))
        label = "T265 world"
    for i, (name, color) in enumerate((("vx", "C0"), ("vy", "C1"))):
        ax.plot(t, cmd[:, i], "--", color=color, label="cmd " + name)
        ax.plot(t, v[:, i], color=color, alpha=0.7, label="%s %s" % (label, name))
    ax.plot(t, cmd[:, 2], "--", color="C2", label="cmd yaw rate")
    ax.plot(t, w[:, 2], color="C2", alpha=0.7, label="%s yaw rate" % label)
    ax.set_ylabel("m/s, rad/s")
    ax.legend(loc="upper right", ncol=3, fontsize=7)
    ax.set_title("commanded vs measured velocity")

    ax = axes[1]
    if "q" in ep.steps and "q_des" in ep.steps:
        q, qd = np.asarray(ep.steps["q"]), np.asarray(ep.steps["q_des"])
        for k, leg in enumerate(C.LEGS_SIM):
            j = 3 * k + 1  # thigh joints
            ax.plot(t, q[:, j], color="C%d" % k, label="%s thigh q" % leg)
            ax.plot(t, qd[:, j], "--", color="C%d" % k, alpha=0.6, label="%s thigh q_des" % leg)
        rms = np.sqrt(np.mean((q - qd) ** 2))
        ax.set_title("joint tracking (thighs; RMS |q - q_des| over all joints %.3f rad)" % rms)
        ax.legend(loc="upper right", ncol=4, fontsize=7)
    else:
        ax.set_title("joint tracking: q / q_des not logged")
    ax.set_ylabel("rad")

    ax = axes[2]
    name = reward or ("logged" if "reward" in ep.steps else "uni_o4_world")
    try:
        r = compute_reward(name, ep.steps, dt=1.0 / ep.rate_hz)
        ax.plot(t, r, color="C3")
        ax.set_title("reward %r (return %.3f)" % (name, float(np.nansum(r))))
    except (RewardInputError, ValueError) as e:
        ax.set_title("reward %r unavailable: %s" % (name, e))
    ax.set_ylabel("reward")

    ax = axes[3]
    if "safety_state" in ep.steps:
        s = np.asarray(ep.steps["safety_state"])
        ax.step(t, s, where="post", color="C4", label="safety_state")
        for i in np.flatnonzero(np.diff(s) != 0) + 1:
            ax.axvline(t[i], color="C4", alpha=0.3)
    else:
        ax.text(0.01, 0.5, "no safety_state logged", transform=ax.transAxes)
    stale = int(ep.meta.get("stale_start_steps", 0) or 0)
    if stale and n:
        ax.axvspan(t[0], t[min(stale, n - 1)], color="grey", alpha=0.3, label="stale start rows")
    if n:
        ax.axvline(t[-1], color="red" if ep.terminal else "black", ls=":", label="end: %s" % ep.reason)
    ax.legend(loc="upper right", fontsize=7)
    ax.set_title("safety events")
    ax.set_xlabel("time (s)")
    fig.tight_layout()
    fig.savefig(out_png, dpi=90)
    plt.close(fig)
    return out_png


def plot_dataset(ds: TransitionDataset, out_png: str) -> str:
    """Histograms: rewards, episode returns and lengths, actions, gravity and velocity-command features."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(14, 8))
    last = slice(ds.observations.shape[1] - C.OBS_DIM, ds.observations.shape[1])  # newest step
    newest = ds.observations[:, last]
    ids, counts = np.unique(ds.episode_ids, return_counts=True)
    returns = np.bincount(np.searchsorted(ids, ds.episode_ids), weights=ds.rewards)
    axes[0, 0].hist(ds.rewards, bins=80)
    axes[0, 0].set_title("reward %r (N=%d)" % (ds.meta.get("reward"), len(ds)))
    axes[0, 1].hist(returns, bins=40)
    axes[0, 1].set_title("episode returns (%d episodes)" % len(ids))
    axes[0, 2].hist(counts, bins=40)
    axes[0, 2].set_title("transitions per episode")
    axes[1, 0].hist(ds.actions.ravel(), bins=100)
    axes[1, 0].set_title("actions (all joints, raw)")
    g = newest[:, C.OBS_SLICES["projected_gravity"]]
    for i, n in enumerate("xyz"):
        axes[1, 1].hist(g[:, i], bins=80, alpha=0.6, label="g_" + n)
    axes[1, 1].legend()
    axes[1, 1].set_title("projected gravity")
    cmd = newest[:, C.OBS_SLICES["commands"]][:, :3] / C.COMMAND_SCALES[:3]
    for i, n in enumerate(("vx", "vy", "yaw rate")):
        axes[1, 2].hist(cmd[:, i], bins=60, alpha=0.6, label=n)
    axes[1, 2].legend()
    axes[1, 2].set_title("velocity commands (physical units)")
    fig.tight_layout()
    fig.savefig(out_png, dpi=90)
    plt.close(fig)
    return out_png

