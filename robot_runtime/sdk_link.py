"""Thin runtime-side wrapper over Unitree's real SDK (``unitree_legged_sdk.robot_interface``), low level.

Everything above this module speaks sim order (go1o4.contract); the SDK<->sim permutation happens
here and only here. ``SdkLink("192.168.123.10")`` talks to a real Go1; ``SdkLink("127.0.0.1",
robot_port=sim.port, local_port=0)`` to the simulated one. Non-blocking: :meth:`receive` polls
the SDK (its blocking mode holds the GIL, which would starve an in-process simulator); while it waits
it sleeps in ``select()`` on the SDK's own socket (found once in /proc/self/fd), which releases the GIL
and wakes as soon as a datagram arrives.
"""
import os
import select
import socket
import stat
import time
from typing import Optional

import numpy as np
from go1o4.robot_runtime.robot_state import RobotState
from go1o4.robot_runtime.wire import LOWCMD_SIZE, LOWSTATE_SIZE

from go1o4 import contract as C

RECV_OK, RECV_NOTHING, RECV_TIMEOUT, RECV_CRC = 0, -1, -2, -3


_FIELDS = ("q_des", "dq_des", "kp", "kd", "tau_ff")


def _socket_fds() -> dict:
    """{inode: fd} of this process's open sockets ({} without procfs: the caller falls back to sleep-polling)."""
    out = {}
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return out
    for f in fds:
        try:
            st = os.fstat(int(f))
        except OSError:  # closed meanwhile (e.g. the listing's own descriptor)
            continue
        if stat.S_ISSOCK(st.st_mode):
            out[st.st_ino] = int(f)
    return out


def _sdk_socket(before: dict, local_port: int) -> Optional[socket.socket]:
    """A duplicate of the UDP socket the SDK opened since ``before`` was taken, or None if not unambiguous.

    Only used to wait with ``select()``; the SDK keeps reading its own descriptor."""
    found = []
    for ino, fd in _socket_fds().items():
        if ino in before:
            continue
        try:
            s = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        port = s.getsockname()[1] if s.family == socket.AF_INET else None
        if s.type == socket.SOCK_DGRAM and port is not None and (local_port == 0 or port == local_port):
            found.append(s)
        else:
            s.close()
    if len(found) == 1:
        return found[0]
    for s in found:
        s.close()
    return None


class SdkLink:
    """Send LowCmd / receive LowState through the SDK. Counters: sent, received, crc_failures, empty_polls."""

    def __init__(self, robot_ip: str, robot_port: int = 8007, local_port: int = 8080, block_ms: int = 0):
        """``block_ms`` > 0: the SDK's Recv() blocks up to that long for a datagram (it holds the GIL
        meanwhile, so only when the robot is another process: lock-step benchmark, demo)."""
        try:
            from unitree_legged_sdk import robot_interface as sdk
        except ImportError as e:
            raise ImportError("unitree_legged_sdk is missing (pip install '.[robot]'): %s" % e)
        self.robot_ip, self.robot_port, self.block_ms = robot_ip, robot_port, int(block_ms)
        before = _socket_fds() if self.block_ms <= 0 else None  # to find the SDK's socket for select()
        if self.block_ms > 0:
            self.udp = sdk.UDP(int(local_port), robot_ip, int(robot_port), LOWCMD_SIZE, LOWSTATE_SIZE, False,
                               sdk.RecvEnum.blockTimeout)
            self.udp.SetRecvTimeout(self.block_ms)  # milliseconds
        else:
            self.udp = sdk.UDP(0xFF, int(local_port), robot_ip, int(robot_port))
        self.cmd, self.state = sdk.LowCmd(), sdk.LowState()
        self.udp.InitCmdData(self.cmd)
        self._wait_sock = _sdk_socket(before, int(local_port)) if before is not None else None
        self._motors = [self.cmd.motorCmd[i] for i in range(C.NUM_JOINTS)]  # SDK order
        self.sent = self.received = self.crc_failures = self.empty_polls = 0
        self.last_state: Optional[RobotState] = None
        self._last_sent: Optional[np.ndarray] = None

    def send(self, q_des_sim, dq_des_sim=0.0, kp=C.KP, kd=C.KD, tau_ff_sim=0.0, mode: int = C.MODE_SERVO) -> None:
        """One LowCmd: per-joint targets in sim order (scalars broadcast). NaN is refused here."""
        packed = np.empty(5 * C.NUM_JOINTS + 1)
        for k, (name, x) in enumerate(zip(_FIELDS, (q_des_sim, dq_des_sim, kp, kd, tau_ff_sim))):
            try:
                packed[k * C.NUM_JOINTS:(k + 1) * C.NUM_JOINTS] = x
            except (ValueError, TypeError):
                raise ValueError("%s must be a scalar or %d values in sim order, got %r" % (name, C.NUM_JOINTS, x))
        packed[-1] = mode
        if not np.all(np.isfinite(packed)):
            bad = sorted({_FIELDS[i // C.NUM_JOINTS] for i in np.flatnonzero(~np.isfinite(packed))})
            raise ValueError("refusing to send non-finite %s" % ", ".join(bad))
        if self._last_sent is None or not np.array_equal(packed, self._last_sent):  # 500 Hz repeats targets
            q, dq, kp_, kd_, tau = packed[:-1].reshape(5, C.NUM_JOINTS)[:, C.SIM_TO_SDK].tolist()
            for i, m in enumerate(self._motors):
                m.mode = mode
                m.q, m.dq, m.Kp, m.Kd, m.tau = q[i], dq[i], kp_[i], kd_[i], tau[i]
            self.udp.SetSend(self.cmd)
            self._last_sent = packed
        self.udp.Send()
        self.sent += 1

    def send_damping(self, kd: float = C.DAMPING_KD) -> None:
        """The damping fallback: servo mode, position term off (PosStopF), Kp 0, dq_des 0: tau = -kd dq."""
        self.send(C.POS_STOP_F, 0.0, 0.0, kd, 0.0, C.MODE_SERVO)

    def receive(self, timeout: float = 0.0, poll: float = 5e-5) -> Optional[RobotState]:
        """The newest LowState, or None if none arrived within ``timeout`` s (0: just look once).

        The SDK drains its socket and keeps the last datagram; a bad CRC (Recv() == -3) is counted in
        ``crc_failures`` and that datagram ignored. Between looks it waits in ``select()`` on the SDK's
        socket (or, if that socket could not be identified, sleeps ``poll`` s).
        """
        deadline = time.monotonic() + timeout
        while True:
            r = self.udp.Recv()
            if r == RECV_CRC:
                self.crc_failures += 1
            elif r >= 0:
                self.udp.GetRecv(self.state)
                self.received += 1
                self.last_state = RobotState.from_sdk(self.state, self.crc_failures, time.monotonic())
                return self.last_state
            else:
                self.empty_polls += 1
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if self._wait_sock is not None:
                select.select((self._wait_sock,), (), (), left)
            elif self.block_ms <= 0:
                time.sleep(poll)

    def counters(self) -> dict:
        return {"sent": self.sent, "received": self.received, "crc_failures": self.crc_failures,
                "empty_polls": self.empty_polls}

    def close(self) -> None:
        """Release the SDK's socket (the SDK prints 'Closing UDP.')."""
        self.udp = None
        if self._wait_sock is not None:
            self._wait_sock.close()
            self._wait_sock = None

    def __enter__(self) -> "SdkLink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
