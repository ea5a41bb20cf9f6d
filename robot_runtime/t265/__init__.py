"""Intel RealSense T265 for the runtime: frames (pure math), the LCM velocity source, the device publisher.

``frames`` is pure numpy; ``source`` needs ``lcm`` only once a source starts; ``realsense_publisher``
runs as its own process under Python 3.8/3.10 with pyrealsense2 2.53.1 (the last with T265 support).
"""
from go1o4.robot_runtime.t265.frames import (  # noqa: F401
    MAX_SPEED,
    REASONS,
    RUB_TO_FLU,
    T265_BAD_QUATERNION,
    T265_BAD_SAMPLE,
    T265_FOREIGN,
    T265_LOW_CONFIDENCE,
    T265_NAN,
    T265_STALE,
    BodyVelocity,
    PoseSample,
    body_velocity,
    body_velocity_from_remapped,
    mount_matrix,
)
from go1o4.robot_runtime.t265.source import T265Config, T265Source, VelocityReading  # noqa: F401
