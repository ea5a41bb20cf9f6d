"""Link fault injection for the simulated Go1: loss, silence bursts, delay/jitter, reordering, bad CRC.

All decisions come from one seeded generator and the simulator's clock (sim time), so a lock-step
run with faults is reproducible. Replies are queued with a due time and released by
:meth:`FaultInjector.release`; with every fault at zero a reply is released immediately.
"""
import heapq
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np
from go1o4.robot_runtime.simulated_go1.codec import corrupt_crc


@dataclass
class FaultConfig:
    cmd_loss: float = 0.0  # probability an incoming LowCmd is lost on the wire (never applied)
    state_loss: float = 0.0  # probability a LowState reply is lost
    corrupt_crc: float = 0.0  # probability a reply goes out with a wrong CRC (SDK Recv() -> -3)
    delay_ms: float = 0.0  # reply latency
    jitter_ms: float = 0.0  # uniform extra latency in [0, jitter_ms]
    reorder: float = 0.0  # probability a reply is held back and sent after the next one
    silence_rate: float = 0.0  # silence bursts started per second (Poisson)
    silence_ms: float = 0.0  # length of each burst: no replies at all
    seed: int = 0

    def validate(self) -> None:
        for name in ("cmd_loss", "state_loss", "corrupt_crc", "reorder"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError("%s is a probability in [0, 1], got %r" % (name, v))
        for name in ("delay_ms", "jitter_ms", "silence_rate", "silence_ms"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0):
                raise ValueError("%s must be >= 0, got %r" % (name, v))

    def active(self) -> bool:
        """Any fault process switched on."""
        return any(getattr(self, name) > 0 for name in ("cmd_loss", "state_loss", "corrupt_crc", "delay_ms",
                                                          "jitter_ms", "reorder", "silence_rate"))


Reply = Tuple[bytes, Tuple[str, int]]


class FaultInjector:
    def __init__(self, cfg: FaultConfig):
        cfg.validate()
        self.cfg = cfg
        self.rng = np.random.default_rng(cfg.seed)
        self.silent_until = -1.0
        self._queue: List[Tuple[float, int, bytes, Tuple[str, int]]] = []
        self._seq = 0
        self._held = None  # a reply held back for reordering
        self.counts = {"cmd_lost": 0, "state_lost": 0, "crc_corrupted": 0, "silenced": 0, "reordered": 0}
        self._configured = cfg.active()

    def configure(self, cfg: FaultConfig) -> None:
        cfg.validate()
        self.cfg = cfg
        self.rng = np.random.default_rng(cfg.seed)
        self._configured = cfg.active()

    def idle(self, now: float) -> bool:
        """No fault configured, none pending, not silenced: a reply may go straight to the socket."""
        return not (self._configured or self._queue or self._held is not None or now < self.silent_until)

    @property
    def pending(self) -> bool:
        return bool(self._queue)

    def silence(self, now: float, seconds: float) -> None:
        self.silent_until = max(self.silent_until, now + seconds)

    def tick(self, now: float, dt: float) -> None:
        """Advance the silence-burst process by one link period."""
        if not self._configured:
            return
        c = self.cfg
        if c.silence_rate > 0 and c.silence_ms > 0 and self.rng.random() < c.silence_rate * dt:
            self.silence(now, c.silence_ms * 1e-3)

    def lose_command(self) -> bool:
        if not self._configured:
            return False
        lost = self.cfg.cmd_loss > 0 and self.rng.random() < self.cfg.cmd_loss
        self.counts["cmd_lost"] += int(lost)
        return lost

    def send(self, packet: bytes, addr: Tuple[str, int], now: float) -> None:
        """Queue one reply at time ``now`` (it may be lost, corrupted, delayed or reordered)."""
        c = self.cfg
        if now < self.silent_until:
            self.counts["silenced"] += 1
            return
        if c.state_loss > 0 and self.rng.random() < c.state_loss:
            self.counts["state_lost"] += 1
            return
        if c.corrupt_crc > 0 and self.rng.random() < c.corrupt_crc:
            packet = corrupt_crc(packet)
            self.counts["crc_corrupted"] += 1
        delay = c.delay_ms * 1e-3
        if c.jitter_ms > 0:
            delay += self.rng.uniform(0.0, c.jitter_ms * 1e-3)
        if self._held is None and c.reorder > 0 and self.rng.random() < c.reorder:
            self._held = (packet, addr)
            self.counts["reordered"] += 1
            return
        self._push(now + delay, packet, addr)
        if self._held is not None:
            self._push(now + delay, *self._held)
            self._held = None

    def _push(self, due: float, packet: bytes, addr: Tuple[str, int]) -> None:
        heapq.heappush(self._queue, (due, self._seq, packet, addr))
        self._seq += 1

    def release(self, now: float) -> List[Reply]:
        """Replies due at ``now``, in send order."""
        out = []
        while self._queue and self._queue[0][0] <= now + 1e-12:
            _, _, packet, addr = heapq.heappop(self._queue)
            out.append((packet, addr))
        return out

    def clear(self) -> None:
        self._queue.clear()
        self._held = None
        self.silent_until = -1.0
