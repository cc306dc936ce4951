"""Geolocation and the camera's PNG."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import pytest

from kaisec.device import Device, DeviceConfig, Position, open_device
from kaisec.device.sensors import encode_png
from kaisec.errors import DeviceError
from kaisec.home import Home


def decode_png(png: bytes) -> tuple[int, int, bytes]:
    """A minimal reader: checks structure and CRCs, returns width, height, raw scanlines."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + data) & 0xFFFFFFFF
        chunks.append((kind, data))
        pos += 12 + length
    assert [k for k, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, colour, comp, filt, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour, comp, filt, interlace) == (8, 2, 0, 0, 0)
    return width, height, zlib.decompress(chunks[1][1])


@pytest.mark.parametrize(("w", "h"), [(320, 240), (1, 1), (17, 3), (64, 2048)])
def test_picture_is_a_valid_png(shared_dev: Device, w: int, h: int) -> None:
    png = shared_dev.camera.take_picture(width=w, height=h)
    width, height, raw = decode_png(png)
    assert (width, height) == (w, h)
    assert len(raw) == h * (1 + 3 * w)
    rows = [raw[y * (1 + 3 * w) : (y + 1) * (1 + 3 * w)] for y in range(h)]
    assert all(r[0] == 0 for r in rows)  # filter type None


def test_picture_is_not_uniform(dev: Device) -> None:
    _, _, raw = decode_png(dev.camera.take_picture())
    stride = 1 + 3 * 320
    pixels = {
        raw[i : i + 3]
        for y in range(0, 240, 7)
        for i in range(y * stride + 1, (y + 1) * stride, 3 * 11)
    }
    assert len(pixels) > 50
    first, last = raw[1:4], raw[239 * stride + 1 + 3 * 319 : 239 * stride + 1 + 3 * 320]
    assert first[0] == 0 and last[0] == 255  # red grows left to right
    assert first[1] == 0 and last[1] == 255  # green top to bottom


def test_default_size(dev: Device) -> None:
    assert decode_png(dev.camera.take_picture())[:2] == (320, 240)


@pytest.mark.parametrize(
    "size",
    [
        {"width": 0},
        {"height": -1},
        {"width": 2049},
        {"height": 1.5},
        {"width": True},
        {"width": "320"},
    ],
)
def test_bad_size(shared_dev: Device, size: Any) -> None:
    with pytest.raises(DeviceError) as exc:
        shared_dev.camera.take_picture(**size)
    assert exc.value.details["reason"] == "BAD_SIZE"


def test_encoder_checks_its_rows() -> None:
    with pytest.raises(ValueError):
        encode_png(2, 1, [b"\x00" * 5])
    assert decode_png(encode_png(1, 1, [b"\x01\x02\x03"]))[2] == b"\x00\x01\x02\x03"


def test_position(dev: Device) -> None:
    p = dev.geolocation.current_position()
    assert (p.lat, p.lon, p.accuracy) == (48.8566, 2.3522, 25.0)
    assert abs(p.timestamp - dev.system_time.get()["time"]) < 5
    assert p.to_dict() == {
        "lat": 48.8566,
        "lon": 2.3522,
        "accuracy": 25.0,
        "timestamp": p.timestamp,
    }
    dev.geolocation.set_position(-33.86, 151.2, 5)  # type: ignore[attr-defined]
    assert dev.geolocation.current_position().lat == -33.86
    with pytest.raises(ValueError):
        dev.geolocation.set_position(91, 0)  # type: ignore[attr-defined]


def test_position_from_config_and_device_clock(home: Home) -> None:
    with open_device(home, config=DeviceConfig(position=(1.0, 2.0, 3.0))) as dev:
        dev.system_time.set(time=1_000_000.0)
        p = dev.geolocation.current_position()
        assert p == Position(1.0, 2.0, 3.0, p.timestamp)
        assert 1_000_000.0 <= p.timestamp < 1_000_010.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"position": (91.0, 0.0, 1.0)},
        {"position": (0.0, 0.0, -1.0)},
        {"max_file_size": 0},
        {"call_step": -1.0},
        {"emergency_numbers": ("11a",)},
    ],
)
def test_bad_config(kwargs: Any) -> None:
    with pytest.raises(ValueError):
        DeviceConfig(**kwargs)
