"""The simulated Go1: MuJoCo physics answering the unitree SDK's low-level UDP protocol on 127.0.0.1.

Each 614-byte LowCmd is checked (size, head, level flag, CRC; bad ones are counted per reason and
dropped), turned into the motors' PD terms (servo 0x0A with PosStopF/VelStopF, damping 0x00) in
sim order, and answered with an 807-byte LowState to the sender. Physics runs at 1 or 2 kHz with
the PD inside MuJoCo. Modes: ``realtime`` (physics follows the wall clock in 2 ms link ticks) and
``lockstep`` (each valid LowCmd advances exactly one link period, then the reply goes out).
Run it in a thread (:meth:`SimulatedGo1.start`) or as its own process (``go1o4 sim-robot``).
"""
import collections
import select
import socket
import sys
import threading
import time
from typing import Dict, Optional

import numpy as np
from go1o4.robot_runtime import wire
from go1o4.robot_runtime.simulated_go1 import codec
from go1o4.robot_runtime.simulated_go1.config import SimRobotConfig
from go1o4.robot_runtime.simulated_go1.control import ControlServer
from go1o4.robot_runtime.simulated_go1.faults import FaultConfig, FaultInjector
from go1o4.robot_runtime.simulated_go1.lowstate import LowStateWriter, quat_to_rpy
from go1o4.robot_runtime.simulated_go1.motor import (
    MotorTargets,
    battery_step,
    damping_targets,
    targets_from_command,
    thermal_step,
)
from go1o4.robot_runtime.simulated_go1.remote import NEUTRAL_BLOCK, RemoteSchedule, load_remote_schedule
from go1o4.robot_runtime.simulated_go1.t265 import LcmT265Publisher, SimulatedT265
from go1o4.robot_runtime.t265.identity import sim_identity
from go1o4.sim_pretrain.physics import Go1Physics, PhysicsDivergedError

from go1o4 import contract as C

COUNTERS = ("rx_packets", "rx_valid", "rejected", "rejected_size", "rejected_head", "rejected_level", "rejected_crc",
            "invalid_motor_cmds", "tx_packets", "tx_errors", "rx_errors", "link_ticks", "lag_skipped_ticks",
            "physics_diverged", "resets", "knock_overs", "handler_errors")
SLOW_TICKS = 10  # thermal and battery models update every 20 ms
_MOTOR_CMD_START = wire.LOW_CMD.fields["motorCmd"][1]
_MOTOR_CMD_END = _MOTOR_CMD_START + wire.LOW_CMD.fields["motorCmd"][0].itemsize


