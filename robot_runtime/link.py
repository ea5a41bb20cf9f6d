"""What the runtime needs from a robot's low-level link: the ``Link`` protocol.

:class:`robot_runtime.sdk_link.SdkLink` (Go1, unitree_legged_sdk 3.8 over UDP) implements it; a Go2 (DDS SDK)
would be another class with these members (docs/extending.md). The session, the 500 Hz loop
(``control.LinkLoop``) and the stand-up routine talk only to this. Arrays are in simulation order; the link
does the robot's own ordering and wire format.
"""
from typing import Optional, Protocol, runtime_checkable

import numpy as np
from go1o4.robot_runtime.robot_state import RobotState


@runtime_checkable
class Link(Protocol):
    """A low-level command/state channel to one robot. Counters: sent, received, crc_failures, empty_polls."""

    crc_failures: int  # state packets rejected so far (bad checksum)
    last_state: Optional[RobotState]

    def send(self, q_des_sim: np.ndarray, dq_des_sim=0.0, kp=..., kd=..., tau_ff_sim=0.0, mode: int = ...) -> None:
        """One command: per-joint PD targets in sim order; refuses non-finite values (ValueError)."""

    def send_damping(self, kd: float = ...) -> None:
        """The damping fallback: no position term, Kp 0, dq_des 0 (tau = -kd dq)."""

    def receive(self, timeout: float = 0.0, poll: float = 5e-5) -> Optional[RobotState]:
        """The newest state, or None if none arrived within ``timeout`` s."""

    def counters(self) -> dict:
        """sent / received / crc_failures / empty_polls."""

    def close(self) -> None:
        """Release the link's sockets."""
