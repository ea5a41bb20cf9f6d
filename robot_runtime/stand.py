"""``go1o4 stand``: damping -> ramp to the default pose -> hold, through the real SDK (500 Hz link).

The calibration walk-these-ways does before a policy runs (REFERENCE.md section 2): start in damping,
move q_des from the *measured* pose toward ``contract.DEFAULT_Q`` by at most ``max_step`` rad per
50 Hz step, hold, and check the pose is held within ``tolerance``. Against a real robot:

    go1o4 stand --robot-ip 192.168.123.10      (robot lying or hung up; asks for confirmation)

``paced`` runs the link on the wall clock (real robot, real-time simulator); unpaced waits for each
reply instead (lock-step simulator). Stand gains are stiffer than the policy's Kp 20: at Kp 20 the
Go1 sags ~0.5 rad on the rear calves.
"""
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, Optional

import numpy as np
from go1o4.robot_runtime.safety import clamp_q_des, ramp_toward
from tqdm import tqdm

from go1o4 import contract as C
from go1o4.config import ConfigError, load_config

TICKS_PER_POLICY_STEP = int(round(C.POLICY_DT / C.LINK_DT))  # 10 link ticks per 50 Hz step


@dataclass
class StandConfig:
    kp: float = 60.0
    kd: float = 1.5
    damping_s: float = 1.0  # time in damping before the ramp (robot state settles, pose measured)
    max_step: float = 0.05  # rad per 50 Hz step (REFERENCE: <= 0.05)
    hold_s: float = 3.0
    settle_s: float = 1.0  # start of the hold not scored (the trunk settles onto the legs)
    tolerance: float = 0.15  # rad: max |q - DEFAULT_Q| allowed during the scored hold
    max_tilt: float = 0.3  # rad: max |roll|, |pitch| during the scored hold
    min_base_height: float = 0.2  # m, checked only when ground truth is available (simulator)
    recv_timeout: float = 0.2  # s to wait for each reply when unpaced (lock-step)
    max_missing: int = 50  # consecutive link ticks without state -> abort to damping

    def validate(self) -> None:
        if not 0 < self.max_step <= 0.05:
            raise ValueError("max_step must be in (0, 0.05] rad per step, got %r" % self.max_step)
        if not (self.kp > 0 and self.kd >= 0 and self.tolerance > 0 and self.hold_s > self.settle_s >= 0):
            raise ValueError("need kp > 0, kd >= 0, tolerance > 0, hold_s > settle_s >= 0")
        if not (self.damping_s >= 0 and self.recv_timeout > 0 and self.max_missing >= 1):
            raise ValueError("need damping_s >= 0, recv_timeout > 0, max_missing >= 1")


@dataclass
class StandResult:
    ok: bool
    reason: str
    max_joint_error: float = float("nan")  # rad, scored hold
    worst_joint: str = ""
    mean_abs_error: float = float("nan")
    max_tilt: float = float("nan")  # rad, scored hold
    base_height: Optional[float] = None  # m, end of hold (simulator ground truth)
    ramp_steps: int = 0  # 50 Hz steps the ramp took
    robot_time: float = 0.0  # s covered by the robot's tick counter
    wall_time: float = 0.0
    link: Dict[str, int] = field(default_factory=dict)  # sent, received, crc_failures, missed
    robot_counters: Dict[str, float] = field(default_factory=dict)  # simulator side, when known

    def summary(self) -> str:
        lines = ["stand: %s%s" % ("OK" if self.ok else "FAILED", "" if self.ok else " (%s)" % self.reason),
                 "  ramp: %d steps at 50 Hz; robot time %.2f s, wall time %.2f s"
                 % (self.ramp_steps, self.robot_time, self.wall_time),
                 "  hold: max joint error %.3f rad (%s), mean |error| %.3f rad, max tilt %.3f rad"
                 % (self.max_joint_error, self.worst_joint, self.mean_abs_error, self.max_tilt)
                 if self.worst_joint else "  hold: not reached"]
        if self.base_height is not None:
            lines.append("  base height %.3f m" % self.base_height)
        if self.link:
            lines.append("  link: sent %d, states received %d (link ticks without a fresh state %d), CRC failures %d" % (
                self.link["sent"], self.link["received"], self.link["sent"] - self.link["received"],
                self.link["crc_failures"]))
        if self.robot_counters:
            keys = ("rx_packets", "tx_packets", "rejected", "cmd_lost", "state_lost", "crc_corrupted",
                    "lag_skipped_ticks")
            lines.append("  robot: " + ", ".join("%s=%s" % (k, self.robot_counters[k]) for k in keys
                                                 if k in self.robot_counters))
        return "\n".join(lines)


