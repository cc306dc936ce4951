"""SafeZipReader: hostile archives refused with one code each; real archives accepted."""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import sys
import threading
import tracemalloc
import unicodedata
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from kaisec._internal.zipsafe import SafeZipReader, ZipEntry, ZipLimits, check_entry_name
from kaisec._internal.zipwrite import write_zip
from kaisec.errors import (
    CorruptPackageError,
    DuplicateEntryError,
    KaisecError,
    PackageTooLargeError,
    UnsafePathError,
)

from . import zipcraft as zc
from .zipcraft import U16, U32, UNIX, Entry, Layout, Zip64

# --- helpers ------------------------------------------------------------------


def read_all(data: bytes | Path, limits: ZipLimits | None = None) -> dict[str, bytes]:
    src = io.BytesIO(data) if isinstance(data, bytes) else data
    kwargs = {"limits": limits} if limits else {}
    with SafeZipReader(src, **kwargs) as reader:
        return {e.name: b"".join(reader.iter_chunks(e)) for e in reader.entries}


def mode(kind: int, perm: int = 0o644) -> int:
    return (kind | perm) << 16


def second_eocd() -> bytes:
    # The comment is itself an end record ending the file: two valid parses.
    inner = zc.eocd(0, 0, 0)
    return zc.build([Entry("a", b"x")], Layout(comment=inner))


def second_cd() -> bytes:
    # A stale copy of the central directory before the real one.
    stale = zc.central_header(Entry("a", b"x"), 0)
    return zc.build([Entry("a", b"x")], Layout(before_cd=stale))


def overlapping() -> bytes:
    # Two central records (different names) share one local header.
    return zc.build([Entry("a", b"xx"), Entry("b", b"xx", write_local=False, offset=0)])


def overlapping_data() -> bytes:
    # b's local header sits inside a's data.
    first = Entry("a", b"A" * 40)
    inner = zc.local_header(Entry("b", b"x")) + b"x"
    first.data = inner + b"A" * (40 - len(inner))
    return zc.build([first, Entry("b", b"x", write_local=False, offset=zc.LOCAL.size + 1)])


def lying_bomb() -> bytes:
    payload = zc.deflate(b"\0" * (8 << 20))
    return zc.build(
        [Entry("bomb", method=8, payload=payload, size=100, crc=zlib.crc32(b"\0" * 100))]
    )


def zip64_entry(central_extra: bytes = zc.zip64_extra(5, 5)) -> Entry:
    # Sizes only in the ZIP64 extra field of the central record.
    return Entry(
        "a", b"hello", size=U32, csize=U32, local_size=5, local_csize=5,
        central_extra=central_extra,
    )  # fmt: skip


def dd_entry(desc: bytes, local_size: int = 0) -> Entry:
    return Entry(
        "a", b"hello", flags=0x08, local_crc=0, local_size=local_size, local_csize=0,
        descriptor=desc,
    )  # fmt: skip


CRC_HELLO = zlib.crc32(b"hello")


@dataclass
class Case:
    id: str
    make: Callable[[], bytes]
    error: type[KaisecError]
    phase: str = "open"  # "open": SafeZipReader(...) raises; "read": reading the entries does
    limits: ZipLimits | None = None


