"""Sensors: the GPS and the camera.

State: none persisted. The position comes from ``config.position`` (changed
in memory by :meth:`SimGeolocation.set_position`, for tests), stamped with
the device clock. The camera makes a picture on demand: a PNG test pattern
(red grows left to right, green top to bottom, a blue checkerboard over
both), the same for the same size. Neither emits events.
"""

from __future__ import annotations

import math
import struct
import threading
import zlib
from collections.abc import Callable

from kaisec.device.base import Position
from kaisec.errors import DeviceError

__all__ = ["MAX_PICTURE_SIDE", "SimCamera", "SimGeolocation", "encode_png"]

#: Largest width or height of a picture, in pixels.
MAX_PICTURE_SIDE = 2048
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHECKER = 16


class SimGeolocation:
    """A GPS that is always where it is told to be."""

    def __init__(self, position: tuple[float, float, float], *, clock: Callable[[], float]) -> None:
        self._lock = threading.Lock()
        self._position = position
        self._clock = clock

    def current_position(self) -> Position:
        """Where the device is now (latitude, longitude in degrees; accuracy in metres)."""
        with self._lock:
            lat, lon, acc = self._position
        return Position(lat=lat, lon=lon, accuracy=acc, timestamp=self._clock())

    def set_position(self, lat: float, lon: float, accuracy: float = 25.0) -> None:
        """Move the simulated device (for tests and demos).

        Raises:
            ValueError: coordinates out of range.
        """
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0) or not (
            math.isfinite(accuracy) and accuracy >= 0
        ):
            raise ValueError(f"expected lat, lon, accuracy in range, got {lat}, {lon}, {accuracy}")
        with self._lock:
            self._position = (float(lat), float(lon), float(accuracy))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def encode_png(width: int, height: int, rows: list[bytes]) -> bytes:
    """An 8-bit RGB PNG from ``height`` rows of ``3 * width`` bytes.

    Hand-written (PNG spec, ISO/IEC 15948): signature, IHDR, one IDAT holding
    the zlib stream of filter-type-0 scanlines, IEND. Thirty lines do not
    justify an imaging library as a dependency.
    """
    if len(rows) != height or any(len(r) != 3 * width for r in rows):
        raise ValueError(f"expected {height} rows of {3 * width} bytes")
    # Colour type 2 (truecolour), bit depth 8, deflate, adaptive filtering, no interlace.
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    raw = b"".join(b"\x00" + r for r in rows)  # filter type 0 ("None") on every scanline
    return (
        _PNG_SIGNATURE
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(raw, 6))
        + _chunk(b"IEND", b"")
    )


class SimCamera:
    """A camera that photographs a test pattern."""

    def take_picture(self, *, width: int = 320, height: int = 240) -> bytes:
        """A PNG of ``width`` x ``height`` pixels.

        Raises:
            DeviceError: ``BAD_SIZE`` unless both are ints in 1..2048.
        """
        for label, side in (("width", width), ("height", height)):
            if isinstance(side, bool) or not isinstance(side, int):
                raise DeviceError(f"{label}: expected an int, got {side!r}", reason="BAD_SIZE")
            if not 1 <= side <= MAX_PICTURE_SIDE:
                raise DeviceError(
                    f"{label}: expected 1..{MAX_PICTURE_SIDE} pixels, got {side}", reason="BAD_SIZE"
                )
        # Built a row at a time with slice assignment: fast enough in pure Python.
        red = bytes(x * 255 // max(width - 1, 1) for x in range(width))
        blue = [
            bytes(255 if (x // _CHECKER + parity) % 2 else 0 for x in range(width))
            for parity in (0, 1)
        ]
        rows = []
        for y in range(height):
            row = bytearray(3 * width)
            row[0::3] = red
            row[1::3] = bytes((y * 255 // max(height - 1, 1),)) * width
            row[2::3] = blue[(y // _CHECKER) % 2]
            rows.append(bytes(row))
        return encode_png(width, height, rows)