def run_stand(link, cfg: StandConfig, paced: bool = True,
              ground_truth: Optional[Callable[[], dict]] = None, progress: bool = True,
              end_in_damping: bool = True) -> StandResult:
    """Run the stand-up job over ``link`` (an SdkLink). Always ends in damping if anything goes wrong;
    on success too unless ``end_in_damping`` is False (a policy takes over from the held pose).
    ``ground_truth`` (simulator only) returns a dict with ``base_pos``."""
    cfg.validate()
    dt, t_wall0 = C.LINK_DT, time.monotonic()
    n_damp = int(round(cfg.damping_s / dt))
    n_hold, n_settle = int(round(cfg.hold_s / dt)), int(round(cfg.settle_s / dt))
    state = None
    while state is None and time.monotonic() - t_wall0 < 2.0:  # up to 2 s for the first state
        link.send_damping()
        state = link.receive(timeout=min(cfg.recv_timeout, 0.05) if not paced else dt)
    if state is None:
        return _finish(link, StandResult(False, "no robot state received (is the robot on?)"), t_wall0, None)
    tick0 = state.tick
    q_ramp, phase, ramp_steps, ticks_in_phase, missing = None, "damping", 0, 0, 0
    errors, tilts = [], []
    bar = tqdm(total=n_damp + n_hold, desc="stand", unit="tick", disable=not progress, leave=False)
    next_t = time.monotonic()
    while True:
        if phase == "damping" and ticks_in_phase >= n_damp:
            phase, ticks_in_phase, q_ramp = "ramp", 0, state.q.copy()
        if phase == "ramp" and ticks_in_phase % TICKS_PER_POLICY_STEP == 0:
            q_ramp, reached = ramp_toward(q_ramp, C.DEFAULT_Q, cfg.max_step)
            ramp_steps += 1
            if reached:
                phase, ticks_in_phase = "hold", 0
        if phase == "hold" and ticks_in_phase >= n_hold:
            break
        if phase == "damping":
            link.send_damping()
        else:
            q_des, _ = clamp_q_des(q_ramp, state.q, state.dq, cfg.kp, cfg.kd)
            link.send(q_des, 0.0, cfg.kp, cfg.kd, 0.0)
        if paced:
            next_t += dt
            time.sleep(max(0.0, next_t - time.monotonic()))
            new = link.receive(0.0)
        else:
            new = link.receive(cfg.recv_timeout)
        missing = missing + 1 if new is None else 0
        if missing >= cfg.max_missing:
            bar.close()
            return _finish(link, StandResult(False, "robot state lost for %d link ticks in %s" % (missing, phase),
                                             ramp_steps=ramp_steps), t_wall0, ground_truth, tick0)
        state = new if new is not None else state
        tilt = float(max(abs(state.rpy[0]), abs(state.rpy[1])))
        if tilt > C.FALL_ROLL_PITCH:
            bar.close()
            return _finish(link, StandResult(False, "robot fell (tilt %.2f rad) in %s" % (tilt, phase),
                                             ramp_steps=ramp_steps), t_wall0, ground_truth, tick0)
        if phase == "hold" and ticks_in_phase >= n_settle and new is not None:
            errors.append(state.q - C.DEFAULT_Q)
            tilts.append(tilt)
        ticks_in_phase += 1
        if phase != "ramp":
            bar.update(1)
    bar.close()
    err = np.abs(np.array(errors)) if errors else np.full((1, C.NUM_JOINTS), np.inf)
    worst = int(np.argmax(err.max(axis=0)))
    res = StandResult(True, "", max_joint_error=float(err.max()), worst_joint=C.JOINT_NAMES_SIM[worst],
                      mean_abs_error=float(err.mean()), max_tilt=float(max(tilts) if tilts else np.inf),
                      ramp_steps=ramp_steps)
    res = _finish(link, res, t_wall0, ground_truth, tick0, damp=end_in_damping)
    problems = []
    if not res.max_joint_error <= cfg.tolerance:
        problems.append("joint error %.3f rad > tolerance %.3f" % (res.max_joint_error, cfg.tolerance))
    if not res.max_tilt <= cfg.max_tilt:
        problems.append("tilt %.3f rad > %.3f" % (res.max_tilt, cfg.max_tilt))
    if res.base_height is not None and res.base_height < cfg.min_base_height:
        problems.append("base height %.3f m < %.3f" % (res.base_height, cfg.min_base_height))
    res.ok, res.reason = not problems, "; ".join(problems)
    return res


