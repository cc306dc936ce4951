"""Craft ZIP archives byte by byte for tests, with every field overridable.

Hostile archives are built here at test time rather than committed as binary
fixtures: each one states in code which single field it breaks. ``build``
lays entries out one after another, writes a matching central directory and
end record, and takes overrides for whatever a test wants to break.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

LOCAL = struct.Struct("<4sHHHHHIIIHH")
CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
EOCD = struct.Struct("<4sHHHHIIH")
Z64_LOCATOR = struct.Struct("<4sIQI")
Z64_EOCD = struct.Struct("<4sQHHIIQQQQ")

SIG_LOCAL = b"PK\x03\x04"
SIG_CENTRAL = b"PK\x01\x02"
SIG_EOCD = b"PK\x05\x06"
SIG_Z64_LOCATOR = b"PK\x06\x07"
SIG_Z64_EOCD = b"PK\x06\x06"
SIG_DESCRIPTOR = b"PK\x07\x08"

UNIX = 3 << 8 | 20  # "version made by": Unix host, APPNOTE 2.0
U32 = 0xFFFFFFFF
U16 = 0xFFFF


def deflate(data: bytes, level: int = 9) -> bytes:
    """Raw deflate (no zlib header), as ZIP method 8 stores it."""
    obj = zlib.compressobj(level, zlib.DEFLATED, -15)
    return obj.compress(data) + obj.flush()


def extra_field(header_id: int, payload: bytes) -> bytes:
    return struct.pack("<HH", header_id, len(payload)) + payload


def zip64_extra(*values: int) -> bytes:
    return extra_field(0x0001, struct.pack(f"<{len(values)}Q", *values))


def descriptor(
    crc: int, csize: int, size: int, *, signature: bool = True, zip64: bool = False
) -> bytes:
    body = struct.pack("<IQQ" if zip64 else "<III", crc, csize, size)
    return (SIG_DESCRIPTOR if signature else b"") + body


@dataclass
class Entry:
    """One entry; ``None`` fields take the value that makes the archive valid."""

    name: str | bytes
    data: bytes = b""
    method: int = 0
    payload: bytes | None = None  # the compressed bytes as written; default from data/method
    flags: int | None = None  # default: UTF-8 bit for non-ASCII str names
    crc: int | None = None
    size: int | None = None
    csize: int | None = None
    made_by: int = 20
    needed: int = 20  # "version needed to extract", central record
    external_attr: int = 0
    central_extra: bytes = b""
    local_extra: bytes = b""
    disk_start: int = 0
    offset: int | None = None  # the central record's local header offset
    # Local header overrides.
    local_signature: bytes = SIG_LOCAL
    local_name: bytes | None = None
    local_method: int | None = None
    local_flags: int | None = None
    local_crc: int | None = None
    local_size: int | None = None
    local_csize: int | None = None
    descriptor: bytes = b""  # raw bytes right after the data
    after: bytes = b""  # raw bytes after the descriptor (a gap)
    write_local: bool = True  # False: central record only

    def raw_name(self) -> bytes:
        return self.name if isinstance(self.name, bytes) else self.name.encode("utf-8")

    def resolved(self) -> tuple[bytes, int, int, int, int]:
        """(payload, flags, crc, csize, size) with defaults filled in."""
        if self.payload is not None:
            payload = self.payload
        elif self.method == 8:
            payload = deflate(self.data)
        else:
            payload = self.data
        if self.flags is not None:
            flags = self.flags
        else:
            flags = 0x0800 if isinstance(self.name, str) and not self.name.isascii() else 0
        crc = zlib.crc32(self.data) if self.crc is None else self.crc
        csize = len(payload) if self.csize is None else self.csize
        size = len(self.data) if self.size is None else self.size
        return payload, flags, crc, csize, size


def local_header(entry: Entry) -> bytes:
    _, flags, crc, csize, size = entry.resolved()
    name = entry.local_name if entry.local_name is not None else entry.raw_name()
    return (
        LOCAL.pack(
            entry.local_signature,
            20,
            flags if entry.local_flags is None else entry.local_flags,
            entry.method if entry.local_method is None else entry.local_method,
            0,
            0x21,
            crc if entry.local_crc is None else entry.local_crc,
            csize if entry.local_csize is None else entry.local_csize,
            size if entry.local_size is None else entry.local_size,
            len(name),
            len(entry.local_extra),
        )
        + name
        + entry.local_extra
    )


def central_header(entry: Entry, offset: int) -> bytes:
    _, flags, crc, csize, size = entry.resolved()
    name = entry.raw_name()
    return (
        CENTRAL.pack(
            SIG_CENTRAL,
            entry.made_by,
            entry.needed,
            flags,
            entry.method,
            0,
            0x21,
            crc,
            csize,
            size,
            len(name),
            len(entry.central_extra),
            0,
            entry.disk_start,
            0,
            entry.external_attr,
            offset,
        )
        + name
        + entry.central_extra
    )


def eocd(
    count: int, cd_size: int, cd_offset: int, *, disk: int = 0, cd_disk: int = 0,
    count_disk: int | None = None, comment: bytes = b"", comment_len: int | None = None,
) -> bytes:  # fmt: skip
    return (
        EOCD.pack(
            SIG_EOCD,
            disk,
            cd_disk,
            count if count_disk is None else count_disk,
            count,
            cd_size,
            cd_offset,
            len(comment) if comment_len is None else comment_len,
        )
        + comment
    )


@dataclass
class Zip64:
    """Options for a ZIP64 end record + locator; ``None`` means consistent."""

    count: int | None = None
    cd_size: int | None = None
    cd_offset: int | None = None
    signature: bytes = SIG_Z64_EOCD
    record_size: int | None = None
    locator_offset: int | None = None
    locator_disks: int = 1
    extensible: bytes = b""
    # The 32-bit record's fields: sentinels by default.
    small_count: int = U16
    small_cd_size: int = U32
    small_cd_offset: int = U32


@dataclass
class Layout:
    """Archive-level overrides for ``build``."""

    prefix: bytes = b""  # before the first local header
    before_cd: bytes = b""  # between the last entry and the central directory
    extra_central: bytes = b""  # raw bytes appended to the central directory
    count: int | None = None
    cd_size: int | None = None
    cd_offset: int | None = None
    disk: int = 0
    cd_disk: int = 0
    count_disk: int | None = None
    comment: bytes = b""
    comment_len: int | None = None
    trailing: bytes = b""  # after the comment
    zip64: Zip64 | None = None
    relative_offsets: bool = False  # offsets ignore the prefix (Janus, sfx)
    offsets: dict[int, int] = field(default_factory=dict)


def build(entries: list[Entry], layout: Layout | None = None) -> bytes:
    """Lay out entries, central directory and end record(s) as bytes."""
    lay = layout or Layout()
    out = bytearray(lay.prefix)
    base = len(lay.prefix) if lay.relative_offsets else 0
    offsets: list[int] = []
    for entry in entries:
        offsets.append(len(out) - base)
        if entry.write_local:
            payload = entry.resolved()[0]
            out += local_header(entry) + payload + entry.descriptor + entry.after
    out += lay.before_cd
    cd_offset = len(out) - base
    cd = b"".join(
        central_header(e, e.offset if e.offset is not None else off)
        for e, off in zip(entries, offsets, strict=True)
    )
    cd += lay.extra_central
    out += cd
    count = len(entries) if lay.count is None else lay.count
    cd_size = len(cd) if lay.cd_size is None else lay.cd_size
    cd_off = cd_offset if lay.cd_offset is None else lay.cd_offset
    if lay.zip64 is not None:
        z = lay.zip64
        z64_pos = len(out)
        body = (
            struct.pack(
                "<HHIIQQQQ",
                45,
                45,
                0,
                0,
                count if z.count is None else z.count,
                count if z.count is None else z.count,
                cd_size if z.cd_size is None else z.cd_size,
                cd_off if z.cd_offset is None else z.cd_offset,
            )
            + z.extensible
        )
        record_size = len(body) if z.record_size is None else z.record_size
        out += z.signature + struct.pack("<Q", record_size) + body
        locator_offset = z64_pos - base if z.locator_offset is None else z.locator_offset
        out += Z64_LOCATOR.pack(SIG_Z64_LOCATOR, 0, locator_offset, z.locator_disks)
        out += eocd(
            z.small_count, z.small_cd_size, z.small_cd_offset, disk=lay.disk, cd_disk=lay.cd_disk,
            count_disk=lay.count_disk if lay.count_disk is not None else z.small_count,
            comment=lay.comment, comment_len=lay.comment_len,
        )  # fmt: skip
    else:
        out += eocd(
            count, cd_size, cd_off, disk=lay.disk, cd_disk=lay.cd_disk,
            count_disk=lay.count_disk, comment=lay.comment, comment_len=lay.comment_len,
        )  # fmt: skip
    out += lay.trailing
    return bytes(out)


def simple(*names: str, data: bytes = b"hello") -> bytes:
    """A valid stored archive of the given names, each holding ``data``."""
    return build([Entry(n, b"" if n.endswith("/") else data) for n in names])


# --- fuzzing support (shared by tests/package/test_zip_fuzz.py and fuzz/fuzz_zip.py) ---

INTERESTING_U32 = (0, 1, 0x7F, 0xFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, U32)
SIGNATURES = (SIG_LOCAL, SIG_CENTRAL, SIG_EOCD, SIG_Z64_LOCATOR, SIG_Z64_EOCD, SIG_DESCRIPTOR)


def seed_archives() -> list[bytes]:
    """Small valid archives covering every structure the reader accepts."""
    import io
    import zipfile

    from kaisec._internal.zipwrite import write_zip

    content = [("manifest.webapp", b'{"name": "x"}' * 3), ("js/a.js", b"abc" * 50), ("e", b"")]
    seeds = []
    for compression in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        for force_zip64 in (False, True):
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", compression=compression) as zf:
                for name, data in content:
                    with zf.open(name, "w", force_zip64=force_zip64) as fh:
                        fh.write(data)
                zf.writestr("d/", b"")
            seeds.append(buf.getvalue())
    buf = io.BytesIO()
    write_zip(buf, content)
    seeds.append(buf.getvalue())
    hello = zlib.crc32(b"hello")
    seeds.append(
        build(
            [
                Entry("a", b"hello", size=U32, csize=U32, local_size=5, local_csize=5,
                      central_extra=zip64_extra(5, 5)),
                Entry("b", b"hello", method=8, flags=0x08, local_crc=0, local_size=0,
                      local_csize=0, descriptor=descriptor(hello, len(deflate(b"hello")), 5)),
                Entry("c/", made_by=UNIX, external_attr=0o40755 << 16),
            ],
            Layout(zip64=Zip64(), comment=b"comment"),
        )
    )  # fmt: skip
    seeds.append(build([]))
    return seeds


def mutate(data: bytes, ops: list[tuple[int, int, int]]) -> bytes:
    """Apply (kind, position, value) mutations; positions wrap around the length."""
    buf = bytearray(data)
    for kind, position, value in ops:
        pos = position % (len(buf) + 1)
        kind %= 7
        if kind == 0 and buf:  # flip one bit
            buf[pos % len(buf)] ^= 1 << (value % 8)
        elif kind == 1 and buf:  # set one byte
            buf[pos % len(buf)] = value & 0xFF
        elif kind == 2:  # overwrite 4 bytes with an interesting value
            word = struct.pack("<I", INTERESTING_U32[value % len(INTERESTING_U32)])
            buf[pos : pos + 4] = word
        elif kind == 3:  # truncate
            del buf[pos:]
        elif kind == 4:  # insert bytes
            buf[pos:pos] = bytes([value & 0xFF]) * (1 + value % 17)
        elif kind == 5:  # delete a run
            del buf[pos : pos + 1 + value % 33]
        else:  # plant a signature
            buf[pos : pos + 4] = SIGNATURES[value % len(SIGNATURES)]
    return bytes(buf)


def exercise(data: bytes, *, differential: bool = True) -> None:
    """Open and read every entry; only kaisec errors may come out.

    When the reader accepts everything, Python's zipfile must see exactly the
    same entries and bytes: a disagreement is a parser differential.
    """
    import io
    import zipfile

    from kaisec._internal.zipsafe import SafeZipReader, ZipLimits
    from kaisec.errors import KaisecError

    limits = ZipLimits(max_entries=64, max_entry_size=1 << 20, max_total_size=4 << 20)
    try:
        with SafeZipReader(io.BytesIO(data), limits=limits) as reader:
            got: dict[str, bytes] = {}
            for entry in reader.entries:
                assert 0 <= entry.header_offset < entry.data_offset <= reader.size
                assert entry.data_offset + entry.compressed_size <= reader.size
                got[entry.name] = b"".join(reader.iter_chunks(entry, chunk_size=977))
                assert len(got[entry.name]) == entry.size
    except KaisecError:
        return
    if differential:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            theirs = {info.filename: zf.read(info) for info in zf.infolist()}
        assert theirs == got, "zipfile reads this archive differently"


def structured_archives() -> Any:
    """A hypothesis strategy: archives built from random, often hostile, fields."""
    from hypothesis import strategies as st

    names = st.sampled_from(
        ["a", "A", "b/c", "b/", "é", "e\u0301", "../x", "a/b", "x\\y", "", "d/e/f", "C:z", "\x00"]
    )
    entries = st.builds(
        Entry,
        name=names,
        data=st.binary(max_size=300),
        method=st.sampled_from([0, 8, 8, 12, 99]),
        flags=st.one_of(st.none(), st.sampled_from([0, 1, 8, 0x20, 0x800, 0x808])),
        crc=st.one_of(st.none(), st.integers(0, U32)),
        size=st.one_of(st.none(), st.integers(0, 1 << 21), st.just(U32)),
        csize=st.one_of(st.none(), st.integers(0, 400), st.just(U32)),
        made_by=st.sampled_from([20, UNIX]),
        external_attr=st.sampled_from([0, 0o100644 << 16, 0o40755 << 16, 0o120777 << 16]),
        central_extra=st.sampled_from([b"", zip64_extra(5, 5), zip64_extra(5), b"\x01\x00"]),
        local_extra=st.sampled_from([b"", zip64_extra(5, 5), b"\xfe\xca\x00\x00"]),
        descriptor=st.one_of(st.just(b""), st.binary(min_size=12, max_size=24)),
    )
    layouts = st.builds(
        Layout,
        prefix=st.sampled_from([b"", b"MZ"]),
        comment=st.sampled_from([b"", b"c", SIG_EOCD]),
        zip64=st.one_of(st.none(), st.builds(Zip64)),
    )
    return st.builds(build, st.lists(entries, max_size=5), layouts)
