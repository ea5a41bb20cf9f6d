"""Unitree Go1 low-level wire format (unitree_legged_sdk 3.8): LowCmd 614 bytes, LowState 807 bytes.

Byte layouts as packed numpy dtypes, checked field by field against the SDK binary from PyPI
(``tests/test_wire.py`` round-trips packets through ``robot_interface``). Multi-byte fields are
little-endian; several are fixed-point int16 on the wire, which the SDK converts to float:
MotorCmd.tau x256, Kp x32, Kd x16; MotorState.tauEst /256, ddq and ddq_raw raw int16.
The CRC is CRC-32 (poly 0x04C11DB7, MSB first, init 0xFFFFFFFF, no final xor) over the packet's
first ``len // 4 - 1`` little-endian 32-bit words, stored in the last 4 bytes.
"""
import struct

import numpy as np

HEAD = b"\xfe\xef"
LEVEL_LOW = 0xFF
LOWCMD_SIZE = 614
LOWSTATE_SIZE = 807

TAU_CMD_SCALE = 256.0
KP_SCALE = 32.0
KD_SCALE = 16.0
TAU_EST_SCALE = 256.0

_HEADER = [
    ("head", "u1", (2,)), ("levelFlag", "u1"), ("frameReserve", "u1"),
    ("SN", "<u4", (2,)), ("version", "<u4", (2,)), ("bandWidth", "<u2"),
]
MOTOR_CMD = np.dtype([
    ("mode", "u1"), ("q", "<f4"), ("dq", "<f4"), ("tau", "<i2"), ("Kp", "<i2"), ("Kd", "<i2"),
    ("reserve", "<u4", (3,)),
])
MOTOR_STATE = np.dtype([
    ("mode", "u1"), ("q", "<f4"), ("dq", "<f4"), ("ddq", "<i2"), ("tauEst", "<i2"),
    ("q_raw", "<f4"), ("dq_raw", "<f4"), ("ddq_raw", "<i2"), ("temperature", "i1"), ("reserve", "<u4", (2,)),
])
IMU = np.dtype([
    ("quaternion", "<f4", (4,)), ("gyroscope", "<f4", (3,)), ("accelerometer", "<f4", (3,)),
    ("rpy", "<f4", (3,)), ("temperature", "i1"),
])
BMS_STATE = np.dtype([
    ("version_h", "u1"), ("version_l", "u1"), ("bms_status", "u1"), ("SOC", "u1"), ("current", "<i4"),
    ("cycle", "<u2"), ("BQ_NTC", "i1", (2,)), ("MCU_NTC", "i1", (2,)), ("cell_vol", "u1", (10,)),
])
LOW_CMD = np.dtype(_HEADER + [
    ("motorCmd", MOTOR_CMD, (20,)), ("bms", "u1", (4,)), ("wirelessRemote", "u1", (40,)),
    ("reserve", "<u4"), ("crc", "<u4"),
])
LOW_STATE = np.dtype(_HEADER + [
    ("imu", IMU), ("motorState", MOTOR_STATE, (20,)), ("bms", BMS_STATE),
    ("footForce", "<i2", (4,)), ("footForceEst", "<i2", (4,)), ("tick", "<u4"),
    ("wirelessRemote", "u1", (40,)), ("reserve", "<u4"), ("crc", "<u4"),
])
assert MOTOR_CMD.itemsize == 27 and MOTOR_STATE.itemsize == 32 and IMU.itemsize == 53
assert LOW_CMD.itemsize == LOWCMD_SIZE and LOW_STATE.itemsize == LOWSTATE_SIZE


def _make_crc_table():
    table = np.zeros(256, dtype=np.uint32)
    for i in range(256):
        c = i << 24
        for _ in range(8):
            c = ((c << 1) ^ 0x04C11DB7) if c & 0x80000000 else (c << 1)
        table[i] = c & 0xFFFFFFFF
    return [int(x) for x in table]


_CRC_TABLE = _make_crc_table()


def crc32_words(buf: bytes) -> int:
    """Unitree's crc32_core over the first ``len(buf) // 4 - 1`` little-endian words of ``buf``."""
    n = len(buf) // 4 - 1
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for w in struct.unpack_from("<%dI" % n, buf):
        # a word is fed MSB first: same as a byte-wise CRC over its big-endian bytes
        for shift in (24, 16, 8, 0):
            crc = ((crc << 8) & 0xFFFFFFFF) ^ table[((crc >> 24) ^ (w >> shift)) & 0xFF]
    return crc


class PacketError(ValueError):
    """A packet that must be dropped; ``reason`` is one of size, head, level, crc."""

    def __init__(self, reason: str, detail: str):
        self.reason = reason
        super().__init__("%s: %s" % (reason, detail))


