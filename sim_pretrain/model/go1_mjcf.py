"""The Unitree Go1 as MJCF, generated from its published physical parameters.

Masses, centres of mass and inertias: Unitree ``go1_description`` as carried into MuJoCo Menagerie
``unitree_go1`` (see README.md for every value and its source). Collision geometry is primitive
(box trunk, cylinder hips, capsule thighs/calves, sphere feet). Legs are declared in **simulation
order** FL, FR, RL, RR so ``qpos[7:19]``/``qvel[6:18]``/``ctrl`` follow ``SPEC.joint_names_sim``.

Each actuator is a ``general`` actuator whose force is the Go1 motor law evaluated inside MuJoCo at
every physics step: ``force = gain*ctrl + bias0 + bias1*q + bias2*qdot`` with gain = Kp,
bias = (tau_ff + Kd dq_des, -Kp, -Kd) and ``ctrl = q_des``, clipped to the contract torque limits.
"""
import functools
from typing import Dict, Optional, Sequence, Tuple

from go1o4.sim_pretrain.model.terrain import TerrainConfig, terrain_xml

from go1o4 import contract

# ----------------------------------------------------------------------------- published parameters
TRUNK_MASS = 5.204
HIP_MASS = 0.68
THIGH_MASS = 1.009
CALF_MASS = 0.195862  # calf 0.135 + foot 0.06 in go1_description; Menagerie lumps them
HIP_OFFSET = (0.1881, 0.04675)  # trunk origin -> hip joint (x, y), per leg sign
THIGH_OFFSET = 0.08  # hip joint -> thigh joint, lateral
THIGH_LENGTH = 0.213
CALF_LENGTH = 0.213
FOOT_RADIUS = 0.02
TRUNK_HALF_SIZE = (0.1881, 0.04675, 0.057)  # go1_description collision box 0.3762 x 0.0935 x 0.114

# Inertials (pos, quat wxyz, diaginertia) from Menagerie unitree_go1 (go1_description), per leg.
TRUNK_INERTIAL = ((0.0223, 0.002, -0.0005), (-0.00342088, 0.705204, 0.000106698, 0.708996),
                  (0.0716565, 0.0630105, 0.0168101))
_HIP_DIAG = (0.000734064, 0.000468438, 0.000398719)
HIP_INERTIAL = {
    "FR": ((-0.0049166, 0.00762615, -8.865e-05), (0.507341, 0.514169, 0.495027, 0.482891), _HIP_DIAG),
    "FL": ((-0.0049166, -0.00762615, -8.865e-05), (0.482891, 0.495027, 0.514169, 0.507341), _HIP_DIAG),
    "RR": ((0.0049166, 0.00762615, -8.865e-05), (0.495027, 0.482891, 0.507341, 0.514169), _HIP_DIAG),
    "RL": ((0.0049166, -0.00762615, -8.865e-05), (0.514169, 0.507341, 0.482891, 0.495027), _HIP_DIAG),
}
_THIGH_DIAG = (0.00478717, 0.00460903, 0.000709268)
THIGH_INERTIAL = {
    "R": ((-0.00304722, 0.019315, -0.0305004), (0.65243, -0.0272313, 0.0775126, 0.753383), _THIGH_DIAG),
    "L": ((-0.00304722, -0.019315, -0.0305004), (0.753383, 0.0775126, -0.0272313, 0.65243), _THIGH_DIAG),
}
CALF_INERTIAL = ((0.00429862, 0.000976676, -0.146197), (0.691246, 0.00357467, 0.00511118, 0.722592),
                 (0.00149767, 0.00148468, 3.58427e-05))

# Motor/joint dynamics (README.md: armature from Menagerie; damping/friction small, as in geared BLDC motors).
ARMATURE = 0.01  # kg m^2, reflected rotor inertia
JOINT_DAMPING = 0.05  # N m s / rad
JOINT_FRICTIONLOSS = 0.2  # N m, Menagerie value
ROBOT_FRICTION = 0.8  # foot rubber; terrain geoms have priority and set the contact friction
IMPRATIO = 100.0  # frictional-to-normal impedance ratio (Menagerie value): limits creep on soft contacts
BASE_BODY = "trunk"
SPEC = contract.GO1  # the robot this model is of: names, joint limits, torque limits, gains
FOOT_GEOMS = tuple("%s_foot" % leg for leg in SPEC.legs_sim)
TOUCH_SITE_RADIUS = 0.06  # catches the contact point for up to ~8 cm of sink
MASSES = {"trunk": TRUNK_MASS, "hip": HIP_MASS, "thigh": THIGH_MASS, "calf": CALF_MASS}


