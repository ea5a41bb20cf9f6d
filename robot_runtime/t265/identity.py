"""Which robot and camera a T265 sample comes from (issue 18: several robots share one network).

Every ``t265_pose_t`` carries ``robot_name`` (``robot.name`` of the robot's deploy/config/*.yaml) and
``camera_serial``; each robot publishes on its own channel ``T265_POSE/<robot_name>`` (the ROS habit of
one namespace per robot; ``lcm-spy`` lists them side by side, ``T265_POSE/.*`` subscribes to all). The
runtime refuses a sample whose identity is not the configured one: it is never used for reward.
Pure Python 3.8, no third-party imports (the T265 publisher process imports it).
"""
import re
from typing import Tuple

SIM_ROBOT_PREFIX = "sim-go1-"
SIM_SERIAL_PREFIX = "SIM-T265-"


def robot_channel(base: str, robot: str) -> str:
    """The LCM channel of one robot's pose stream: ``T265_POSE/go1-lab2`` (``base`` alone if no robot name)."""
    return "%s/%s" % (base, robot) if robot else base


def channel_regex(channel: str) -> str:
    """LCM subscribes with a regular expression: match exactly this channel (robot names may hold dots)."""
    return re.escape(channel)


def sim_identity(port: int) -> Tuple[str, str]:
    """The distinct identity of the simulated Go1 serving on ``port``: (robot name, camera serial)."""
    return "%s%d" % (SIM_ROBOT_PREFIX, port), "%s%d" % (SIM_SERIAL_PREFIX, port)


def identity_problem(robot: str, serial: str, want_robot: str, want_serial: str) -> str:
    """Why a sample from (robot, serial) is not ours ("" if it is). An empty ``want_serial`` accepts any camera
    of the configured robot (set ``t265.serial`` in the robot config to pin the camera)."""
    if robot != want_robot:
        return "T265 stream from robot %r (camera %r) refused: this session is robot %r (robot.name in its config)" % (
            robot, serial, want_robot)
    if want_serial and serial != want_serial:
        return "T265 stream from camera %r refused: robot %r expects camera %r (t265.serial in its config)" % (
            serial, want_robot, want_serial)
    return ""