CASES = [
    # -- not a ZIP, or not only a ZIP --
    Case("empty_file", lambda: b"", CorruptPackageError),
    Case("tiny_file", lambda: b"PK\x05\x06\0\0", CorruptPackageError),
    Case("not_a_zip", lambda: b"<html>not a zip</html>" * 10, CorruptPackageError),
    Case("trailing_data", lambda: zc.simple("a") + b"junk", CorruptPackageError),
    Case(
        "comment_longer_than_declared",
        lambda: zc.build([Entry("a")], Layout(comment=b"hi", comment_len=1)),
        CorruptPackageError,
    ),
    Case(
        "comment_shorter_than_declared",
        lambda: zc.build([Entry("a")], Layout(comment=b"hi", comment_len=5)),
        CorruptPackageError,
    ),
    Case(
        "prepended_janus",
        lambda: zc.build([Entry("a")], Layout(prefix=b"dex\n035\0" + b"\0" * 100)),
        CorruptPackageError,
    ),
    Case(
        "prepended_sfx_relative_offsets",
        lambda: zc.build([Entry("a")], Layout(prefix=b"MZ" + b"\0" * 62, relative_offsets=True)),
        CorruptPackageError,
    ),
    Case(
        "prepended_empty_archive", lambda: zc.build([], Layout(prefix=b"junk")), CorruptPackageError
    ),
    Case("second_eocd_in_comment", second_eocd, CorruptPackageError),
    Case("second_central_directory", second_cd, CorruptPackageError),
    Case(
        "eocd_signature_in_comment",
        # zipfile would take the planted record (last signature), we the real one.
        lambda: zc.build(
            [Entry("a", b"x")], Layout(comment=b"PK\x05\x06" + b"\0" * 20 + b"more comment")
        ),
        CorruptPackageError,
    ),
    # -- end record and central directory --
    Case(
        "eocd_count_too_high",
        lambda: zc.build([Entry("a")], Layout(count=2, count_disk=2)),
        CorruptPackageError,
    ),
    Case(
        "eocd_count_too_low",
        lambda: zc.build([Entry("a"), Entry("b")], Layout(count=1, count_disk=1)),
        CorruptPackageError,
    ),
    Case(
        "cd_offset_wrong", lambda: zc.build([Entry("a")], Layout(cd_offset=1)), CorruptPackageError
    ),
    Case(
        "truncated_central_directory",
        lambda: zc.build([Entry("abc")], Layout(cd_size=40)),
        CorruptPackageError,
    ),
    Case(
        "cd_with_stray_bytes",
        lambda: zc.build([Entry("a")], Layout(extra_central=b"\0" * 8)),
        CorruptPackageError,
    ),
    Case(
        "cd_bad_signature",
        lambda: zc.build(
            [Entry("a")],
            Layout(
                extra_central=zc.LOCAL.pack(b"PK\x03\x04", *[0] * 10) + b"\0" * 16,
                count=2,
                count_disk=2,
            ),
        ),
        CorruptPackageError,
    ),
    Case("multi_disk", lambda: zc.build([Entry("a")], Layout(disk=1)), CorruptPackageError),
    Case(
        "multi_disk_count",
        lambda: zc.build([Entry("a"), Entry("b")], Layout(count_disk=1)),
        CorruptPackageError,
    ),
    Case("entry_on_other_disk", lambda: zc.build([Entry("a", disk_start=1)]), CorruptPackageError),
    # -- ZIP64 --
    Case(
        "zip64_locator_outside_file",
        lambda: zc.build([Entry("a")], Layout(zip64=Zip64(locator_offset=1 << 40))),
        CorruptPackageError,
    ),
    Case(
        "zip64_locator_wrong_place",
        lambda: zc.build([Entry("a")], Layout(zip64=Zip64(locator_offset=0))),
        CorruptPackageError,
    ),
    Case(
        "zip64_bad_signature",
        lambda: zc.build([Entry("a")], Layout(zip64=Zip64(signature=b"PK\x06\x05"))),
        CorruptPackageError,
    ),
    Case(
        "zip64_record_size_wrong",
        lambda: zc.build([Entry("a")], Layout(zip64=Zip64(record_size=100))),
        CorruptPackageError,
    ),
    Case(
        "zip64_count_mismatch",
        lambda: zc.build([Entry("a")], Layout(zip64=Zip64(small_count=2))),
        CorruptPackageError,
    ),
    Case(
        "zip64_count_wrong",
        lambda: zc.build([Entry("a")], Layout(zip64=Zip64(count=2))),
        CorruptPackageError,
    ),
    Case(
        "zip64_cd_offset_mismatch",
        lambda: zc.build([Entry("a")], Layout(zip64=Zip64(small_cd_offset=7))),
        CorruptPackageError,
    ),
    Case(
        "zip64_extensible_data",
        lambda: zc.build([Entry("a")], Layout(zip64=Zip64(extensible=b"\0" * 8))),
        CorruptPackageError,
    ),
    Case(
        "zip64_multi_disk",
        lambda: zc.build([Entry("a")], Layout(zip64=Zip64(locator_disks=2))),
        CorruptPackageError,
    ),
    Case(
        "zip64_extra_too_short",
        lambda: zc.build([zip64_entry(central_extra=zc.extra_field(1, b"\0" * 12))]),
        CorruptPackageError,
    ),
    Case(
        "zip64_sentinel_without_extra",
        lambda: zc.build([zip64_entry(central_extra=b"")]),
        CorruptPackageError,
    ),
    Case(
        "zip64_extra_wrong_size",
        lambda: zc.build([zip64_entry(central_extra=zc.zip64_extra(6, 6))]),
        CorruptPackageError,
    ),
    Case(
        "extra_field_truncated",
        lambda: zc.build([Entry("a", central_extra=b"\x01\x00\x10\x00abc")]),
        CorruptPackageError,
    ),
    Case(
        "extra_field_duplicated",
        lambda: zc.build([Entry("a", local_extra=zc.extra_field(0xCAFE, b"") * 2)]),
        CorruptPackageError,
    ),
    # -- local header vs central record --
    Case(
        "local_bad_signature",
        lambda: zc.build([Entry("a", local_signature=b"PK\x01\x02")]),
        CorruptPackageError,
    ),
    Case(
        "local_central_name_mismatch",
        lambda: zc.build([Entry("a.js", local_name=b"b.js")]),
        CorruptPackageError,
    ),
    Case(
        "local_method_mismatch",
        lambda: zc.build([Entry("a", b"hello", local_method=8)]),
        CorruptPackageError,
    ),
    Case(
        "local_flags_mismatch",
        lambda: zc.build([Entry("a", local_flags=0x0800)]),
        CorruptPackageError,
    ),
    Case(
        "local_crc_mismatch",
        lambda: zc.build([Entry("a", b"hello", local_crc=1)]),
        CorruptPackageError,
    ),
    Case(
        "local_size_mismatch",
        lambda: zc.build([Entry("a", b"hello", local_size=4)]),
        CorruptPackageError,
    ),
    # -- layout --
    Case("overlapping_entries", overlapping, CorruptPackageError),
    Case("header_inside_other_data", overlapping_data, CorruptPackageError),
    Case(
        "gap_between_entries",
        lambda: zc.build([Entry("a", after=b"\0" * 5), Entry("b")]),
        CorruptPackageError,
    ),
    Case(
        "gap_before_central_directory",
        lambda: zc.build([Entry("a")], Layout(before_cd=b"\0" * 3)),
        CorruptPackageError,
    ),
    Case(
        "descriptor_without_flag",
        lambda: zc.build([Entry("a", b"hello", descriptor=zc.descriptor(CRC_HELLO, 5, 5))]),
        CorruptPackageError,
    ),
    Case("descriptor_missing", lambda: zc.build([dd_entry(b"")]), CorruptPackageError),
    Case(
        "descriptor_mismatch",
        lambda: zc.build([dd_entry(zc.descriptor(CRC_HELLO ^ 1, 5, 5))]),
        CorruptPackageError,
    ),
    Case(
        "descriptor_bad_signature",
        lambda: zc.build(
            [dd_entry(b"PK\x07\x09" + zc.descriptor(CRC_HELLO, 5, 5, signature=False))]
        ),
        CorruptPackageError,
    ),
    Case(
        "descriptor_odd_length",
        lambda: zc.build([dd_entry(zc.descriptor(CRC_HELLO, 5, 5) + b"\0")]),
        CorruptPackageError,
    ),
    Case(
        "descriptor_local_sizes_disagree",
        lambda: zc.build([dd_entry(zc.descriptor(CRC_HELLO, 5, 5), local_size=4)]),
        CorruptPackageError,
    ),
    # -- features refused --
    Case(
        "encrypted_flag", lambda: zc.build([Entry("a", b"hello", flags=0x01)]), CorruptPackageError
    ),
    Case(
        "strong_encryption_flag",
        lambda: zc.build([Entry("a", b"hello", flags=0x40)]),
        CorruptPackageError,
    ),
    Case("aes_method_99", lambda: zc.build([Entry("a", b"hello", method=99)]), CorruptPackageError),
    Case(
        "patched_data_flag",
        lambda: zc.build([Entry("a", b"hello", flags=0x20)]),
        CorruptPackageError,
    ),
    Case(
        "reserved_flag_bit",
        lambda: zc.build([Entry("a", b"hello", flags=0x4000)]),
        CorruptPackageError,
    ),
    Case(
        "version_needed_too_new",
        lambda: zc.build([Entry("a", b"hello", needed=64)]),
        CorruptPackageError,
    ),
    Case(
        "bzip2_method_12", lambda: zc.build([Entry("a", b"hello", method=12)]), CorruptPackageError
    ),
    Case(
        "stored_sizes_differ", lambda: zc.build([Entry("a", b"hello", size=6)]), CorruptPackageError
    ),
    Case("directory_with_size", lambda: zc.build([Entry("d/", b"x")]), CorruptPackageError),
    # -- names --
    Case("dotdot", lambda: zc.simple("../x"), UnsafePathError),
    Case("dotdot_inside", lambda: zc.simple("a/../../x"), UnsafePathError),
    Case("absolute", lambda: zc.simple("/etc/passwd"), UnsafePathError),
    Case("backslash", lambda: zc.simple("a\\b"), UnsafePathError),
    Case("drive_letter", lambda: zc.simple("C:x"), UnsafePathError),
    Case("nul", lambda: zc.simple("a\0b"), UnsafePathError),
    Case("control_char", lambda: zc.simple("a\x1bb"), UnsafePathError),
    Case("c1_control_char", lambda: zc.simple("a\x85b"), UnsafePathError),
    Case("del_char", lambda: zc.simple("a\x7fb"), UnsafePathError),
    Case("dot_segment", lambda: zc.simple("a/./b"), UnsafePathError),
    Case("empty_segment", lambda: zc.simple("a//b"), UnsafePathError),
    Case("empty_name", lambda: zc.simple(""), UnsafePathError),
    Case("invalid_utf8", lambda: zc.build([Entry(b"a\xff.js", flags=0x0800)]), UnsafePathError),
    Case("name_too_long", lambda: zc.simple("a" * 1025), UnsafePathError),
    Case(
        "name_too_long_limit",
        lambda: zc.simple("abcdef"),
        UnsafePathError,
        limits=ZipLimits(max_name_length=5),
    ),
    Case("duplicate_name", lambda: zc.simple("a.js", "b.js", "a.js"), DuplicateEntryError),
    Case("case_collision", lambda: zc.simple("Index.html", "index.html"), UnsafePathError),
    Case(
        "nfc_nfd_collision",
        lambda: zc.simple(
            unicodedata.normalize("NFC", "é.js"), unicodedata.normalize("NFD", "é.js")
        ),
        UnsafePathError,
    ),
    Case("casefold_collision", lambda: zc.simple("STRASSE", "straße"), UnsafePathError),
    Case("dir_case_collision", lambda: zc.simple("a/", "A/"), UnsafePathError),
    Case("file_vs_dir_prefix", lambda: zc.simple("a", "a/b"), UnsafePathError),
    Case("file_vs_dir_entry", lambda: zc.simple("a", "a/"), UnsafePathError),
    Case("file_vs_dir_prefix_case", lambda: zc.simple("A", "a/b"), UnsafePathError),
    # -- Unix file types --
    Case(
        "symlink",
        lambda: zc.build(
            [Entry("link", b"/etc/passwd", made_by=UNIX, external_attr=mode(stat.S_IFLNK, 0o777))]
        ),
        UnsafePathError,
    ),
    Case(
        "char_device",
        lambda: zc.build([Entry("tty", made_by=UNIX, external_attr=mode(stat.S_IFCHR))]),
        UnsafePathError,
    ),
    Case(
        "block_device",
        lambda: zc.build([Entry("sda", made_by=UNIX, external_attr=mode(stat.S_IFBLK))]),
        UnsafePathError,
    ),
    Case(
        "fifo",
        lambda: zc.build([Entry("p", made_by=UNIX, external_attr=mode(stat.S_IFIFO))]),
        UnsafePathError,
    ),
    Case(
        "socket",
        lambda: zc.build([Entry("s", made_by=UNIX, external_attr=mode(stat.S_IFSOCK))]),
        UnsafePathError,
    ),
    Case(
        "dir_mode_on_file_name",
        lambda: zc.build([Entry("d", made_by=UNIX, external_attr=mode(stat.S_IFDIR))]),
        UnsafePathError,
    ),
    # -- limits --
    Case(
        "too_many_entries",
        lambda: zc.simple("a", "b", "c", "d"),
        PackageTooLargeError,
        limits=ZipLimits(max_entries=3),
    ),
    Case(
        "too_many_entries_claimed",
        lambda: zc.build([Entry("a")], Layout(count=10_001, count_disk=10_001)),
        PackageTooLargeError,
    ),
    Case(
        "entry_too_large",
        lambda: zc.simple("a", data=b"x" * 100),
        PackageTooLargeError,
        limits=ZipLimits(max_entry_size=99),
    ),
    Case(
        "entry_over_default_limit",
        lambda: zc.build([Entry("a", method=8, payload=b"\x03\x00", size=(512 << 20) + 1)]),
        PackageTooLargeError,
    ),
    Case(
        "total_too_large",
        lambda: zc.simple("a", "b", data=b"x" * 60),
        PackageTooLargeError,
        limits=ZipLimits(max_total_size=100),
    ),
    Case(
        "zip_bomb_ratio",
        lambda: zc.build([Entry("bomb", b"\0" * (2 << 20), method=8)]),
        PackageTooLargeError,
    ),
    # -- found while reading --
    Case(
        "crc_mismatch",
        lambda: zc.build([Entry("a", b"hello", crc=CRC_HELLO ^ 1)]),
        CorruptPackageError,
        phase="read",
    ),
    Case(
        "crc_mismatch_deflated",
        lambda: zc.build([Entry("a", b"hello" * 9, method=8, crc=1)]),
        CorruptPackageError,
        phase="read",
    ),
    Case("zip_bomb_lying_size", lying_bomb, CorruptPackageError, phase="read"),
    Case(
        "inflates_short",
        lambda: zc.build([Entry("a", b"hello" * 9, method=8, size=46)]),
        CorruptPackageError,
        phase="read",
    ),
    Case(
        "bad_deflate_data",
        lambda: zc.build([Entry("a", b"hello", method=8, payload=b"\xff" * 10)]),
        CorruptPackageError,
        phase="read",
    ),
    Case(
        "truncated_deflate_stream",
        lambda: zc.build(
            [Entry("a", b"hello" * 99, method=8, payload=zc.deflate(b"hello" * 99)[:-3])]
        ),
        CorruptPackageError,
        phase="read",
    ),
    Case(
        "bytes_after_deflate_stream",
        lambda: zc.build([Entry("a", b"hello", method=8, payload=zc.deflate(b"hello") + b"junk")]),
        CorruptPackageError,
        phase="read",
    ),
]