def decode(buf: bytes, dtype: np.dtype) -> np.ndarray:
    """Decode and validate one packet; raise PacketError (never anything else) for a bad one."""
    if len(buf) != dtype.itemsize:
        raise PacketError("size", "expected %d bytes, got %d" % (dtype.itemsize, len(buf)))
    if buf[:2] != HEAD:
        raise PacketError("head", "expected FE EF, got %s" % buf[:2].hex())
    if buf[2] != LEVEL_LOW:
        raise PacketError("level", "expected low level 0xFF, got 0x%02X" % buf[2])
    rec = np.frombuffer(buf, dtype=dtype, count=1)[0]
    want = crc32_words(buf)
    if int(rec["crc"]) != want:
        raise PacketError("crc", "packet says 0x%08X, computed 0x%08X" % (int(rec["crc"]), want))
    return rec


def decode_low_cmd(buf: bytes) -> np.ndarray:
    return decode(buf, LOW_CMD)


def encode(rec: np.ndarray) -> bytes:
    """Serialise a LOW_CMD/LOW_STATE record, setting head, level flag and CRC."""
    arr = np.array(rec, dtype=rec.dtype).reshape(1)
    arr[0]["head"] = np.frombuffer(HEAD, dtype=np.uint8)
    arr[0]["levelFlag"] = LEVEL_LOW
    raw = bytearray(arr.tobytes())
    struct.pack_into("<I", raw, len(raw) - 4, crc32_words(bytes(raw)))
    return bytes(raw)


def new_low_state() -> np.ndarray:
    return np.zeros((), dtype=LOW_STATE)


def new_low_cmd() -> np.ndarray:
    return np.zeros((), dtype=LOW_CMD)


def motor_cmd_fields(rec: np.ndarray, n: int = 12) -> dict:
    """Float arrays (SDK order, first ``n`` motors) of a decoded LowCmd: mode, q, dq, tau, Kp, Kd."""
    m = rec["motorCmd"][:n]
    return {
        "mode": m["mode"].astype(np.int64),
        "q": m["q"].astype(np.float64),
        "dq": m["dq"].astype(np.float64),
        "tau": m["tau"].astype(np.float64) / TAU_CMD_SCALE,
        "Kp": m["Kp"].astype(np.float64) / KP_SCALE,
        "Kd": m["Kd"].astype(np.float64) / KD_SCALE,
    }


def to_i16(x, scale):
    """Float -> saturated int16 fixed point, as the SDK's conversion does."""
    return np.clip(np.round(np.asarray(x, dtype=np.float64) * scale), -32768, 32767).astype(np.int16)


# ----------------------------------------------------------------------------- wireless remote
# xRockerBtnDataStruct (40 bytes): head[2], btn u16 bitfield, lx, rx, ry, L2, ly (f32), idle[16]
REMOTE = np.dtype([("head", "u1", (2,)), ("btn", "<u2"), ("lx", "<f4"), ("rx", "<f4"), ("ry", "<f4"),
                   ("L2", "<f4"), ("ly", "<f4"), ("idle", "u1", (16,))])
assert REMOTE.itemsize == 40
BUTTON_BITS = ("R1", "L1", "start", "select", "R2", "L2", "F1", "F2",
               "A", "B", "X", "Y", "up", "right", "down", "left")


def encode_remote(buttons=(), lx=0.0, rx=0.0, ry=0.0, ly=0.0, l2=0.0) -> np.ndarray:
    """40 wireless-remote bytes for pressed ``buttons`` (names from BUTTON_BITS) and stick values."""
    r = np.zeros((), dtype=REMOTE)
    btn = 0
    for b in buttons:
        if b not in BUTTON_BITS:
            raise ValueError("unknown remote button %r (known: %s)" % (b, ", ".join(BUTTON_BITS)))
        btn |= 1 << BUTTON_BITS.index(b)
    r["btn"], r["lx"], r["rx"], r["ry"], r["ly"], r["L2"] = btn, lx, rx, ry, ly, l2
    return np.frombuffer(r.tobytes(), dtype=np.uint8).copy()


def decode_remote(raw) -> dict:
    """Buttons (set of names) and sticks from the 40 wireless-remote bytes (a list or bytes)."""
    b = bytes(bytearray(int(x) & 0xFF for x in raw))
    if len(b) != 40:
        raise ValueError("wireless remote block must be 40 bytes, got %d" % len(b))
    r = np.frombuffer(b, dtype=REMOTE)[0]
    btn = int(r["btn"])
    pressed = {name for i, name in enumerate(BUTTON_BITS) if btn >> i & 1}
    sticks = {k: float(r[k]) for k in ("lx", "rx", "ry", "ly", "L2")}
    return {"buttons": pressed, **sticks}
