"""A change counter shared by every process that opens one store.

Decision caches sit in front of SQLite in several processes at once (the
daemon, the command line). Asking SQLite on every check would cost
microseconds; instead, every committed change writes a fresh value into an
8-byte file that each process maps into memory, and a cache compares one
machine word before answering. Hand-written because no library offers a
cross-process "something changed" word this cheap.

Protocol: a writer commits to SQLite *first*, then stores a new random value.
A reader that sees an unchanged value may trust what it cached; a reader that
cached a row read before the commit sees the new value on its next check.
Any change of value means "drop the cache"; values are never compared for order.
"""

from __future__ import annotations

import mmap
import os
import secrets
from pathlib import Path

__all__ = ["Generation"]


class Generation:
    """The mapped 8-byte counter beside a database file."""

    def __init__(self, path: Path) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < 8:
                os.pwrite(fd, secrets.token_bytes(8), 0)
            self._map = mmap.mmap(fd, 8, access=mmap.ACCESS_WRITE)
        finally:
            os.close(fd)
        self._view = memoryview(self._map).cast("Q")

    def value(self) -> int:
        """The current value (one aligned 8-byte read)."""
        return int(self._view[0])

    def bump(self) -> int:
        """Store a new value, different from the current one; returns it."""
        new = secrets.randbits(64)
        while new == self._view[0]:
            new = secrets.randbits(64)
        self._view[0] = new
        return new

    def close(self) -> None:
        self._view.release()
        self._map.close()
