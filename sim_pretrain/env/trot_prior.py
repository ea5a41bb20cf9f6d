"""An open-loop trot following the gait clock: a behaviour-cloning prior to start PPO from.

For each foot, the phase from :func:`go1o4.contract.foot_phases` (stance while phase < 0.5) drives a
foot trajectory relative to its default position: in stance the foot sweeps backward by the
distance the body travels in one stance period (Raibert: ``v * T_stance``, with the yaw-rate
contribution ``omega x r_hip``), in swing it returns forward and lifts ``swing_height`` on a sine.
Planar two-link inverse kinematics (thigh, calf; Go1 lengths) gives thigh/calf angles; the lateral
part goes to the hip. Returned as raw policy actions (the inverse of
:func:`go1o4.contract.action_to_q_des`). Pure numpy, no simulator.
"""
import numpy as np

from go1o4 import contract as C

L_THIGH, L_CALF = 0.213, 0.213
HIP_XY = np.array([[0.1881, 0.04675], [0.1881, -0.04675], [-0.1881, 0.04675], [-0.1881, -0.04675]])  # FL FR RL RR


def leg_fk(thigh, calf):
    """Foot (x forward, z up) relative to the thigh joint, sagittal plane."""
    x = -L_THIGH * np.sin(thigh) - L_CALF * np.sin(thigh + calf)
    z = -L_THIGH * np.cos(thigh) - L_CALF * np.cos(thigh + calf)
    return x, z


def leg_ik(x, z):
    """Thigh and calf angles (knee bent backward, calf < 0) putting the foot at (x, z)."""
    r2 = np.clip(x ** 2 + z ** 2, 1e-6, (L_THIGH + L_CALF - 1e-4) ** 2)
    calf = -np.arccos(np.clip((r2 - L_THIGH ** 2 - L_CALF ** 2) / (2 * L_THIGH * L_CALF), -1.0, 1.0))
    alpha = np.arctan2(-x, -z)
    beta = np.arctan2(L_CALF * np.sin(calf), L_THIGH + L_CALF * np.cos(calf))
    return alpha - beta, calf


def trot_actions(gait_index, commands, swing_height: float = 0.08, stride_gain: float = 1.0,
                 sweep_lead: float = 0.0) -> np.ndarray:
    """(N, 12) raw actions of the open-loop trot for the commands (N, 15) at clock ``gait_index`` (N,).

    ``sweep_lead`` (cycles) shifts the fore-aft/lateral sweep against the lift: with the soft
    Kp = 20 PD the legs lag the targets by about a quarter cycle at 3 Hz (0.25 walks forward for
    positive commands in MuJoCo; 0 does not).
    """
    commands = np.asarray(commands, dtype=np.float64)
    phase = C.foot_phases(gait_index, commands)  # (N, 4)
    freq = commands[:, 4:5]
    t_stance = 0.5 / np.maximum(freq, 1e-3)
    vx, vy, wz = commands[:, 0:1], commands[:, 1:2], commands[:, 2:3]
    # body velocity at each hip: v + omega x r
    sweep_x = (vx - wz * HIP_XY[None, :, 1]) * t_stance * stride_gain
    sweep_y = (vy + wz * HIP_XY[None, :, 0]) * t_stance * stride_gain
    stance = phase < 0.5
    s = np.where(stance, phase / 0.5, (phase - 0.5) / 0.5)  # progress within stance / swing
    lift = np.where(stance, 0.0, swing_height * np.sin(np.pi * s))
    ps = np.remainder(phase + sweep_lead, 1.0)  # the fore-aft sweep may lead the lift
    st2 = ps < 0.5
    s2 = np.where(st2, ps / 0.5, (ps - 0.5) / 0.5)
    u = np.where(st2, 0.5 - s2, -0.5 + 0.5 * (1 - np.cos(np.pi * s2)))  # +0.5 front -> -0.5 back -> +0.5
    q0 = C.DEFAULT_Q.reshape(4, 3)
    x0, z0 = leg_fk(q0[:, 1], q0[:, 2])
    thigh, calf = leg_ik(x0 + u * sweep_x, z0 + lift)
    leg_len = -z0
    hip = q0[:, 0] + np.arctan2(u * sweep_y, leg_len)  # positive hip angle moves the foot to +y
    q = np.stack([hip, thigh, calf], axis=-1).reshape(-1, 12)
    a = (q - C.DEFAULT_Q) / C.ACTION_SCALE
    a[:, C.HIP_IDS] /= C.HIP_SCALE_REDUCTION
    return a
