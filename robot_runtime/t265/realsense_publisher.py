"""Real Intel RealSense T265 -> LCM ``t265_pose_t`` at the pose stream's 200 Hz. Its own small process.

    python -m go1o4.robot_runtime.t265.realsense_publisher --robot go1-lab2 --lcm-url "udpm://239.255.76.67:7667?ttl=0"

Every message carries the robot name and the camera's serial number and goes to ``T265_POSE/<robot>``
(:mod:`robot_runtime.t265.identity`); the runtime refuses samples from another robot or camera.

Runs under CPython 3.8 or 3.10 with ``pyrealsense2==2.53.1`` (the last release supporting the T265;
no wheel for 3.11+) and ``libusb-1.0-0``. Imports only pyrealsense2, lcm, numpy and the generated LCM
type. Vectors are published as the device reports them (T265 axes, world frame; quaternion x, y, z, w);
the runtime converts them to the trunk frame (:mod:`robot_runtime.t265.frames`). ``utime`` is this
host's monotonic clock at reception (same clock as the runtime on the same computer).

If no frame arrives for ``--max-silence-s`` the process exits with status 3 so that systemd (or
deploy/launch_t265.sh) restarts it; meanwhile the runtime sees ``t265_stale`` and cuts the episode.
Not run here: no T265 and no pyrealsense2 wheel for this machine's Python. :func:`pose_to_message`
is tested with synthetic pose objects; the device loop below is deliberately thin.
"""
import argparse
import signal
import sys
import time
from typing import Optional

from go1o4.robot_runtime.lcm_types import t265_pose_t
from go1o4.robot_runtime.t265.identity import robot_channel

DEFAULT_CHANNEL = "T265_POSE"
DEFAULT_LCM_URL = "udpm://239.255.76.67:7667?ttl=0"
EXIT_NO_FRAMES = 3


def _vec3(v):
    return [float(v.x), float(v.y), float(v.z)]


def pose_to_message(pose, frame_number: int, utime: int, robot: str = "", serial: str = "") -> t265_pose_t:
    """An ``rs2_pose`` (``pose_frame.get_pose_data()``) -> ``t265_pose_t`` from (robot, camera serial). Pure."""
    m = t265_pose_t()
    m.robot_name, m.camera_serial = str(robot), str(serial)
    m.utime = int(utime)
    m.frame_number = int(frame_number)
    m.translation = _vec3(pose.translation)
    m.velocity = _vec3(pose.velocity)
    m.acceleration = _vec3(pose.acceleration)
    r = pose.rotation
    m.rotation = [float(r.x), float(r.y), float(r.z), float(r.w)]
    m.angular_velocity = _vec3(pose.angular_velocity)
    m.angular_acceleration = _vec3(pose.angular_acceleration)
    m.tracker_confidence = max(-128, min(127, int(pose.tracker_confidence)))
    m.mapper_confidence = max(-128, min(127, int(pose.mapper_confidence)))
    return m


def now_utime() -> int:
    return int(time.monotonic() * 1e6)


class _Stop:
    def __init__(self):
        self.requested = False

    def __call__(self, signum, frame):
        self.requested = True


def run(lcm_url: str, channel: str, max_silence_s: float = 2.0, report_every_s: float = 10.0,
        serial: Optional[str] = None, robot: str = "") -> int:
    """The device loop: start the pose stream, publish every pose frame to ``<channel>/<robot>``, stop on
    SIGINT/SIGTERM. The camera serial in the messages is the one the device reports."""
    import lcm
    import pyrealsense2 as rs

    lc = lcm.LCM(lcm_url)
    pipe = rs.pipeline()
    cfg = rs.config()
    if serial:
        cfg.enable_device(serial)
    cfg.enable_stream(rs.stream.pose)
    stop = _Stop()
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    profile = pipe.start(cfg)
    serial = profile.get_device().get_info(rs.camera_info.serial_number)
    channel = robot_channel(channel, robot)
    sys.stderr.write("t265: camera %s of robot %s streaming pose to %s channel %s\n" % (serial, robot, lcm_url, channel))
    published, last_frame, last_report = 0, time.monotonic(), time.monotonic()
    try:
        while not stop.requested:
            try:
                frames = pipe.wait_for_frames(200)  # ms
            except RuntimeError:  # timeout: no frame within 200 ms
                frames = None
            pose_frame = frames.get_pose_frame() if frames else None
            t = time.monotonic()
            if pose_frame:
                msg = pose_to_message(pose_frame.get_pose_data(), pose_frame.frame_number, int(t * 1e6), robot, serial)
                lc.publish(channel, msg.encode())
                published, last_frame = published + 1, t
            elif t - last_frame > max_silence_s:
                sys.stderr.write("t265: no pose frame for %.1f s, exiting for a restart\n" % (t - last_frame))
                return EXIT_NO_FRAMES
            if t - last_report >= report_every_s:
                sys.stderr.write("t265: %.1f Hz\n" % (published / (t - last_report)))
                published, last_report = 0, t
    finally:
        pipe.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Publish a real T265's pose stream as t265_pose_t over LCM")
    p.add_argument("--lcm-url", default=DEFAULT_LCM_URL, help="LCM provider URL (default %(default)s)")
    p.add_argument("--robot", required=True, help="robot name (robot.name of its config): sent in every message, "
                   "channel <channel>/<robot>")
    p.add_argument("--channel", default=DEFAULT_CHANNEL, help="LCM channel base name (default %(default)s)")
    p.add_argument("--max-silence-s", type=float, default=2.0, help="exit (status 3) after this long without frames")
    p.add_argument("--report-every-s", type=float, default=10.0, help="print the publishing rate this often")
    p.add_argument("--serial", default=None, help="T265 serial number if several RealSense devices are attached")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        import pyrealsense2  # noqa: F401
    except ImportError as e:
        sys.stderr.write("t265: cannot import pyrealsense2 (%s). It needs CPython 3.8 or 3.10 with "
                         "'pip install pyrealsense2==2.53.1' and the Debian package libusb-1.0-0.\n" % e)
        return 2
    try:
        return run(args.lcm_url, args.channel, args.max_silence_s, args.report_every_s, args.serial, args.robot)
    except RuntimeError as e:  # librealsense errors are RuntimeError subclasses (no device, USB)
        sys.stderr.write("t265: RealSense error: %s\n" % e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
