"""PNG plots of an episode (velocity, attitude, joint tracking, reward, named safety events) and of a dataset."""
from typing import Optional, Tuple

import numpy as np
from go1o4.data.dataset import TransitionDataset
from go1o4.data.log_format import SAFETY_STATE_NAMES, Episode
from go1o4.data.rewards import RewardInputError, compute_reward
from go1o4.data.series import episode_series, safety_events, safety_name

from go1o4 import contract as C


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _envelope(t: np.ndarray, y: np.ndarray, max_points: int) -> tuple:
    """Min/max per bucket so a 100 s episode plots every spike with at most ~max_points points."""
    n = len(t)
    if n <= max_points:
        return t, y
    k = int(np.ceil(n / (max_points / 2)))
    m = n // k * k
    tb, yb = t[:m].reshape(-1, k), y[:m].reshape(-1, k)
    lo, hi = np.nanargmin(np.where(np.isnan(yb), np.inf, yb), 1), np.nanargmax(np.where(np.isnan(yb), -np.inf, yb), 1)
    idx = np.sort(np.stack([lo, hi], 1), 1) + (np.arange(len(tb)) * k)[:, None]
    idx = np.concatenate([idx.ravel(), np.arange(m, n)])
    return t[idx], y[idx]


def plot_episode(ep: Episode, out_png: str, reward: Optional[str] = None,
                 window: Optional[Tuple[float, float]] = None, max_points: int = 2000, long_s: float = 20.0) -> str:
    """Velocity tracking, attitude (roll/pitch), joint tracking, reward and named safety events over time.

    ``window`` (start, end) in seconds zooms in; long series are drawn as min/max envelopes (``max_points``) and
    spans over ``long_s`` show joint tracking as a moving RMS error per leg instead of the raw thigh angles.
    """
    plt = _pyplot()
    ser = episode_series(ep)
    t = ser["t"]
    sel = np.ones(len(t), bool) if window is None else (t >= window[0]) & (t <= window[1])
    if window is not None and not sel.any():
        raise ValueError("window %.1f:%.1f s holds no step (episode is %.1f s)" % (window[0], window[1],
                                                                                  t[-1] if len(t) else 0.0))
    idx = np.flatnonzero(sel)
    t = t[idx]

    def line(ax, y, *a, **k):
        ax.plot(*_envelope(t, np.asarray(y, dtype=np.float64)[idx], max_points), *a, lw=0.8, **k)

    fig, axes = plt.subplots(6, 1, figsize=(14, 17), sharex=True,
                             gridspec_kw={"height_ratios": [1.2, 1, 1, 1.2, 0.8, 0.9]})
    fig.suptitle("%s  (%d steps, %.1f s, %s: %s, %s)" % (ep.name or ep.source, ep.num_steps,
                                                         ep.num_steps / ep.rate_hz, ep.end, ep.reason, ep.status))
    ax = axes[0]
    for i, (name, color) in enumerate((("vx", "C0"), ("vy", "C1"))):
        line(ax, ser["cmd"][:, i], "--", color=color, label="cmd " + name)
        line(ax, ser["v_body"][:, i], color=color, alpha=0.7, label="T265 " + name)
    ax.set_ylabel("m/s")
    ax.legend(loc="upper right", ncol=4, fontsize=7)
    ax.set_title("commanded vs measured velocity (trunk frame)")
    ax = axes[1]
    line(ax, ser["cmd"][:, 2], "--", color="C2", label="cmd yaw rate")
    line(ax, ser["w_body"][:, 2], color="C2", alpha=0.7, label="measured yaw rate")
    ax.set_ylabel("rad/s")
    ax.legend(loc="upper right", ncol=2, fontsize=7)
    ax.set_title("yaw rate")
    ax = axes[2]
    rp = np.degrees(ser["roll_pitch"])
    line(ax, rp[:, 0], color="C0", label="roll")
    line(ax, rp[:, 1], color="C1", label="pitch")
    ax.set_ylabel("deg")
    ax.legend(loc="upper right", ncol=2, fontsize=7)
    ax.set_title("attitude (max |roll| %.0f deg, max |pitch| %.0f deg)"
                 % (np.nanmax(np.abs(rp[idx, 0])), np.nanmax(np.abs(rp[idx, 1]))))
    ax = axes[3]
    if "q" in ep.steps and "q_des" in ep.steps:
        q, qd = np.asarray(ep.steps["q"]), np.asarray(ep.steps["q_des"])
        rms = np.sqrt(np.mean((q[idx] - qd[idx]) ** 2))
        if t[-1] - t[0] > long_s:  # raw gait oscillations are a solid band at this scale: 0.5 s moving RMS per leg
            k_win = max(1, int(0.5 * ep.rate_hz))
            kernel = np.ones(k_win) / k_win
            for k, leg in enumerate(C.LEGS_SIM):
                e2 = np.mean((q[:, 3 * k:3 * k + 3] - qd[:, 3 * k:3 * k + 3]) ** 2, axis=1)
                line(ax, np.sqrt(np.convolve(e2, kernel, mode="same")), color="C%d" % k, label="%s leg" % leg)
            ax.set_title("joint tracking: 0.5 s moving RMS |q - q_des| per leg (overall %.3f rad; "
                         "--window START:END for raw q vs q_des)" % rms)
        else:
            for k, leg in enumerate(C.LEGS_SIM):
                j = 3 * k + 1  # thigh joints
                line(ax, q[:, j], color="C%d" % k, label="%s thigh q" % leg)
                line(ax, qd[:, j], "--", color="C%d" % k, alpha=0.6, label="%s thigh q_des" % leg)
            ax.set_title("joint tracking (thighs; RMS |q - q_des| over all joints %.3f rad)" % rms)
        ax.legend(loc="upper right", ncol=4, fontsize=7)
    else:
        ax.set_title("joint tracking: q / q_des not logged")
    ax.set_ylabel("rad")
    ax = axes[4]
    name = reward or ("logged" if "reward" in ep.steps else "uni_o4_world")
    try:
        r = compute_reward(name, ep.steps, dt=1.0 / ep.rate_hz)
        line(ax, r, color="C3")
        ax.set_title("reward %r (return %.3f)" % (name, float(np.nansum(r[idx]))))
    except (RewardInputError, ValueError) as e:
        ax.set_title("reward %r unavailable: %s" % (name, e))
    ax.set_ylabel("reward")
    _safety_panel(axes[5], ep, ser["t"], window)
    axes[5].set_xlabel("time (s)")
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    fig.savefig(out_png, dpi=90)
    plt.close(fig)
    return out_png