def _bind_udp(host: str, port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    try:
        s.bind((host, port))
    except OSError as e:
        s.close()
        raise OSError("cannot bind UDP %s:%d for the simulated Go1: %s" % (host, port, e))
    s.setblocking(False)
    return s


class SimulatedGo1:
    """One simulated robot. Thread-safe Python API: reset, knock_over, kill, set_faults, silence,
    set_remote, ground_truth, counters. The same operations are served as JSON on ``control_port``."""

    def __init__(self, cfg: Optional[SimRobotConfig] = None, remote: Optional[RemoteSchedule] = None):
        self.cfg = cfg if cfg is not None else SimRobotConfig()
        self.cfg.validate()
        self.physics = Go1Physics(self.cfg.terrain, timestep=1.0 / self.cfg.physics_hz, seed=self.cfg.seed,
                                  motor_model=self.cfg.motor_model, actuator_net=self.cfg.actuator_net)
        if remote is None and self.cfg.remote_schedule:
            remote = load_remote_schedule(self.cfg.remote_schedule)
        self.remote_schedule = remote
        self._remote_override = None
        self.faults = FaultInjector(self.cfg.faults)
        self.lock = threading.RLock()
        self.counters: Dict[str, int] = collections.Counter({k: 0 for k in COUNTERS})
        self.sock = _bind_udp(self.cfg.host, self.cfg.port)
        name, serial = sim_identity(self.port)  # distinct per simulated robot unless configured
        self.robot_name, self.t265_serial = self.cfg.robot_name or name, self.cfg.t265.serial or serial
        self.t265 = SimulatedT265(self.cfg.t265) if self.cfg.t265_enabled else None
        if self.t265 is not None and self.cfg.t265.lcm_url:
            self.t265.subscribe(LcmT265Publisher(self.cfg.t265.lcm_url, self.cfg.t265.lcm_channel,
                                                 self.robot_name, self.t265_serial))
        self.control = None
        if self.cfg.control_port is not None:
            self.control = ControlServer(self, _bind_udp(self.cfg.host, self.cfg.control_port))
        self._running = False
        self.killed = False
        self._thread: Optional[threading.Thread] = None
        self._time_offset = 0.0
        self.temperature = np.full(C.NUM_JOINTS, self.cfg.thermal.ambient)
        self.soc = self.cfg.battery.initial_soc
        self.power_w = self.cfg.battery.idle_power
        self._writer = LowStateWriter()
        self._acc_slice, self._feet_slice = self.physics.sensor_slice("imu_acc"), self.physics.sensor_slice("foot_touch")
        self._last_cmd = b""
        self.physics_seconds = 0.0
        self._serving_blocked = False
        self.reset(self.cfg.start_pose)

    # ------------------------------------------------------------------------- properties
    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    @property
    def control_port(self) -> Optional[int]:
        return None if self.control is None else self.control.port

    def identity(self) -> dict:
        """Who this simulated robot is on the bus and what it simulates (the control port's ``ping``)."""
        t = self.cfg.t265
        publishing = self.t265 is not None and bool(t.lcm_url)
        return {"robot_name": self.robot_name, "terrain": self.cfg.terrain.kind, "mode": self.cfg.mode,
                "t265": {"lcm_url": t.lcm_url if publishing else "", "channel": t.lcm_channel,
                         "serial": self.t265_serial}}

    @property
    def time(self) -> float:
        """Robot time (s) since the simulator started; continuous across resets."""
        return self.physics.time + self._time_offset

    # ------------------------------------------------------------------------- operator API
    def reset(self, pose: str = "lying") -> None:
        """Put the robot down in ``pose`` ("lying": damping; "standing": holding DEFAULT_Q at Kp 20)."""
        with self.lock:
            if pose not in ("lying", "standing"):
                raise ValueError("pose must be 'lying' or 'standing', got %r" % (pose,))
            t = self.time
            self.physics.reset(pose=pose)
            self._time_offset = t - self.physics.time
            if pose == "lying":
                self._apply(damping_targets(self.cfg.damping_kd))
            else:
                z = np.zeros(C.NUM_JOINTS)
                self._apply(MotorTargets(C.DEFAULT_Q.copy(), z, np.full(C.NUM_JOINTS, C.KP),
                                         np.full(C.NUM_JOINTS, C.KD), z.copy(),
                                         np.full(C.NUM_JOINTS, C.MODE_SERVO, dtype=np.int64)))
            self.ddq = np.zeros(C.NUM_JOINTS)
            self._last_cmd = b""
            if self.t265 is not None:
                self.t265.reset()
            self._packet = None
            self.counters["resets"] += 1

    def knock_over(self, roll: float = 1.9) -> None:
        """Tip the robot onto its side (a fall): trunk rolled by ``roll`` rad and lifted clear of the ground."""
        with self.lock:
            d = self.physics.data
            half = 0.5 * roll
            qr = np.array([np.cos(half), np.sin(half), 0.0, 0.0])
            w0, v0 = qr[0], qr[1:]
            w1, v1 = d.qpos[3], d.qpos[4:7].copy()
            d.qpos[3] = w0 * w1 - v0 @ v1
            d.qpos[4:7] = w0 * v1 + w1 * v0 + np.cross(v0, v1)
            d.qpos[2] += 0.2
            d.qvel[:] = 0.0
            d.qvel[1] = 1.0
            self._packet = None
            self.counters["knock_overs"] += 1

    def kill(self) -> None:
        """Power cut: stop serving and close the sockets (no more replies, ever)."""
        self.killed = True
        self._running = False
        self._wake()

    def set_faults(self, cfg: Optional[FaultConfig] = None, **fields) -> None:
        """Replace the fault configuration (a FaultConfig, or its fields as keywords)."""
        with self.lock:
            self.faults.configure(cfg if cfg is not None else FaultConfig(**fields))

    def silence(self, seconds: float) -> None:
        """Send no LowState for ``seconds`` of robot time from now."""
        with self.lock:
            self.faults.silence(self.time, float(seconds))

    def set_remote(self, buttons=(), lx=0.0, ly=0.0, rx=0.0, ry=0.0, l2=0.0) -> None:
        """Hold the remote in this state (overrides the schedule) until :meth:`clear_remote`."""
        with self.lock:
            self._remote_override = wire.encode_remote(list(buttons), lx=lx, rx=rx, ry=ry, ly=ly, l2=l2)
            self._packet = None

    def clear_remote(self) -> None:
        with self.lock:
            self._remote_override = None
            self._packet = None

    def ground_truth(self) -> dict:
        """What no robot sensor gives directly: base position/velocity, plus the motor internals."""
        with self.lock:
            p = self.physics
            return {
                "time": self.time, "base_pos": p.base_pos.tolist(), "base_quat_wxyz": p.base_quat_wxyz.tolist(),
                "base_lin_vel_world": p.base_lin_vel_world.tolist(), "base_lin_vel_body": p.base_lin_vel_body.tolist(),
                "base_ang_vel_body": p.base_ang_vel_body.tolist(), "rpy": p.rpy.tolist(), "q": p.q.tolist(),
                "dq": p.dq.tolist(), "tau": p.tau.tolist(), "foot_forces": p.foot_forces.tolist(),
                "motor_mode": self.targets.mode.tolist(), "kp": self.targets.kp.tolist(), "kd": self.targets.kd.tolist(),
                "temperature": self.temperature.tolist(),
                "soc": self.soc,
            }

    def counters_snapshot(self) -> dict:
        with self.lock:
            out = dict(self.counters)
            out.update(self.faults.counts)
            out["time"] = self.time
            out["physics_s"] = round(self.physics_seconds, 6)  # wall time inside MuJoCo (overhead accounting)
            return out

    # ------------------------------------------------------------------------- simulation
    def _apply(self, targets: MotorTargets) -> None:
        self.targets = targets
        self.physics.set_motor_command(targets.q_des, targets.dq_des, targets.kp, targets.kd, targets.tau_ff)

    def _step_physics(self, n: int) -> None:
        p, t265 = self.physics, self.t265
        if t265 is None:
            p.step(n)
            return
        dt = p.timestep
        while n > 0:
            ahead = 1 if t265.next_time is None else max(1, int(np.ceil((t265.next_time - self.time) / dt - 1e-6)))
            k = min(n, ahead)
            p.step(k)
            n -= k
            t265.update(self.time, p.base_pos, p.base_quat_wxyz, p.base_lin_vel_world, p.base_ang_vel_body)

    def advance(self) -> None:
        """One link period (2 ms): physics, motor temperatures, battery, fault processes."""
        with self.lock:
            dq0 = self.physics.data.qvel[6:18].copy()
            t0 = time.perf_counter()
            try:
                self._step_physics(self.cfg.steps_per_link)
            except PhysicsDivergedError:
                self.counters["physics_diverged"] += 1
                self.reset("lying")
                return
            self.physics_seconds += time.perf_counter() - t0
            d = self.physics.data
            dq = d.qvel[6:18]
            self.ddq = (dq - dq0) / C.LINK_DT
            self.faults.tick(self.time, C.LINK_DT)
            self.counters["link_ticks"] += 1
            self._packet = None
            if self.counters["link_ticks"] % SLOW_TICKS == 0:  # thermal and battery: slow processes
                tau, dt = d.actuator_force, SLOW_TICKS * C.LINK_DT
                self.temperature = thermal_step(self.temperature, tau, dt, self.cfg.thermal)
                self.soc = battery_step(self.soc, tau, dq, dt, self.cfg.battery)
                self.power_w = self.cfg.battery.idle_power + float(np.sum(np.abs(tau * dq)))

    def remote_block(self) -> np.ndarray:
        if self._remote_override is not None:
            return self._remote_override
        if self.remote_schedule is not None:
            return self.remote_schedule.block_at(self.time)
        return NEUTRAL_BLOCK

    def state_packet(self) -> bytes:
        """The encoded LowState for the current state (cached until physics advances).

        The fast path of lock-step mode: MuJoCo's arrays are read in place and go to the writer as one
        vector (``LowStateWriter.STATE_LAYOUT``); tauEst is the PD torque the motors apply at this state.
        """
        with self.lock:
            if self._packet is None:
                d, t = self.physics.data, self.targets
                q, dq = d.qpos[7:19], d.qvel[6:18]
                quat = self.physics.base_quat_wxyz
                tau = C.pd_torque(t.q_des, q, dq, t.kp, t.kd, t.dq_des, t.tau_ff)  # what the motors apply now
                sens = d.sensordata
                state = np.concatenate((q, dq, quat, d.qvel[3:6], sens[self._acc_slice], quat_to_rpy(quat),
                                        self.ddq, tau, sens[self._feet_slice], t.mode, self.temperature))
                self._writer.write_vector(state, int(round(self.time * 1000.0)), self.soc, self.power_w,
                                          self.remote_block())
                self._packet = self._writer.encode()
            return self._packet

    # ------------------------------------------------------------------------- link
    def handle_packet(self, data: bytes, addr) -> bool:
        """Process one datagram from a client. Returns True if it was a valid LowCmd."""
        with self.lock:
            counters = self.counters
            counters["rx_packets"] += 1
            reason = codec.check(data, wire.LOW_CMD)
            if reason is not None:
                counters["rejected_" + reason] += 1
                counters["rejected"] += 1
                return False
            counters["rx_valid"] += 1
            faults = self.faults
            lost = faults.lose_command()
            motors = data[_MOTOR_CMD_START:_MOTOR_CMD_END]
            if not lost and motors != self._last_cmd:  # the runtime repeats targets between policy steps
                rec = np.frombuffer(data, dtype=wire.LOW_CMD, count=1)[0]
                targets, invalid = targets_from_command(wire.motor_cmd_fields(rec), self.cfg.damping_kd)
                counters["invalid_motor_cmds"] += invalid
                self._apply(targets)
                self._last_cmd = motors
            if self.cfg.mode == "lockstep":
                self.advance()
            if not lost:
                if faults.idle(self.time):  # no fault process running: straight to the socket
                    self._sendto(self.state_packet(), addr)
                else:
                    faults.send(self.state_packet(), addr, self.time)
            self._flush()
            return True

    def _sendto(self, packet: bytes, addr) -> None:
        try:
            self.sock.sendto(packet, addr)
            self.counters["tx_packets"] += 1
        except OSError:
            self.counters["tx_errors"] += 1

    def _flush(self) -> None:
        if self.faults.pending:
            for packet, addr in self.faults.release(self.time):
                self._sendto(packet, addr)

    def _drain(self) -> None:
        while True:
            try:
                data, addr = self.sock.recvfrom(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. ICMP port unreachable from a client that went away
                self.counters["rx_errors"] += 1
                continue
            self._handle_safe(data, addr)

    def _handle_safe(self, data: bytes, addr) -> None:
        try:
            self.handle_packet(data, addr)
        except Exception as e:  # noqa: BLE001 - a robot never dies of a packet; counted and reported
            self.counters["handler_errors"] += 1
            if self.counters["handler_errors"] == 1:
                sys.stderr.write("simulated Go1: error handling a packet from %s: %r\n" % (addr, e))

    def _serve_lockstep(self) -> None:
        """Blocking receive, one syscall per packet. With a control port it is polled every 16 packets or after
        50 ms without one; without, :meth:`stop` wakes the blocked receive with an empty datagram."""
        self.sock.settimeout(0.05 if self.control is not None else None)
        n = 0
        self._serving_blocked = self.control is None
        try:
            while self._running:
                try:
                    data, addr = self.sock.recvfrom(4096)
                except socket.timeout:
                    data = None
                except OSError:
                    if not self._running:
                        break
                    self.counters["rx_errors"] += 1
                    continue
                if not self._running:
                    break
                if data is not None:
                    self._handle_safe(data, addr)
                    n += 1
                if self.control is not None and (data is None or n % 16 == 0):
                    self.control.poll()
        finally:
            self._serving_blocked = False
            if self.sock.fileno() >= 0:
                self.sock.setblocking(False)

    def _wake(self) -> None:
        """Unblock a lock-step receive waiting without timeout (stop/kill from another thread or a signal)."""
        if not self._serving_blocked:
            return
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(b"", self.sock.getsockname())
        except OSError:
            pass

    def _wait(self, timeout: float) -> None:
        socks = [self.sock] if self.control is None else [self.sock, self.control.sock]
        readable, _, _ = select.select(socks, [], [], max(0.0, timeout))
        if self.control is not None and self.control.sock in readable:
            self.control.poll()
        if self.sock in readable:
            self._drain()

    def serve_forever(self) -> None:
        """Serve until :meth:`stop` or :meth:`kill` (blocking; call from the thread that owns the loop)."""
        if self._thread is None:
            self._running = True
        try:
            if self.cfg.mode == "lockstep":
                self._serve_lockstep()
            else:
                self._serve_realtime()
        finally:
            self._running = False
            if self.killed:
                self.close()

    def _serve_realtime(self) -> None:
        next_tick = time.monotonic() + C.LINK_DT
        max_ticks = max(1, int(self.cfg.max_lag / C.LINK_DT))
        while self._running:
            self._wait(next_tick - time.monotonic())
            due = int((time.monotonic() - next_tick) / C.LINK_DT) + 1
            if due <= 0:
                continue
            if due > max_ticks:
                self.counters["lag_skipped_ticks"] += due - max_ticks
                next_tick += (due - max_ticks) * C.LINK_DT
                due = max_ticks
            for _ in range(due):
                self.advance()
            next_tick += due * C.LINK_DT
            with self.lock:
                self._flush()

    def start(self) -> "SimulatedGo1":
        """Serve in a daemon thread (tests, in-process demo)."""
        if self._thread is not None and self._thread.is_alive():
            return self
        self._running = True
        self._thread = threading.Thread(target=self.serve_forever, name="simulated-go1", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._running = False
        self._wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        self._thread = None

    def close(self) -> None:
        self.stop()
        self.sock.close()
        if self.control is not None:
            self.control.sock.close()

    def __enter__(self) -> "SimulatedGo1":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
