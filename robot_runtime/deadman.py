"""The dead-man: a small separate process that puts the Go1 in damping when the runtime dies or hangs.

    dm = Deadman.start("127.0.0.1", sim_port, timeout_s=0.1, estop=[["B"]])   # from the runtime
    link_loop.heartbeat = dm.beat                                             # one byte per 2 ms link period
    ...; dm.close()                                                           # normal end: it exits

    python -m go1o4.robot_runtime.deadman --heartbeat-fd 5 --pid 1234 --robot-ip ... --robot-port 8007

Watch: the runtime writes a byte into a pipe at every link period. The dead-man takes over when the pipe
closes (the runtime exited or was killed: the kernel closes its end at once), when no byte came for
``timeout_s`` (a hung runtime: it is killed with SIGKILL first, its state is unknown) or when the runtime's
PID is gone. Takeover: the real SDK (``unitree_legged_sdk`` UDP) to the robot from the runtime's local port
(free once the runtime's socket is gone; an ephemeral port if that cannot be bound) sending damping
(servo mode, Kp 0, Kd ``kd``, PosStopF: tau = -Kd dq) at 500 Hz until the operator stops it (SIGINT /
SIGTERM, or a new ``go1o4 session`` for the same robot, which hands over through ``pidfile``). The
wireless remote's e-stop in the received LowState is honoured by the dead-man itself: damping latched,
said on stderr. Every event is a JSON line in ``--events`` (monotonic times: the benchmark's clock), and
the joint torques (tauEst) of the first seconds of damping go to ``--trace``. Python 3.8 syntax.
"""
import argparse
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from typing import Any, List, Optional, Sequence

from go1o4 import contract as C

HANDOVER_DIR = "/tmp"


def pidfile_for(robot_ip: str, robot_port: int) -> str:
    """Where the dead-man of one robot address records its PID (a new session stops it: operator restart)."""
    return os.path.join(HANDOVER_DIR, "go1o4-deadman-%s-%d.pid" % (robot_ip, int(robot_port)))


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, i.e. dead but not yet reaped, counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def stop_previous(robot_ip: str, robot_port: int, timeout: float = 3.0) -> Optional[int]:
    """Stop a dead-man still holding this robot (it damps until the operator restarts); returns its PID."""
    path = pidfile_for(robot_ip, robot_port)
    try:
        with open(path) as f:
            pid = int(f.read().split()[0])
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            if b"deadman" not in f.read():
                return None
    except (OSError, ValueError, IndexError):
        return None
    os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < end:
        time.sleep(0.01)
    return pid


class Deadman:
    """The runtime's handle on its dead-man process: :meth:`beat` from the link loop, :meth:`close` at the end."""

    def __init__(self, proc: subprocess.Popen, write_fd: int, events_path: str, every_s: float = 0.01):
        self.proc, self._w, self.events_path = proc, write_fd, events_path
        self.beats = self.dropped = 0
        self.every_s, self._next = every_s, 0.0  # a byte every 10 ms at most: the dead-man wakes 100 times/s

    @classmethod
    def start(cls, robot_ip: str, robot_port: int, local_port: int = 0, timeout_s: float = 0.1,
              estop: Sequence[Sequence[str]] = (("B",),), events_path: str = "", trace_path: str = "",
              kd: float = C.DAMPING_KD, ready_timeout: float = 30.0, priority: int = 0) -> "Deadman":
        """Start the dead-man process and wait until it watches (RuntimeError if it does not come up)."""
        stop_previous(robot_ip, robot_port)
        r, w = os.pipe()  # both ends close-on-exec: only the dead-man gets r (pass_fds), only we hold w
        os.set_blocking(w, False)
        cmd = [sys.executable, "-m", "go1o4.robot_runtime.deadman", "--heartbeat-fd", str(r), "--pid", str(os.getpid()),
               "--robot-ip", robot_ip, "--robot-port", str(robot_port), "--local-port", str(local_port),
               "--timeout", repr(float(timeout_s)), "--kd", repr(float(kd)), "--estop", json.dumps([list(c) for c in estop]),
               "--events", events_path, "--trace", trace_path, "--priority", str(int(priority))]
        proc = subprocess.Popen(cmd, pass_fds=(r,), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                start_new_session=True)
        os.close(r)
        dm = cls(proc, w, events_path)
        end, line = time.monotonic() + ready_timeout, b""
        while line.strip() != b"ready" and select.select([proc.stdout], [], [], max(0.0, end - time.monotonic()))[0]:
            line = proc.stdout.readline()  # (the SDK prints "UDP Initialized..." first)
            if not line:
                break
        proc.stdout.close()
        if line.strip() != b"ready":  # nothing may move without a dead-man
            dm.close(0.5)
            raise RuntimeError("the dead-man process did not start within %.0f s (exit code %s)"
                               % (ready_timeout, proc.poll()))
        return dm

    def beat(self) -> None:
        """One heartbeat (never blocks: a full pipe means the dead-man is behind, and a byte is as good as many)."""
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.every_s
        try:
            os.write(self._w, b".")
            self.beats += 1
        except BlockingIOError:
            self.dropped += 1
        except OSError:
            pass

    def close(self, timeout: float = 2.0) -> None:
        """Normal end of the runtime: the dead-man exits without taking over."""
        if self._w < 0:
            return
        try:
            os.set_blocking(self._w, True)
            os.write(self._w, b"Q")
        except OSError:
            pass
        os.close(self._w)
        self._w = -1
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()


