"""Fast packet codec for the simulator: wire.py's layouts and checks, with a C-speed CRC.

``wire.crc32_words`` is a pure-Python table CRC (~130 us per LowState); at 5000 packets/s in
lock-step mode that alone would cap the simulator. Unitree's CRC is CRC-32/MPEG-2 (non-reflected)
over the packet's 32-bit words fed MSB first, which equals the bit-reversal of zlib's reflected
CRC-32 over the bit-reversed bytes of the byte-swapped words (no final xor). Same value, ~50x
faster; ``tests/test_wire.py`` checks it against ``wire.crc32_words`` and the SDK binary.
"""
import struct
import zlib
from typing import Optional

import numpy as np
from go1o4.robot_runtime import wire

_U32 = struct.Struct("<I")
_REV8 = bytes(int("{:08b}".format(i)[::-1], 2) for i in range(256))


def _rev32(x: int) -> int:
    return int.from_bytes(x.to_bytes(4, "big").translate(_REV8), "little")


def crc32_fast(buf: bytes) -> int:
    """Same result as :func:`wire.crc32_words` (first ``len // 4 - 1`` little-endian words)."""
    n = len(buf) // 4 - 1
    swapped = np.frombuffer(buf, dtype="<u4", count=n).byteswap().tobytes()
    return _rev32(zlib.crc32(swapped.translate(_REV8)) ^ 0xFFFFFFFF)


def check(buf: bytes, dtype: np.dtype) -> Optional[str]:
    """Why ``buf`` is not a valid packet of ``dtype`` (size, head, level, crc), or None if it is (no decoding)."""
    n = len(buf)
    if n != dtype.itemsize:
        return "size"
    if buf[:2] != wire.HEAD:
        return "head"
    if buf[2] != wire.LEVEL_LOW:
        return "level"
    if _U32.unpack_from(buf, n - 4)[0] != crc32_fast(buf):
        return "crc"
    return None


def decode(buf: bytes, dtype: np.dtype) -> np.ndarray:
    """:func:`wire.decode` with the fast CRC: raises wire.PacketError(reason in size/head/level/crc)."""
    reason = check(buf, dtype)
    if reason == "size":
        raise wire.PacketError("size", "expected %d bytes, got %d" % (dtype.itemsize, len(buf)))
    if reason == "head":
        raise wire.PacketError("head", "expected FE EF, got %s" % bytes(buf[:2]).hex())
    if reason == "level":
        raise wire.PacketError("level", "expected low level 0xFF, got 0x%02X" % buf[2])
    if reason == "crc":
        raise wire.PacketError("crc", "packet says 0x%08X, computed 0x%08X"
                               % (_U32.unpack_from(buf, len(buf) - 4)[0], crc32_fast(buf)))
    return np.frombuffer(buf, dtype=dtype, count=1)[0]


def encode(rec: np.ndarray) -> bytes:
    """:func:`wire.encode` with the fast CRC (sets head, level flag and CRC in ``rec`` too)."""
    rec = np.asarray(rec)
    rec["head"] = _HEAD_U8
    rec["levelFlag"] = wire.LEVEL_LOW
    raw = bytearray(rec.tobytes())
    struct.pack_into("<I", raw, len(raw) - 4, crc32_fast(raw))
    return bytes(raw)


_HEAD_U8 = np.frombuffer(wire.HEAD, dtype=np.uint8)


def corrupt_crc(packet: bytes) -> bytes:
    """The same packet with its CRC flipped (fault injection)."""
    raw = bytearray(packet)
    raw[-1] ^= 0xA5
    return bytes(raw)
