"""Side channel of the simulated Go1: one JSON object per UDP datagram on 127.0.0.1, one JSON reply.

Requests ``{"op": NAME, ...arguments}``; replies ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``.
Operations: ping (time, port, mode, terrain, robot_name, t265 {lcm_url, channel, serial}), reset {pose}, knock_over {roll}, kill, faults {FaultConfig fields}, silence {seconds},
remote {buttons, lx, ly, rx, ry, l2}, remote_clear, t265_stall {seconds}, ground_truth, counters.
:class:`ControlClient` wraps them for tests and operator scripts (the robot may be in another process).
"""
import json
import socket
from typing import Any, Dict, Optional

from go1o4.robot_runtime.simulated_go1.faults import FaultConfig

from go1o4.config import ConfigError, from_dict


def handle_request(robot, req: Dict[str, Any]) -> Dict[str, Any]:
    """Run one control request against a SimulatedGo1; never raises (errors become ok=false)."""
    if not isinstance(req, dict) or not isinstance(req.get("op"), str):
        return {"ok": False, "error": "request must be a JSON object with a string 'op'"}
    op, args = req["op"], {k: v for k, v in req.items() if k != "op"}
    try:
        if op == "ping":
            return dict(robot.identity(), ok=True, time=robot.time, port=robot.port)
        if op == "reset":
            robot.reset(args.get("pose", "lying"))
        elif op == "knock_over":
            robot.knock_over(float(args.get("roll", 1.9)))
        elif op == "kill":
            robot.kill()
        elif op == "faults":
            robot.set_faults(from_dict(FaultConfig, args, "faults"))
        elif op == "silence":
            robot.silence(float(args["seconds"]))
        elif op == "remote":
            robot.set_remote(**args)
        elif op == "remote_clear":
            robot.clear_remote()
        elif op == "t265_stall":
            if robot.t265 is None:
                raise ValueError("the simulated T265 is not enabled (t265_enabled: true)")
            robot.t265.stall(robot.time, float(args["seconds"]))
        elif op == "ground_truth":
            return dict(ok=True, **robot.ground_truth())
        elif op == "counters":
            return dict(ok=True, **robot.counters_snapshot())
        else:
            raise ValueError("unknown op %r" % op)
    except (ValueError, TypeError, KeyError, ConfigError) as e:
        return {"ok": False, "error": "%s: %s" % (op, e)}
    return {"ok": True}


class ControlServer:
    """Answers control datagrams; :meth:`poll` is called by the robot's loop when the socket is readable."""

    def __init__(self, robot, sock: socket.socket):
        self.robot, self.sock = robot, sock

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def poll(self) -> None:
        while True:
            try:
                data, addr = self.sock.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            try:
                req = json.loads(data.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as e:
                reply = {"ok": False, "error": "not JSON: %s" % e}
            else:
                reply = handle_request(self.robot, req)
            try:
                self.sock.sendto(json.dumps(reply).encode("utf-8"), addr)
            except OSError:
                pass


class ControlClient:
    """Talk to a simulated Go1's control port (in this process or another one)."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 2.0):
        self.addr = (host, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(timeout)

    def call(self, op: str, **args) -> Dict[str, Any]:
        """Send one request; raise RuntimeError if the robot refuses it or does not answer."""
        self.sock.sendto(json.dumps(dict(op=op, **args)).encode("utf-8"), self.addr)
        try:
            data, _ = self.sock.recvfrom(65536)
        except socket.timeout:
            raise RuntimeError("simulated Go1 at %s:%d did not answer %r" % (self.addr + (op,)))
        reply = json.loads(data.decode("utf-8"))
        if not reply.get("ok"):
            raise RuntimeError("simulated Go1 refused %r: %s" % (op, reply.get("error")))
        return reply

    def ping(self) -> Dict[str, Any]:
        return self.call("ping")

    def reset(self, pose: str = "lying") -> None:
        self.call("reset", pose=pose)

    def knock_over(self, roll: float = 1.9) -> None:
        self.call("knock_over", roll=roll)

    def kill(self) -> None:
        self.call("kill")

    def set_faults(self, **fields) -> None:
        self.call("faults", **fields)

    def silence(self, seconds: float) -> None:
        self.call("silence", seconds=seconds)

    def set_remote(self, buttons=(), **sticks) -> None:
        self.call("remote", buttons=list(buttons), **sticks)

    def clear_remote(self) -> None:
        self.call("remote_clear")

    def ground_truth(self) -> Dict[str, Any]:
        return self.call("ground_truth")

    def counters(self) -> Dict[str, Any]:
        return self.call("counters")

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "ControlClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def wait_ready(port: int, timeout: float = 30.0, host: str = "127.0.0.1") -> Optional[Dict[str, Any]]:
    """Ping until the robot answers (None if it does not within ``timeout`` s)."""
    import time
    deadline = time.monotonic() + timeout
    with ControlClient(port, host, timeout=0.2) as c:
        while time.monotonic() < deadline:
            try:
                return c.ping()
            except RuntimeError:
                continue
    return None
