"""The inflate backends (ISA-L and zlib) agree on every archive the reader sees.

The reader takes ISA-L when it is installed (``kaisec._internal.inflate``);
zlib is the fallback. Whatever the backend, an archive must read to the same
bytes or fail with the same code, so that a package's verdict never depends on
the machine that checks it.
"""

from __future__ import annotations

import io
import os
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kaisec._internal import inflate
from kaisec._internal.zipsafe import SafeZipReader, ZipLimits
from kaisec.errors import KaisecError

from .backends import use_backend
from .zipcraft import Entry, build, deflate, mutate, seed_archives

LIMITS = ZipLimits(max_entries=64, max_entry_size=1 << 20, max_total_size=4 << 20)


def outcome(data: bytes) -> dict[str, bytes | str] | str:
    """Each entry's bytes, or the error code of the first entry that fails, or the open error."""
    try:
        reader = SafeZipReader(io.BytesIO(data), limits=LIMITS)
    except KaisecError as exc:
        return exc.code
    got: dict[str, bytes | str] = {}
    with reader:
        for entry in reader.entries:
            try:
                got[entry.name] = b"".join(reader.iter_chunks(entry, chunk_size=4093))
            except KaisecError as exc:
                got[entry.name] = exc.code
    return got


def both(data: bytes) -> tuple[object, object]:
    with pytest.MonkeyPatch.context() as mp:
        use_backend(mp, "isal")
        fast = outcome(data)
        use_backend(mp, "zlib")
        slow = outcome(data)
    return fast, slow


def test_isal_is_the_default_where_installed() -> None:
    # CI installs the wheel (pyproject): the tests must exercise the backend users get.
    assert inflate.select("isal")[0] == "isal"
    assert inflate.BACKEND == ("zlib" if os.environ.get("KAISEC_INFLATE") == "zlib" else "isal")


TEXT = b"".join(b"line %d of some app source, var x = %d;\n" % (i, i * 7) for i in range(3000))
RANDOM = os.urandom(50_000)


def too_far_back() -> bytes:
    # A fixed-Huffman block whose first symbol is a match: distance 1 with no
    # output yet ("invalid distance too far back" in zlib).
    return bytes([0x03, 0x02, 0x00])


# name: (what the entry declares it holds, the deflate payload)
CASES = {
    "text": (TEXT, deflate(TEXT)),
    "random": (RANDOM, deflate(RANDOM)),
    "stored blocks": (RANDOM, deflate(RANDOM, level=0)),
    "empty stream": (b"", b"\x03\x00"),
    "truncated": (TEXT, deflate(TEXT)[:-40]),
    "trailing junk": (TEXT, deflate(TEXT) + b"junk"),
    "invalid block type": (TEXT, b"\xff" * 16),
    "distance too far back": (b"\x00" * 3, too_far_back()),
    "bit flip": (TEXT, bytes([deflate(TEXT)[0] ^ 0x04]) + deflate(TEXT)[1:]),
}


@pytest.mark.parametrize(("plain", "payload"), CASES.values(), ids=list(CASES))
@pytest.mark.parametrize("declared", ["right", "short", "long", "bad crc"])
def test_crafted_streams_agree(plain: bytes, payload: bytes, declared: str) -> None:
    size = len(plain)
    crc = zlib.crc32(plain)
    if declared == "short" and size:
        size -= 1
    elif declared == "long":
        size += 1
    elif declared == "bad crc":
        crc ^= 1
    archive = build([Entry("a.js", plain, method=8, payload=payload, size=size, crc=crc)])
    fast, slow = both(archive)
    assert fast == slow
    honest = (size, crc) == (len(plain), zlib.crc32(plain))
    if honest and payload in VALID:
        assert fast == {"a.js": plain}
    else:
        assert fast == {"a.js": "CORRUPT_PACKAGE"}


VALID = {CASES[n][1] for n in ("text", "random", "stored blocks", "empty stream")}


SEEDS = seed_archives()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(SEEDS),
    mutations=st.lists(
        st.tuples(st.integers(0, 6), st.integers(0, 1 << 16), st.integers(0, 255)),
        min_size=1,
        max_size=4,
    ),
)
def test_mutated_archives_agree(seed: bytes, mutations: list[tuple[int, int, int]]) -> None:
    data = mutate(seed, mutations)
    fast, slow = both(data)
    assert fast == slow


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    plain=st.binary(max_size=5000) | st.text(max_size=3000).map(str.encode),
    level=st.integers(0, 9),
    flips=st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 7)), max_size=3),
)
def test_damaged_deflate_agrees(plain: bytes, level: int, flips: list[tuple[int, int]]) -> None:
    payload = bytearray(deflate(plain, level))
    for pos, bit in flips:
        if payload:
            payload[pos % len(payload)] ^= 1 << bit
    archive = build([Entry("a.bin", plain, method=8, payload=bytes(payload))])
    fast, slow = both(archive)
    assert fast == slow