def _safety_panel(ax, ep: Episode, t: np.ndarray, window: Optional[Tuple[float, float]]) -> None:
    """The safety state by name (a step line on named levels), each change labelled, and the episode end."""
    n = ep.num_steps
    codes = sorted(SAFETY_STATE_NAMES)
    if "safety_state" in ep.steps:
        s = np.asarray(ep.steps["safety_state"]).astype(int)
        ax.step(t, s, where="post", color="C4", lw=1.2)
        events = safety_events(s)
        lo, hi = window or (t[0], t[-1])
        shown = [(i, txt) for i, txt in events[1:] if lo <= t[i] <= hi]
        for k, (i, txt) in enumerate(shown[:12]):
            ax.axvline(t[i], color="C4", alpha=0.3)
            ax.annotate(txt, (t[i], s[i]), xytext=(3, 8 if k % 2 else -12), textcoords="offset points", fontsize=7)
        codes = sorted(set(codes) | set(np.unique(s).tolist()))
        ax.set_title("safety state (%d change(s)%s)" % (len(events) - 1, "" if len(shown) <= 12 else "; first 12 named"))
    else:
        ax.set_title("safety state: not logged")
    ax.set_yticks(codes)
    ax.set_yticklabels([safety_name(c) for c in codes])
    ax.set_ylim(min(codes) - 0.5, max(codes) + 0.5)
    stale = int(ep.meta.get("stale_start_steps", 0) or 0)
    if stale and n:
        ax.axvspan(t[0], t[min(stale, n - 1)], color="grey", alpha=0.3, label="stale start rows")
    if n:
        ax.axvline(t[-1], color="red" if ep.terminal else "black", ls=":", label="end: %s (%s)" % (ep.end, ep.reason))
    ax.legend(loc="upper left", fontsize=7)
    if window is not None:
        ax.set_xlim(*window)


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

