"""Raw-deflate decompression and CRC-32 for the ZIP reader: ISA-L where installed, else zlib.

Inflating is most of what verifying a package costs. Intel's ISA-L (through
``python-isal``, a maintained binding whose ``isal_zlib`` module mirrors
``zlib``'s API) inflates about 2.5-3x faster than zlib on this kind of data
and computes CRC-32 with carry-less multiplication; like zlib it releases the
GIL while it works, so entries inflate in parallel on worker threads.

Both backends give the same bytes for every valid deflate stream. On a
malformed one they may fail at different points (each raises its own error
class: ``ERRORS`` holds both), never with different output that passes the
CRC-32 and the signed SHA-256 that the reader and the verifier check after.
The installer and the app server read packages with the same reader, so the
bytes served are always the bytes verified, whichever backend is in use.

``KAISEC_INFLATE=zlib`` in the environment forces zlib (the tests run the
hostile-package corpus under both).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from typing import Protocol, cast


class Decompressor(Protocol):
    """What the reader uses of a ``decompressobj``: zlib's API, shared by isal_zlib."""

    @property
    def unconsumed_tail(self) -> bytes: ...

    @property
    def unused_data(self) -> bytes: ...

    @property
    def eof(self) -> bool: ...

    def decompress(self, data: bytes, max_length: int = 0, /) -> bytes: ...


Backend = tuple[
    str, Callable[[], Decompressor], Callable[[bytes, int], int], tuple[type[Exception], ...]
]


def select(prefer: str = "isal") -> Backend:
    """The backend to use: ISA-L if ``prefer`` is ``"isal"`` and it is installed, else zlib."""
    if prefer == "isal":
        try:
            from isal import isal_zlib
        except ImportError:  # not every platform has a wheel: zlib is always there
            pass
        else:
            return (
                "isal",
                lambda: isal_zlib.decompressobj(-15),
                isal_zlib.crc32,
                (cast("type[Exception]", isal_zlib.error), zlib.error),  # stub: an instance
            )
    return "zlib", lambda: zlib.decompressobj(-15), zlib.crc32, (zlib.error,)


BACKEND, raw_decompressobj, crc32, ERRORS = select(
    "zlib" if os.environ.get("KAISEC_INFLATE", "").lower() == "zlib" else "isal"
)
"""The backend's name, a raw (no header) inflater factory, CRC-32, and the errors it raises."""
