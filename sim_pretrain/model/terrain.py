"""Terrains for the Go1 model: rigid floor, compliant latex mattress, or a mattress patch on a floor.

The mattress is a MuJoCo soft contact with *direct* ``solref = (-k, -b)``. For a contact whose
diagonal inverse mass is ``1/m`` (MuJoCo's ``diagApprox``, from ``body_invweight0``) and constant
impedance ``d`` (``solimp = d d ...``) the static relation the solver enforces is

    r = (1 - d) f / (m k)          (r: penetration, f: normal force)

so a physical spring of stiffness K [N/m] and damping B [N s/m] at a Go1 foot is obtained with
``k = K (1 - d) / m_foot`` and ``b = B (1 - d) / m_foot`` (see README.md, "Mattress contact").
``solimp`` rises to ``bottom_impedance`` over the mattress thickness: the foam densifies and the
foot cannot go through it. Pure Python, no mujoco import here.
"""
import dataclasses
from typing import Tuple

import numpy as np

#: The one terrain list. Ground of one robot (the model, the simulated Go1): rigid floor, latex mattress
#: everywhere (the calibrated one), a mattress patch on a rigid floor, or the pre-calibration mattress.
TERRAIN_KINDS = ("rigid", "mattress", "patch", "mattress_soft_legacy")
SOFT_KINDS = ("mattress", "patch", "mattress_soft_legacy")
#: The vectorised pretraining env (sim_pretrain.env.config) also takes "mixed": a fraction of its robots on the
#: mattress, the rest on rigid ground (every robot's own ground is one of TERRAIN_KINDS).
ENV_TERRAINS = TERRAIN_KINDS + ("mixed",)
#: The mattress every figure before the calibration (issue 15) was measured on: K 1200 N/m, B 20 N s/m,
#: mu 0.8 (which the vector env then overwrote with 1.0). Kept for comparison as ``mattress_soft_legacy``.
LEGACY_MATTRESS = {"mattress_stiffness": 1200.0, "mattress_damping": 20.0, "mattress_friction": 0.8,
                   "mattress_thickness": 0.15}


@dataclasses.dataclass
class TerrainConfig:
    """Ground the robot stands on. Units SI; stiffness/damping as felt by one Go1 foot."""

    kind: str = "rigid"  # "rigid" | "mattress" | "patch" (mattress patch on a rigid floor) | "mattress_soft_legacy"
    friction: float = 1.0  # rigid floor, legged_gym default
    floor_size: float = 20.0  # half extent of the floor plane (m); the plane is infinite for physics
    # latex mattress, calibrated against the real logs with the authors' policy (sim_pretrain/calibration/REPORT.md):
    # a standing Go1 sinks ~9 cm, where the densifying foam (solimp over the thickness) carries it
    mattress_stiffness: float = 100.0  # N/m per foot at the surface (the pre-calibration value was 1200)
    mattress_damping: float = 6.0  # N s/m per foot
    mattress_friction: float = 1.0  # rubber foot on the fabric cover
    mattress_thickness: float = 0.15  # m, typical latex mattress core
    surface_impedance: float = 0.1  # MuJoCo impedance d at the surface (small d = spring-like contact)
    bottom_impedance: float = 0.95  # impedance reached at full thickness (foam densification)
    mattress_size: Tuple[float, float] = (2.0, 1.4)  # "patch": full length x width of the patch (m)
    mattress_center: Tuple[float, float] = (1.5, 0.0)  # "patch": patch centre on the floor (m)

    def __post_init__(self) -> None:
        """``mattress_soft_legacy``: the pre-calibration mattress (LEGACY_MATTRESS) wherever a field keeps its default."""
        if self.kind == "mattress_soft_legacy":
            for name, value in LEGACY_MATTRESS.items():
                if getattr(self, name) == _DEFAULTS[name]:
                    setattr(self, name, value)

    def validate(self) -> None:
        if self.kind not in TERRAIN_KINDS:
            raise ValueError("kind must be one of %s, got %r" % (TERRAIN_KINDS, self.kind))
        positive = ("friction", "floor_size", "mattress_stiffness", "mattress_friction", "mattress_thickness")
        for name in positive:
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise ValueError("%s must be a positive number, got %r" % (name, v))
        if not (np.isfinite(self.mattress_damping) and self.mattress_damping >= 0):
            raise ValueError("mattress_damping must be >= 0, got %r" % (self.mattress_damping,))
        if not 0.0 < self.surface_impedance <= self.bottom_impedance < 1.0:
            raise ValueError("need 0 < surface_impedance <= bottom_impedance < 1, got %r, %r"
                             % (self.surface_impedance, self.bottom_impedance))
        for name in ("mattress_size", "mattress_center"):
            v = getattr(self, name)
            if len(v) != 2 or not all(np.isfinite(x) for x in v):
                raise ValueError("%s must be two finite numbers, got %r" % (name, v))
        if min(self.mattress_size) <= 0:
            raise ValueError("mattress_size must be positive, got %r" % (self.mattress_size,))

    @property
    def is_soft(self) -> bool:
        return self.kind in SOFT_KINDS


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TerrainConfig)}