# ----------------------------------------------------------------------------- the dead-man process
class _Watch:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.events = open(args.events, "a", buffering=1) if args.events else None
        self.stop = False
        self.ready = None

    def emit(self, kind: str, **doc: Any) -> None:
        doc = dict(doc, event=kind, time=time.monotonic(), pid=os.getpid())
        if self.events is not None:
            self.events.write(json.dumps(doc) + "\n")

    def say(self, text: str) -> None:
        sys.stderr.write("\033[1;31mDEAD-MAN: %s\033[0m\n" % text)
        sys.stderr.flush()

    def watch(self, fd: int) -> Optional[str]:
        """Until the runtime says goodbye (None) or fails (the cause, in words)."""
        a, last, armed = self.args, time.monotonic(), False  # armed by the first beat (the link loop started)
        while not self.stop:
            left = last + a.timeout - time.monotonic() if armed else 0.005
            t_call = time.monotonic()
            ready = select.select([fd], [], [], max(0.0, min(left, 0.005)))[0]  # the PID is looked at every 5 ms
            if not ready and time.monotonic() - t_call > 0.02:  # this process was starved, not the runtime:
                ready = select.select([fd], [], [], 0.0)[0]  # look once more before judging the beats
            if ready:
                try:
                    data = os.read(fd, 4096)
                except InterruptedError:
                    continue
                if not data:
                    return "the runtime (PID %d) exited: heartbeat pipe closed" % a.pid
                if data.endswith(b"Q"):
                    return None
                last, armed = time.monotonic(), True
            elif armed and time.monotonic() - last > a.timeout:
                if _alive(a.pid):
                    os.kill(a.pid, signal.SIGKILL)  # hung: it must not send again while the dead-man holds the link
                    return "no heartbeat from the runtime for %.0f ms (limit %.0f ms): runtime PID %d killed" % (
                        1e3 * (time.monotonic() - last), 1e3 * a.timeout, a.pid)
                return "the runtime (PID %d) is gone: no heartbeat for %.0f ms" % (a.pid, 1e3 * (time.monotonic() - last))
            elif not _alive(a.pid):
                return "the runtime (PID %d) is gone" % a.pid
        return None

    def prepare(self) -> None:
        """Before watching: import the SDK; with no fixed local port the link can exist already (it sends nothing)."""
        from go1o4.robot_runtime.sdk_link import SdkLink

        self.ready = None if self.args.local_port else SdkLink(self.args.robot_ip, self.args.robot_port, local_port=0)

    def _link(self):
        from go1o4.robot_runtime.sdk_link import SdkLink

        if self.ready is not None:
            return self.ready
        a, port = self.args, self.args.local_port
        if port:  # the runtime's own port, once its socket is gone (a few ms after the process)
            end = time.monotonic() + 0.05
            while True:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    s.bind(("", port))
                    break
                except OSError:
                    if time.monotonic() > end:
                        self.say("local port %d still taken: damping from an ephemeral port" % port)
                        port = 0
                        break
                    time.sleep(0.001)
                finally:
                    s.close()
        return SdkLink(a.robot_ip, a.robot_port, local_port=port)

    def damp(self, cause: str) -> int:
        """Send damping at 500 Hz until told to stop; honour the remote's e-stop; record tauEst."""
        a = self.args
        t_detect = time.monotonic()
        link = self._link()
        link.send_damping(a.kd)
        t_first = time.monotonic()
        self.emit("takeover", cause=cause, detected=t_detect, first_damping=t_first)
        self.say("%s -> damping (Kd %.1f) to %s:%d until the operator restarts (a new go1o4 session, or kill %d)"
                 % (cause, a.kd, a.robot_ip, a.robot_port, os.getpid()))
        combos = [frozenset(c) for c in a.estop]
        trace: List[List[float]] = []
        estop_latched, deadline = False, time.monotonic()
        while not self.stop:
            deadline += C.LINK_DT
            st = link.receive(max(0.0, deadline - time.monotonic()))
            if st is not None:
                if len(trace) < 5000 and a.trace:
                    trace.append([time.monotonic()] + st.tau_est.tolist() + st.dq.tolist())
                pressed = st.remote.get("buttons", ())
                if not estop_latched and any(c.issubset(pressed) for c in combos):
                    estop_latched = True
                    self.emit("estop", buttons=sorted(pressed))
                    self.say("e-stop pressed on the remote: damping latched")
            left = deadline - time.monotonic()
            if left > 0:
                time.sleep(left)
            link.send_damping(a.kd)
        self.emit("stopped", sent=link.sent, received=link.received, estop=estop_latched)
        if a.trace:
            with open(a.trace, "w") as f:
                json.dump({"takeover": t_first, "columns": ["time"] + ["tau_" + j for j in C.JOINT_NAMES_SIM]
                           + ["dq_" + j for j in C.JOINT_NAMES_SIM], "rows": trace}, f)
        link.close()
        return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m go1o4.robot_runtime.deadman", description=__doc__.split("\n")[0])
    p.add_argument("--heartbeat-fd", type=int, required=True)
    p.add_argument("--pid", type=int, required=True, help="the runtime's PID")
    p.add_argument("--robot-ip", required=True)
    p.add_argument("--robot-port", type=int, default=8007)
    p.add_argument("--local-port", type=int, default=0, help="the runtime's local UDP port (0: any)")
    p.add_argument("--timeout", type=float, default=0.1)
    p.add_argument("--kd", type=float, default=C.DAMPING_KD)
    p.add_argument("--estop", type=json.loads, default=[["B"]])
    p.add_argument("--events", default="")
    p.add_argument("--trace", default="")
    p.add_argument("--priority", type=int, default=0, help="SCHED_FIFO priority (0: normal)")
    args = p.parse_args(argv)
    if args.priority > 0:  # above the runtime's loops: a starved watcher would see beats missing that were sent
        from go1o4.robot_runtime.clock import make_realtime_thread

        make_realtime_thread(args.priority)
    w = _Watch(args)

    def _stop(signum, frame) -> None:
        w.stop = True
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    path = pidfile_for(args.robot_ip, args.robot_port)
    with open(path, "w") as f:
        f.write("%d\n" % os.getpid())
    try:
        w.prepare()
        w.emit("watching", runtime_pid=args.pid, timeout=args.timeout)
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        os.dup2(2, 1)  # later prints (the SDK's) go to stderr, not into the closed pipe
        cause = w.watch(args.heartbeat_fd)
        if cause is None:
            w.emit("goodbye")
            return 0
        return w.damp(cause)
    finally:
        try:
            with open(path) as f:
                mine = f.read().split()[0] == str(os.getpid())
            if mine:
                os.unlink(path)
        except (OSError, IndexError):
            pass


if __name__ == "__main__":
    sys.exit(main())