def _v(x: Sequence[float]) -> str:
    return " ".join("%.9g" % float(a) for a in x)


def _leg_xml(leg: str) -> str:
    front = 1.0 if leg[0] == "F" else -1.0
    side = 1.0 if leg[1] == "L" else -1.0
    i = SPEC.legs_sim.index(leg)
    lo, hi = SPEC.q_min[3 * i: 3 * i + 3], SPEC.q_max[3 * i: 3 * i + 3]
    hp, hq, hd = HIP_INERTIAL[leg]
    tp, tq, td = THIGH_INERTIAL[leg[1]]
    cp, cq, cd = CALF_INERTIAL
    return """
    <body name="{leg}_hip_link" pos="{hx:g} {hy:g} 0">
      <inertial pos="{hp}" quat="{hq}" mass="{hm:g}" diaginertia="{hd}"/>
      <joint name="{leg}_hip" axis="1 0 0" range="{l0:g} {h0:g}"/>
      <geom name="{leg}_hip_geom" type="cylinder" size="0.046 0.02" pos="0 {cy:g} 0" quat="1 1 0 0"/>
      <body name="{leg}_thigh_link" pos="0 {ty:g} 0">
        <inertial pos="{tp}" quat="{tq}" mass="{tm:g}" diaginertia="{td}"/>
        <joint name="{leg}_thigh" axis="0 1 0" range="{l1:g} {h1:g}"/>
        <geom name="{leg}_thigh_geom" type="capsule" size="0.0175" fromto="0 0 -0.02 0 0 -0.19"/>
        <body name="{leg}_calf_link" pos="0 0 {tl:g}">
          <inertial pos="{cp}" quat="{cq}" mass="{cm:g}" diaginertia="{cd}"/>
          <joint name="{leg}_calf" axis="0 1 0" range="{l2:g} {h2:g}"/>
          <geom name="{leg}_calf_geom" type="capsule" size="0.012" fromto="0 0 -0.01 0 0 -0.17"/>
          <geom name="{leg}_foot" type="sphere" size="{fr:g}" pos="0 0 {cl:g}" rgba="0.2 0.2 0.2 1"/>
          <site name="{leg}_foot" pos="0 0 {cl:g}" type="sphere" size="{ts:g}" group="5"/>
        </body>
      </body>
    </body>""".format(
        leg=leg, hx=front * HIP_OFFSET[0], hy=side * HIP_OFFSET[1], cy=side * 0.045, ty=side * THIGH_OFFSET,
        hp=_v(hp), hq=_v(hq), hd=_v(hd), hm=HIP_MASS, tp=_v(tp), tq=_v(tq), td=_v(td), tm=THIGH_MASS,
        cp=_v(cp), cq=_v(cq), cd=_v(cd), cm=CALF_MASS, tl=-THIGH_LENGTH, cl=-CALF_LENGTH, fr=FOOT_RADIUS,
        ts=TOUCH_SITE_RADIUS, l0=lo[0], h0=hi[0], l1=lo[1], h1=hi[1], l2=lo[2], h2=hi[2])


def _actuators_xml(kp: float, kd: float) -> str:
    lines = []
    for name, limit in zip(SPEC.joint_names_sim, SPEC.torque_limit):
        lines.append('    <general name="%s" joint="%s" gaintype="fixed" biastype="affine" gainprm="%g" '
                     'biasprm="0 %g %g" forcelimited="true" forcerange="%g %g"/>'
                     % (name, name, kp, -kp, -kd, -limit, limit))
    return "\n".join(lines)


def _sensors_xml() -> str:
    lines = [
        '    <framequat name="base_quat" objtype="xbody" objname="trunk"/>',
        '    <gyro name="imu_gyro" site="imu"/>',
        '    <accelerometer name="imu_acc" site="imu"/>',
        '    <framepos name="base_pos" objtype="xbody" objname="trunk"/>',
        '    <framelinvel name="base_linvel" objtype="xbody" objname="trunk"/>',
        '    <velocimeter name="base_linvel_body" site="imu"/>',
    ]
    lines += ['    <touch name="%s_touch" site="%s_foot"/>' % (leg, leg) for leg in SPEC.legs_sim]
    return "\n".join(lines)