def test_table_is_big_and_named_uniquely() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_archive(case: Case) -> None:
    data = case.make()
    kwargs = {"limits": case.limits} if case.limits else {}
    if case.phase == "open":
        with pytest.raises(KaisecError) as info:
            SafeZipReader(io.BytesIO(data), **kwargs)
    else:
        reader = SafeZipReader(io.BytesIO(data), **kwargs)
        with pytest.raises(KaisecError) as info:
            for entry in reader.entries:
                for _ in reader.iter_chunks(entry, chunk_size=4096):
                    pass
        reader.close()
    assert type(info.value) is case.error, str(info.value)
    assert info.value.code == case.error.code
    assert info.value.__class__.__name__ in repr(info.value)


@pytest.mark.parametrize("case", [c for c in CASES if c.phase == "open"], ids=lambda c: c.id)
def test_hostile_archive_from_a_path(case: Case, tmp_path: Path) -> None:
    # Same answer through the mmap path as through the in-memory one.
    path = tmp_path / "pkg.zip"
    path.write_bytes(case.make())
    with pytest.raises(case.error):
        SafeZipReader(path, limits=case.limits or ZipLimits())


def test_lying_bomb_stops_at_declared_size_plus_one() -> None:
    with SafeZipReader(io.BytesIO(lying_bomb())) as reader:
        entry = reader.entries[0]
        got = 0
        with pytest.raises(CorruptPackageError, match="past its declared size"):
            for chunk in reader.iter_chunks(entry, chunk_size=1 << 20):
                got += len(chunk)
        assert got <= entry.size