def with_kind(cfg: TerrainConfig, kind: str) -> TerrainConfig:
    """``cfg``'s parameters on terrain ``kind`` (the legacy kind swaps in its own mattress where cfg has defaults)."""
    return dataclasses.replace(cfg, kind=kind)


def mattress_solref(cfg: TerrainConfig, foot_invweight: float) -> Tuple[float, float]:
    """Direct solref (-k, -b) giving stiffness K and damping B at a contact of inverse mass ``foot_invweight``.

    MuJoCo uses K' = k / dmax^2, B' = b / dmax, aref = -B' v - K' d r and R = (1 - d)/d * diagApprox, so
    at impedance d the quasi-static force is f = d (K' d r + B' v) / ((1 - d) diagApprox).
    """
    d, dmax = cfg.surface_impedance, cfg.bottom_impedance
    scale = (1.0 - d) * foot_invweight / d
    k = cfg.mattress_stiffness * scale * dmax ** 2 / d
    b = cfg.mattress_damping * scale * dmax
    return -k, -b


def mattress_solimp(cfg: TerrainConfig) -> Tuple[float, float, float, float, float]:
    """Impedance: ~surface_impedance over most of the thickness, rising to bottom_impedance at full depth."""
    return (cfg.surface_impedance, cfg.bottom_impedance, cfg.mattress_thickness, 0.95, 6.0)


def surface_height(cfg: TerrainConfig, xy) -> np.ndarray:
    """Height (m) of the undeformed walking surface at world points ``xy`` (..., 2)."""
    xy = np.asarray(xy, dtype=np.float64)
    if cfg.kind != "patch":
        return np.zeros(xy.shape[:-1])
    c = np.asarray(cfg.mattress_center)
    half = 0.5 * np.asarray(cfg.mattress_size)
    inside = np.all(np.abs(xy - c) <= half, axis=-1)
    return np.where(inside, cfg.mattress_thickness, 0.0)


def terrain_xml(cfg: TerrainConfig, foot_invweight: float) -> str:
    """Worldbody geoms of the terrain. Terrain geoms have priority over the robot's."""
    cfg.validate()
    rigid = ('<geom name="floor" type="plane" size="%g %g 0.05" material="floor_mat" priority="2" '
             'friction="%g 0.005 0.0001" contype="0" conaffinity="1" condim="3"/>'
             % (cfg.floor_size, cfg.floor_size, cfg.friction))
    if cfg.kind == "rigid":
        return rigid
    k, b = mattress_solref(cfg, foot_invweight)
    soft = ('priority="3" friction="%g 0.005 0.0001" contype="0" conaffinity="1" condim="3" '
            'solref="%.6g %.6g" solimp="%g %g %g %g %g" material="mattress_mat"'
            % ((cfg.mattress_friction, k, b) + mattress_solimp(cfg)))
    if cfg.kind in ("mattress", "mattress_soft_legacy"):
        return '<geom name="mattress" type="plane" size="%g %g 0.05" %s/>' % (cfg.floor_size, cfg.floor_size, soft)
    sx, sy = 0.5 * cfg.mattress_size[0], 0.5 * cfg.mattress_size[1]
    t = 0.5 * cfg.mattress_thickness
    patch = ('<geom name="mattress" type="box" size="%g %g %g" pos="%g %g %g" %s/>'
             % (sx, sy, t, cfg.mattress_center[0], cfg.mattress_center[1], t, soft))
    return rigid + "\n" + patch