#: Slices into ``data.sensordata`` (fixed by :func:`_sensors_xml`).
SENSOR_SLICES: Dict[str, Tuple[int, int]] = {
    "base_quat": (0, 4), "imu_gyro": (4, 7), "imu_acc": (7, 10), "base_pos": (10, 13),
    "base_linvel": (13, 16), "base_linvel_body": (16, 19), "foot_touch": (19, 23),
}


def _robot_mjcf(terrain_geoms: str, timestep: float, kp: float, kd: float, noslip_iterations: int = 0) -> str:
    return """<mujoco model="go1">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{dt:g}" integrator="implicitfast" cone="elliptic" impratio="{imp:g}" noslip_iterations="{ns:d}"/>
  <default>
    <joint armature="{arm:g}" damping="{damp:g}" frictionloss="{fl:g}"/>
    <geom contype="1" conaffinity="0" condim="3" friction="{fr:g} 0.005 0.0001" rgba="0.6 0.6 0.65 1"/>
  </default>
  <visual><global offwidth="1280" offheight="720"/></visual>
  <asset>
    <texture name="grid" type="2d" builtin="checker" rgb1="0.25 0.3 0.35" rgb2="0.35 0.4 0.45" width="256" height="256"/>
    <material name="floor_mat" texture="grid" texrepeat="8 8" reflectance="0.1"/>
    <material name="mattress_mat" rgba="0.93 0.9 0.8 1"/>
  </asset>
  <worldbody>
    <light pos="0 0 4" dir="0 0 -1" directional="true"/>
    {terrain}
    <body name="trunk" pos="0 0 0.45">
      <camera name="tracking" mode="trackcom" pos="0 -1.2 0.6" xyaxes="1 0 0 0 0.45 0.9"/>
      <inertial pos="{tp}" quat="{tq}" mass="{tm:g}" diaginertia="{td}"/>
      <freejoint name="root"/>
      <geom name="trunk_geom" type="box" size="{ths}"/>
      <site name="imu" pos="0 0 0" size="0.01"/>
      {legs}
    </body>
  </worldbody>
  <actuator>
{actuators}
  </actuator>
  <sensor>
{sensors}
  </sensor>
</mujoco>
""".format(dt=timestep, imp=IMPRATIO, ns=noslip_iterations, arm=ARMATURE, damp=JOINT_DAMPING, fl=JOINT_FRICTIONLOSS, fr=ROBOT_FRICTION,
           terrain=terrain_geoms, tp=_v(TRUNK_INERTIAL[0]), tq=_v(TRUNK_INERTIAL[1]), tm=TRUNK_MASS,
           td=_v(TRUNK_INERTIAL[2]), ths=_v(TRUNK_HALF_SIZE),
           legs="".join(_leg_xml(leg) for leg in SPEC.legs_sim),
           actuators=_actuators_xml(kp, kd), sensors=_sensors_xml())


@functools.lru_cache(maxsize=None)
def foot_invweight() -> float:
    """MuJoCo's translational inverse weight of a calf body (the ``diagApprox`` of a foot contact)."""
    import mujoco  # only needed to generate a soft terrain

    model = mujoco.MjModel.from_xml_string(_robot_mjcf(terrain_xml(TerrainConfig(), 1.0), 0.002, SPEC.kp,
                                                       SPEC.kd))
    return float(model.body_invweight0[model.body("FL_calf_link").id, 0])


def go1_mjcf(terrain: Optional[TerrainConfig] = None, timestep: float = SPEC.sim_dt, kp: float = SPEC.kp,
             kd: float = SPEC.kd, noslip_iterations: int = 0, spec: contract.RobotSpec = SPEC) -> str:
    """MJCF string of the Go1 on ``terrain`` with the motor PD law (Kp, Kd) inside the actuators.

    ``noslip_iterations`` > 0 removes the slow creep of feet on soft (mattress) contacts at ~1.5x the
    cost per step; pretraining leaves it at 0 (creep ~2 mm/s under a standing robot's lateral load).
    """
    if spec is not SPEC:
        raise ValueError("this MJCF is the %s's; robot %r needs its own model (docs/extending.md)" % (SPEC.name, spec.name))
    terrain = TerrainConfig() if terrain is None else terrain
    if not (isinstance(timestep, (int, float)) and timestep > 0):
        raise ValueError("timestep must be > 0, got %r" % (timestep,))
    if int(noslip_iterations) < 0:
        raise ValueError("noslip_iterations must be >= 0, got %r" % (noslip_iterations,))
    w = foot_invweight() if terrain.is_soft else 1.0
    return _robot_mjcf(terrain_xml(terrain, w), timestep, kp, kd, int(noslip_iterations))