def test_read_refuses_over_max_size() -> None:
    with SafeZipReader(io.BytesIO(zc.simple("a", data=b"x" * 100))) as reader:
        with pytest.raises(PackageTooLargeError):
            reader.read(reader.entries[0], max_size=99)
        assert reader.read(reader.entries[0], max_size=100) == b"x" * 100


# --- names --------------------------------------------------------------------

GOOD_NAMES = ["a", "a/b/c.js", "dir/", "é.js", "manifest.webapp", ".well-known/x", "a b", "...a"]
BAD_NAMES = [
    "", "/a", "../a", "a/..", "a/../b", "./a", "a/.", "a//b", "a\\b", "C:a", "a:b", "a\0", "\t",
    "a\x9f", "\udc80", "//", "/",
]  # fmt: skip


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_check_entry_name_accepts(name: str) -> None:
    check_entry_name(name)


@pytest.mark.parametrize("name", BAD_NAMES)
def test_check_entry_name_refuses(name: str) -> None:
    with pytest.raises(UnsafePathError):
        check_entry_name(name)


def test_check_entry_name_length() -> None:
    check_entry_name("a" * 1024)
    with pytest.raises(UnsafePathError):
        check_entry_name("a" * 1025)
    with pytest.raises(UnsafePathError):
        check_entry_name("abc", max_length=2)