def _finish(link, res: StandResult, t_wall0: float, ground_truth, tick0: Optional[int] = None,
            damp: bool = True) -> StandResult:
    """Fill ground truth (before letting go) and counters; then send damping if ``damp``."""
    if ground_truth is not None:
        try:
            gt = ground_truth()
            res.base_height = float(gt["base_pos"][2])
        except (RuntimeError, OSError, KeyError) as e:
            res.reason = (res.reason + "; " if res.reason else "") + "no ground truth: %s" % e
    if damp:
        for _ in range(10):
            link.send_damping()
            link.receive(0.0)
    last = link.last_state
    if tick0 is not None and last is not None:
        res.robot_time = (last.tick - tick0) / 1000.0
    res.wall_time = time.monotonic() - t_wall0
    res.link = dict(link.counters())
    return res


# ----------------------------------------------------------------------------- CLI
def add_arguments(p) -> None:
    p.add_argument("--robot-ip", default="192.168.123.10", help="robot address (real Go1: 192.168.123.10)")
    p.add_argument("--robot-port", type=int, default=8007, help="the robot's SDK UDP port (default %(default)s)")
    p.add_argument("--local-port", type=int, default=8080, help="UDP port the SDK binds here (default %(default)s)")
    p.add_argument("--config", help="YAML StandConfig")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a StandConfig field")
    p.add_argument("--unpaced", action="store_true", help="wait for each reply (lock-step simulator only)")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation before moving a real robot")
    p.add_argument("--json", help="write the result here")


def run(args) -> int:
    try:
        cfg = load_config(StandConfig, args.config, overrides=args.set)
    except ConfigError as e:
        sys.stderr.write("go1o4 stand: %s\n" % e)
        return 2
    if not args.robot_ip.startswith("127.") and not args.yes:
        sys.stderr.write("go1o4 stand: about to move the robot at %s. It must lie on the ground or hang in a "
                         "harness, e-stop in reach. Type 'yes' to continue: " % args.robot_ip)
        if sys.stdin.readline().strip() != "yes":
            return 1
    from go1o4.robot_runtime.sdk_link import SdkLink

    link = SdkLink(args.robot_ip, args.robot_port, args.local_port, block_ms=100 if args.unpaced else 0)
    res = run_stand(link, cfg, paced=not args.unpaced)
    print(res.summary())
    if args.json:
        with open(args.json, "w") as f:
            json.dump(asdict(res), f, indent=1)
    return 0 if res.ok else 1
