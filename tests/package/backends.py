"""Switch the ZIP reader's inflate backend for a test (``kaisec._internal.inflate``)."""

from __future__ import annotations

import pytest

from kaisec._internal import inflate


def use_backend(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Make the reader inflate with ``name`` ("isal" or "zlib"), which must be installed."""
    backend = inflate.select(name)
    assert backend[0] == name, f"the {name} inflate backend is not installed"
    for attr, value in zip(
        ("BACKEND", "raw_decompressobj", "crc32", "ERRORS"), backend, strict=True
    ):
        monkeypatch.setattr(inflate, attr, value)
