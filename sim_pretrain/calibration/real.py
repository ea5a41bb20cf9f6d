"""The real side: per-step arrays of the authors' mattress logs at held commands (reads the HDF5 files).

Per file: cut at the first fall; T265 velocity (columns 61-62, remapped world frame) rotated into the
heading by the T265 yaw (column 69); steps kept where the commanded vx (column 3 / 2.0) has been held
inside a band for at least 1 s. Band key: "lo-hi".
"""
import glob
import os
from typing import Dict

import h5py
import numpy as np
from go1o4.sim_pretrain.calibration import stats as S

REAL_LOGS = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir,
                                          os.pardir, "shared", "data", "uni_o4_go1_mattress_2023_08"))


def band_key(band) -> str:
    return "%.2f-%.2f" % band


def real_band_arrays(logs_dir: str = REAL_LOGS, max_files: int = 0) -> Dict[str, Dict[str, np.ndarray]]:
    files = sorted(glob.glob(os.path.join(logs_dir, "*", "*.hdf5")))
    if not files:
        raise FileNotFoundError("no real logs (*/*.hdf5) under %s" % logs_dir)
    parts = {band_key(b): [] for b in S.BANDS}
    cmds = {band_key(b): [] for b in S.BANDS}
    for f in files[:max_files or None]:
        with h5py.File(f, "r") as h:
            states, actions = h["states"][:], h["actions"][:].astype(np.float64)
        end = S.fall_index(states[:, :58])
        states, actions = states[:end], actions[:end]
        if len(states) < S.HOLD_STEPS + 2:
            continue
        cmd = states[:, 3] / 2.0
        speed = S.heading_speed(states[:, 61:63], states[:, 69])
        prev = np.concatenate([actions[:1], actions[:-1]])
        arrays = S.per_step_arrays(states[:, :58], actions, prev, speed)
        for band in S.BANDS:
            m = S.held_mask(cmd, band)
            m[0] = False
            if m.any():
                parts[band_key(band)].append({k: v[m] for k, v in arrays.items()})
                cmds[band_key(band)].append(cmd[m])
    out = {}
    for k, p in parts.items():
        if p:
            out[k] = S.concat(p)
            out[k]["command"] = np.concatenate(cmds[k])
    return out
