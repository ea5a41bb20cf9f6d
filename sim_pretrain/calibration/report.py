"""Markdown report of a calibration: fitted parameters, real vs sim per statistic, histograms (PNG)."""
import os
from typing import Dict, List

import numpy as np
from go1o4.sim_pretrain.calibration import stats as S

from go1o4 import contract as C

KNOWN_GAPS = """\
- **No actuator latency model.** The robot ran the policy over the SDK with its own delays; the simulator
  applies each target at once (walk-these-ways randomised up to 30 ms in training, not modelled here).
- **No sensor noise.** Real joint encoders, IMU and the T265 are noisy; the simulated observations are exact,
  which narrows joint-velocity and roll/pitch spreads.
- **One mattress for every session.** Real runs were on one latex mattress, but at different spots and
  with the robot re-calibrated between files; the simulator is one homogeneous compliant plane.
- **T265 speed is a different sensor.** The real forward speed is the T265's (camera on the trunk,
  heading from its yaw); the simulated speed is the trunk's exact world velocity rotated by the trunk yaw.
- **Roll/pitch include the IMU's estimation error** on the robot (projected gravity from the onboard filter).
"""


def _fmt(x) -> str:
    return "%.3f" % x


def _joint_table(real: Dict, sim: Dict, key: str, unit: str) -> List[str]:
    lines = ["| joint | real | sim | sim/real |", "|---|---|---|---|"]
    for j, name in enumerate(C.JOINT_NAMES_SIM):
        r, s = real[key][j], sim[key][j]
        lines.append("| %s | %.3f | %.3f | %.2f |" % (name, r, s, s / r))
    lines[0] = lines[0].replace("real", "real (%s)" % unit, 1)
    return lines