def test_cp437_names_are_decoded() -> None:
    data = zc.build([Entry(b"caf\x82.txt", b"x")])
    assert list(read_all(data)) == ["café.txt"]


# --- archives real tools write ------------------------------------------------

CONTENT = {
    "manifest.webapp": b'{"name": "app"}',
    "index.html": b"<!doctype html>" + b"<p>hello</p>" * 500,
    "js/app.js": bytes(range(256)) * 64,
    "js/é.js": b"// unicode name",
    "empty.txt": b"",
}


def zipfile_archive(compression: int, force_zip64: bool = False) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, data in CONTENT.items():
            with zf.open(name, "w", force_zip64=force_zip64) as fh:
                fh.write(data)
        zf.writestr("img/", b"")
    return buf.getvalue()


class Unseekable(io.RawIOBase):
    """A write-only stream without seek: zipfile falls back to data descriptors."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.buf += b
        return len(b)


def streamed_archive(compression: int, force_zip64: bool) -> bytes:
    sink = Unseekable()
    with zipfile.ZipFile(sink, "w", compression=compression) as zf:
        for name, data in CONTENT.items():
            with zf.open(name, "w", force_zip64=force_zip64) as fh:
                fh.write(data)
    return bytes(sink.buf)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: zipfile_archive(zipfile.ZIP_STORED), id="stored"),
        pytest.param(lambda: zipfile_archive(zipfile.ZIP_DEFLATED), id="deflated"),
        pytest.param(
            lambda: zipfile_archive(zipfile.ZIP_DEFLATED, force_zip64=True), id="zip64-deflated"
        ),
        pytest.param(
            lambda: zipfile_archive(zipfile.ZIP_STORED, force_zip64=True), id="zip64-stored"
        ),
        pytest.param(lambda: streamed_archive(zipfile.ZIP_DEFLATED, False), id="descriptor"),
        pytest.param(lambda: streamed_archive(zipfile.ZIP_STORED, False), id="descriptor-stored"),
        pytest.param(lambda: streamed_archive(zipfile.ZIP_DEFLATED, True), id="descriptor-zip64"),
    ],
)
def test_zipfile_archives_read_back(make: Callable[[], bytes]) -> None:
    data = make()
    got = read_all(data)
    expected = dict(CONTENT)
    if "img/" in got:
        expected["img/"] = b""
    assert got == expected
    with SafeZipReader(io.BytesIO(data)) as reader:
        assert [e.name for e in reader.entries] == list(expected)
        for entry in reader.entries:
            assert entry.is_dir == entry.name.endswith("/")
            assert reader.get(entry.name) is entry
        assert reader.get("missing") is None


def test_descriptor_archive_really_has_descriptors() -> None:
    data = streamed_archive(zipfile.ZIP_DEFLATED, False)
    assert zc.SIG_DESCRIPTOR in data
    assert zipfile.ZipFile(io.BytesIO(data)).infolist()[0].flag_bits & 0x08


@pytest.mark.parametrize("signature", [True, False])
@pytest.mark.parametrize("zip64", [True, False])
def test_descriptor_forms(signature: bool, zip64: bool) -> None:
    desc = zc.descriptor(CRC_HELLO, 5, 5, signature=signature, zip64=zip64)
    assert read_all(zc.build([dd_entry(desc), Entry("b", b"x")])) == {"a": b"hello", "b": b"x"}


def test_descriptor_with_real_local_values() -> None:
    entry = Entry("a", b"hello", flags=0x08, descriptor=zc.descriptor(CRC_HELLO, 5, 5))
    assert read_all(zc.build([entry])) == {"a": b"hello"}


def test_crafted_zip64_archive() -> None:
    data = zc.build([zip64_entry(), Entry("b", b"x")], Layout(zip64=Zip64()))
    assert read_all(data) == {"a": b"hello", "b": b"x"}
    # zipfile agrees on what it holds.
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.read("a") == b"hello"


def test_crafted_zip64_with_consistent_small_fields() -> None:
    data = zc.build(
        [Entry("a", b"x")],
        Layout(zip64=Zip64(small_count=1, small_cd_size=U32, small_cd_offset=U32)),
    )
    assert read_all(data) == {"a": b"x"}


def test_zip64_offset_in_extra() -> None:
    entries = [Entry("a", b"x"), Entry("b", b"y", offset=U32)]
    first_len = len(zc.local_header(entries[0])) + 1
    entries[1].central_extra = zc.zip64_extra(first_len)
    assert read_all(zc.build(entries)) == {"a": b"x", "b": b"y"}


def test_empty_archive_is_valid() -> None:
    with SafeZipReader(io.BytesIO(zc.build([]))) as reader:
        assert reader.entries == []
        assert reader.size == 22


def test_archive_comment_allowed() -> None:
    data = zc.build([Entry("a", b"x")], Layout(comment=b"a comment with PK inside"))
    assert read_all(data) == {"a": b"x"}


def test_regular_and_directory_unix_modes_allowed() -> None:
    data = zc.build(
        [
            Entry("d/", made_by=UNIX, external_attr=mode(stat.S_IFDIR, 0o755)),
            Entry("d/f", b"x", made_by=UNIX, external_attr=mode(stat.S_IFREG)),
            Entry("g", b"y", made_by=UNIX, external_attr=0),
            # Not Unix: the high bits mean nothing, a symlink mode is ignored.
            Entry("h", b"z", made_by=0, external_attr=mode(stat.S_IFLNK)),
        ]
    )
    assert read_all(data) == {"d/": b"", "d/f": b"x", "g": b"y", "h": b"z"}


def test_ratio_limit_applies_only_above_one_mib() -> None:
    small = zc.build([Entry("z", b"\0" * (1 << 20), method=8)])
    assert read_all(small) == {"z": b"\0" * (1 << 20)}
    big = zc.build([Entry("z", b"\0" * (2 << 20), method=8)])
    assert read_all(big, ZipLimits(max_ratio=2000)) == {"z": b"\0" * (2 << 20)}


def test_jar_tool_archive(tmp_path: Path) -> None:
    jar = Path("/usr/bin/jar")
    assert jar.exists(), "/usr/bin/jar (JDK) is required for this interop test"
    src = tmp_path / "src"
    for name, data in CONTENT.items():
        path = src / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    for flags in ("cf", "cf0"):
        out = tmp_path / f"app-{flags}.jar"
        subprocess.run([str(jar), flags, str(out), "-C", str(src), "."], check=True)
        got = read_all(out)
        assert "META-INF/MANIFEST.MF" in got
        for name, data in CONTENT.items():
            assert got[name] == data, name


def test_unzip_made_archive_if_available(tmp_path: Path) -> None:
    zip_tool = shutil.which("zip")
    if zip_tool is None:
        pytest.skip("Info-ZIP zip not installed (optional interop)")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_bytes(b"hello" * 100)
    subprocess.run([zip_tool, "-qr", "out.zip", "d"], cwd=tmp_path, check=True)
    assert read_all(tmp_path / "out.zip")["d/a.txt"] == b"hello" * 100


# --- sources, threads, memory ---------------------------------------------------


def test_sources_path_file_bytesio_and_streams(tmp_path: Path) -> None:
    data = zipfile_archive(zipfile.ZIP_DEFLATED)
    path = tmp_path / "a.zip"
    path.write_bytes(data)
    expected = read_all(data)
    assert read_all(path) == expected
    with SafeZipReader(str(path)) as reader:
        assert reader.size == len(data)
    with path.open("rb") as fh:
        fh.seek(10)  # the reader ignores the caller's position
        with SafeZipReader(fh) as reader:
            assert {e.name: reader.read(e, max_size=1 << 20) for e in reader.entries} == expected
        assert not fh.closed  # the caller keeps ownership

    class NoFileno(io.BufferedReader):
        def fileno(self) -> int:
            raise io.UnsupportedOperation("fileno")

    with NoFileno(io.FileIO(path)) as fh, SafeZipReader(fh) as reader:
        assert {e.name: reader.read(e, max_size=1 << 20) for e in reader.entries} == expected

    class Pipe(io.RawIOBase):
        def __init__(self, payload: bytes) -> None:
            self._inner = io.BytesIO(payload)

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def readinto(self, b: bytearray) -> int:  # type: ignore[override]
            return self._inner.readinto(b)

    with SafeZipReader(Pipe(data)) as reader:  # type: ignore[arg-type]
        assert {e.name: reader.read(e, max_size=1 << 20) for e in reader.entries} == expected


def test_misuse_is_value_error() -> None:
    reader = SafeZipReader(io.BytesIO(zc.simple("a")))
    forged = ZipEntry("a", 0, 5, 5, 0, 0, 0, False)
    with pytest.raises(ValueError):
        list(reader.iter_chunks(forged))
    reader.close()
    with pytest.raises(ValueError):
        list(reader.iter_chunks(reader.entries[0]))


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(CorruptPackageError):
        SafeZipReader(tmp_path)


def test_iter_chunks_from_two_threads(tmp_path: Path) -> None:
    blobs = {f"f{i}": os.urandom(300_000) + b"z" * 3_000_000 for i in range(4)}
    path = tmp_path / "t.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in blobs.items():
            zf.writestr(name, data)
    results: dict[str, bytes] = {}
    errors: list[BaseException] = []
    with SafeZipReader(path) as reader:

        def work(names: list[str]) -> None:
            try:
                for name in names:
                    entry = reader.get(name)
                    assert entry is not None
                    results[name] = b"".join(reader.iter_chunks(entry, chunk_size=65536))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [
            threading.Thread(target=work, args=(["f0", "f2"],)),
            threading.Thread(target=work, args=(["f1", "f3"],)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors
    assert results == blobs


def test_chunks_bounded_by_chunk_size() -> None:
    data = zc.build([Entry("z", b"abc" * 100_000, method=8), Entry("s", b"abc" * 1000)])
    with SafeZipReader(io.BytesIO(data)) as reader:
        for entry in reader.entries:
            chunks = list(reader.iter_chunks(entry, chunk_size=1000))
            assert all(0 < len(c) <= 1000 for c in chunks)
            assert b"".join(chunks) == (b"abc" * 100_000 if entry.name == "z" else b"abc" * 1000)


def test_constant_memory_for_64_mib_entry(tmp_path: Path) -> None:
    size = 64 << 20
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = b"kaisec " * (1 << 16)
    payload = bytearray()
    crc = 0
    for _ in range(size // len(block)):
        payload += deflater.compress(block)
        crc = zlib.crc32(block, crc)
    payload += deflater.flush()
    rest = size - (size // len(block)) * len(block)
    assert rest == size % len(block)
    total = (size // len(block)) * len(block)
    path = tmp_path / "big.zip"
    path.write_bytes(
        zc.build([Entry("big", method=8, payload=bytes(payload), size=total, crc=crc)])
    )
    del payload
    limits = ZipLimits(max_ratio=100_000)
    with SafeZipReader(path, limits=limits) as reader:
        entry = reader.entries[0]
        tracemalloc.start()
        try:
            seen = 0
            for chunk in reader.iter_chunks(entry):
                seen += len(chunk)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert seen == total
    assert peak < 16 << 20, peak


def test_errors_carry_the_entry_name() -> None:
    with pytest.raises(UnsafePathError) as info:
        SafeZipReader(io.BytesIO(zc.simple("../x")))
    assert info.value.to_dict()["entry"] == "../x"
    assert info.value.to_dict()["code"] == "UNSAFE_PATH"


def test_u16_sentinel_count_without_zip64_is_literal() -> None:
    # 0xFFFF entries claimed, no ZIP64 record: taken literally, and refused by limit.
    data = zc.build([Entry("a")], Layout(count=U16, count_disk=U16))
    with pytest.raises(PackageTooLargeError):
        SafeZipReader(io.BytesIO(data))


def test_central_directory_size_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    from kaisec._internal import zipsafe

    monkeypatch.setattr(zipsafe, "_MAX_CD_SIZE", 40)
    with pytest.raises(PackageTooLargeError, match="central directory"):
        SafeZipReader(io.BytesIO(zc.simple("a")))


def test_file_truncated_after_open_is_corrupt_not_a_hang(tmp_path: Path) -> None:
    path = tmp_path / "a.zip"
    path.write_bytes(zc.build([Entry("s", b"x" * 100_000), Entry("d", b"y" * 100_000, method=8)]))
    with SafeZipReader(path) as reader:
        os.truncate(path, 1000)
        for entry in reader.entries:
            with pytest.raises(CorruptPackageError):
                for _ in reader.iter_chunks(entry, chunk_size=4096):
                    pass


def test_resident_memory_stays_small_for_a_big_package(tmp_path: Path) -> None:
    # Peak RSS of a fresh process streaming 50 MiB (stored and deflated):
    # nothing may be mapped or buffered whole.
    path = tmp_path / "big.zip"
    stored = tmp_path / "stored.bin"
    stored.write_bytes(os.urandom(1 << 20) * 48)
    text = tmp_path / "text.txt"
    text.write_bytes(os.urandom(1 << 20).hex().encode())  # deflates about 2:1
    write_zip(path, [("stored.bin", stored), ("text.txt", text)])
    script = (
        "import resource, sys, hashlib\n"
        "from kaisec._internal.zipsafe import SafeZipReader\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "with SafeZipReader(sys.argv[1]) as r:\n"
        "    for e in r.entries:\n"
        "        h = hashlib.sha256()\n"
        "        for c in r.iter_chunks(e):\n"
        "            h.update(c)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True
    )
    grown_kib = int(out.stdout.strip())
    assert grown_kib < 32 * 1024, f"RSS grew by {grown_kib} KiB"


def test_chunks_after_close_never_read_another_file(tmp_path: Path) -> None:
    path = tmp_path / "a.zip"
    path.write_bytes(zc.build([Entry("a", b"x" * 10_000)]))
    reader = SafeZipReader(path)
    chunks = reader.iter_chunks(reader.entries[0], chunk_size=100)
    assert next(chunks) == b"x" * 100
    reader.close()
    with (tmp_path / "other").open("wb"):  # may take the freed descriptor number
        with pytest.raises(OSError):
            list(chunks)


def test_empty_deflated_entry_without_a_stream() -> None:
    data = zc.build([Entry("e", b"", method=8, payload=b""), Entry("f", b"", method=8)])
    assert read_all(data) == {"e": b"", "f": b""}