def histograms(real_arrays: Dict[str, Dict[str, np.ndarray]], sim_arrays: Dict[str, Dict[str, np.ndarray]],
               out_dir: str) -> List[str]:
    """One PNG per band: speed, q and dq per joint kind, roll, pitch, |a|, |delta a| (real vs sim, densities)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for band in real_arrays:
        r, s = real_arrays[band], sim_arrays[band]
        panels = [("forward speed (m/s)", r["speed"], s["speed"])]
        for k, kind in enumerate(C.JOINT_KINDS):
            cols = [3 * leg + k for leg in range(4)]
            panels.append(("%s q (rad)" % kind, r["q"][:, cols].ravel(), s["q"][:, cols].ravel()))
        for k, kind in enumerate(C.JOINT_KINDS):
            cols = [3 * leg + k for leg in range(4)]
            panels.append(("%s dq (rad/s)" % kind, r["dq"][:, cols].ravel(), s["dq"][:, cols].ravel()))
        panels += [("roll (rad)", r["roll"], s["roll"]), ("pitch (rad)", r["pitch"], s["pitch"]),
                   ("mean |action|", r["abs_action"], s["abs_action"]),
                   ("mean |action change|", r["action_change"], s["action_change"])]
        fig, axes = plt.subplots(3, 4, figsize=(16, 10))
        for ax, (title, x_real, x_sim) in zip(axes.ravel(), panels):
            lo, hi = np.percentile(np.concatenate([x_real, x_sim]), [0.5, 99.5])
            bins = np.linspace(lo, hi, 50)
            ax.hist(x_real, bins=bins, density=True, alpha=0.55, label="real")
            ax.hist(x_sim, bins=bins, density=True, alpha=0.55, label="sim (fitted)")
            ax.set_title(title, fontsize=10)
        axes.ravel()[0].legend()
        for ax in axes.ravel()[len(panels):]:
            ax.axis("off")
        fig.suptitle("commanded vx band %s m/s: real logs vs fitted simulator" % band)
        fig.tight_layout()
        path = os.path.join(out_dir, "hist_%s.png" % band.replace(".", "p"))
        fig.savefig(path, dpi=80)
        plt.close(fig)
        paths.append(path)
    return paths


def write_report(path: str, records: List[dict], real: Dict[str, Dict], commands: Dict[str, float],
                 pngs: List[str], policy: str, top: int = 12) -> None:
    best = records[0]
    c = best["candidate"]
    lines = ["# Simulator calibration against the real mattress logs (`go1o4 calibrate`)", "",
             "Policy run as on the robot: `%s` (its mean + its own std x N(0, 1)), command held at each band's "
             "mean logged command, observation noise / domain randomisation / pushes off; %d episodes x %g s "
             "per band and candidate, statistics after the first 2 s. Real: the logs' steps where the command had "
             "been held in the band for >= 1 s, falls cut (T265 velocity rotated into the heading by the T265 yaw)."
             % (policy, best["episodes"], best["seconds"]), "",
             "## Fitted parameters (best of %d candidates)" % len(records), "",
             "| motor model | stiffness K (N/m per foot) | damping B (N s/m) | friction | thickness (m) | score |",
             "|---|---|---|---|---|---|",
             "| %s | %g | %g | %g | %g | %.2f |" % (c["motor_model"], c["stiffness"], c["damping"], c["friction"],
                                                  c["thickness"], best["score"]), ""]
    lines += ["## Real vs simulated", ""]
    for band in real:
        r, s = real[band], best["sim"][band]
        ok = best["targets"][band]
        lines += ["### commanded vx band %s (held command %.3f m/s; real steps %d, sim steps %d, sim falls %d)"
                  % (band, commands[band], r["steps"], s["steps"], s["falls"]), "",
                  "| statistic | real | sim | target |", "|---|---|---|---|",
                  "| forward speed (m/s) | %s | %s | +-%.2f: %s |" % (_fmt(r["speed"]), _fmt(s["speed"]), S.SPEED_TOL,
                                                                 "met" if ok["speed_ok"] else "missed"),
                  "| roll std (rad) | %s | %s | |" % (_fmt(r["roll_std"]), _fmt(s["roll_std"])),
                  "| pitch std (rad) | %s | %s | |" % (_fmt(r["pitch_std"]), _fmt(s["pitch_std"])),
                  "| mean pitch (rad) | %s | %s | |" % (_fmt(r["pitch_mean"]), _fmt(s["pitch_mean"])),
                  "| mean abs action | %s | %s | |" % (_fmt(r["abs_action"]), _fmt(s["abs_action"])),
                  "| mean abs action change | %s | %s | |" % (_fmt(r["action_change"]), _fmt(s["action_change"])),
                  "| joints with q std within 20 %% | | %d / 12 | 12 |" % ok["q_std_ok_joints"],
                  "| joints with dq std within 20 %% | | %d / 12 | 12 |" % ok["dq_std_ok_joints"], "",
                  "Joint position std:", ""] + _joint_table(r, s, "q_std", "rad") + ["", "Joint velocity std:", ""]
        lines += _joint_table(r, s, "dq_std", "rad/s") + [""]
    lines += ["## Histograms", ""] + ["![%s](%s)" % (os.path.basename(p), os.path.basename(p)) for p in pngs] + [""]
    lines += ["## Candidates (best %d of %d, by score: lower is better)" % (min(top, len(records)), len(records)), "",
              "| motor | K | B | mu | thickness | score | speed err (bands) | q std | dq std | roll/pitch | actions |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for rec in records[:top]:
        cc, p = rec["candidate"], rec["parts"]
        errs = " / ".join("%+.3f" % (rec["sim"][b]["speed"] - real[b]["speed"]) for b in real)
        lines.append("| %s | %g | %g | %g | %g | %.2f | %s | %.2f | %.2f | %.2f | %.2f |" % (
            cc["motor_model"], cc["stiffness"], cc["damping"], cc["friction"], cc["thickness"], rec["score"], errs,
            p["q_std"], p["dq_std"], p["roll_pitch"], p["actions"]))
    lines += ["", "## What the simulator does not model (why some statistics cannot match)", "", KNOWN_GAPS]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
