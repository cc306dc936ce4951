"""Hardened, streaming reader of the ZIP container of a packaged app.

This module owns one question: which entries does an untrusted package file
hold, unambiguously, and what are their bytes. Everything above it (the JAR
signature, the manifest, the daemon serving files) only sees what it vouches
for.

Why hand-written on top of ``struct``: Python's ``zipfile`` (like most
readers) is lenient on purpose. It accepts data prepended to the archive
(Janus, self-extractors), trailing bytes, duplicate names, local headers that
disagree with the central directory and entries that overlap. Each leniency is
a place where two readers (ours and the signer's, or ours and a device's) can
see different contents for the same signed file. No maintained library offers
a strict mode, so this one refuses every such ambiguity.

Invariants once ``SafeZipReader(...)`` returns (all checked up front):

* exactly one end-of-central-directory record (EOCD), at the very end of the
  file; only the comment it declares may follow it;
* local headers and data tile the file from offset 0 to the central directory
  with no gap, no overlap and nothing prepended; the central directory runs
  exactly up to the (ZIP64) EOCD: every byte has one meaning;
* every local header agrees with its central record (name bytes, method,
  flags, CRC-32 and sizes, or a data descriptor that matches);
* no encryption, only stored (0) and deflate (8), stored sizes equal;
* names pass ``check_entry_name``, are unique, do not collide after NFC +
  casefold, and no file name is also a directory of another entry;
* no Unix symlink, device, fifo or socket entries;
* declared counts and sizes within ``ZipLimits``.

Left for reading time (it needs inflating): that the data inflates to exactly
the declared size and CRC-32. ``iter_chunks`` checks both at the end of each
entry and never inflates more than the declared size + 1 byte, in constant
memory. Reads never move a shared file position (``os.pread``), so different
entries may be streamed from several threads at once.

Files are read with ``os.pread`` (not mmap: mapped pages would count as
resident memory, and a file truncated under a mapping raises SIGBUS). Memory
stays bounded by the chunk size whatever the package size. The reader still
assumes nobody rewrites the file while it is open: the installer reads
packages from its private staging directory.
"""

from __future__ import annotations

import io
import os
import re
import stat
import struct
import threading
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, NamedTuple

from kaisec._internal import inflate
from kaisec.errors import (
    CorruptPackageError,
    DuplicateEntryError,
    PackageTooLargeError,
    UnsafePathError,
)

__all__ = ["SafeZipReader", "ZipEntry", "ZipLimits", "check_entry_name"]

# --- record layouts (APPNOTE.TXT 6.3.10, sections 4.3.7 to 4.3.16) ------------

_LOCAL = struct.Struct("<4sHHHHHIIIHH")  # 30 bytes
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")  # 46 bytes
_EOCD = struct.Struct("<4sHHHHIIH")  # 22 bytes
_Z64_LOCATOR = struct.Struct("<4sIQI")  # 20 bytes
_Z64_EOCD = struct.Struct("<4sQHHIIQQQQ")  # 56 bytes
_EXTRA_HEADER = struct.Struct("<HH")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")

_SIG_LOCAL = b"PK\x03\x04"
_SIG_CENTRAL = b"PK\x01\x02"
_SIG_EOCD = b"PK\x05\x06"
_SIG_Z64_LOCATOR = b"PK\x06\x07"
_SIG_Z64_EOCD = b"PK\x06\x06"
_SIG_DESCRIPTOR = b"PK\x07\x08"

_MAX_U16 = 0xFFFF
_MAX_U32 = 0xFFFFFFFF
_MAX_COMMENT = 0xFFFF
_EXTRA_ZIP64 = 0x0001

_FLAG_ENCRYPTED = 0x0001
_FLAG_DESCRIPTOR = 0x0008
_FLAG_STRONG_ENCRYPTION = 0x0040
_FLAG_UTF8 = 0x0800
_FLAG_MASKED_HEADERS = 0x2000  # central directory encryption
_FLAG_DEFLATE_LEVEL = 0x0006  # a hint of the compression level, no effect on reading
# Anything else (patched data, "enhanced deflating", reserved bits) changes
# how the data is meant to be read: refused rather than guessed.
_FLAGS_KNOWN = _FLAG_DEFLATE_LEVEL | _FLAG_DESCRIPTOR | _FLAG_UTF8
# Local and central flags must agree on every bit but the level hint.
_FLAGS_MUST_MATCH = 0xFFFF & ~_FLAG_DEFLATE_LEVEL

METHOD_STORED = 0
METHOD_DEFLATED = 8
_METHOD_AES = 99

_HOST_UNIX = 3
# APPNOTE 6.3 is the newest version of the format; an entry needing more uses
# features this reader does not know (zipfile refuses it as well).
_MAX_VERSION_NEEDED = 63
_RATIO_MIN_SIZE = 1 << 20  # the ratio limit only applies above 1 MiB
_INPUT_CHUNK = 1 << 17  # compressed bytes fed to the inflater per step
# The central directory is read into memory in one piece. 10,000 entries with
# 1,024-byte names take ~11 MB; more means giant extra fields or comments.
_MAX_CD_SIZE = 32 << 20

# Control characters: C0, DEL and C1.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class ZipLimits:
    """Limits on an untrusted package; exceeding one is ``PACKAGE_TOO_LARGE``.

    The name limit is ``UNSAFE_PATH`` instead.
    """

    max_entries: int = 10_000
    max_entry_size: int = 512 * 1024 * 1024  # uncompressed, per entry
    max_total_size: int = 2 * 1024 * 1024 * 1024  # uncompressed, whole package
    max_ratio: int = 200  # uncompressed/compressed, per entry > 1 MiB uncompressed
    max_name_length: int = 1024


@dataclass(frozen=True, slots=True)
class ZipEntry:
    """One entry of a validated archive, as its central directory declares it."""

    name: str  # as stored (UTF-8 if flag bit 11, else cp437 decoded)
    method: int  # 0 stored, 8 deflate (nothing else allowed)
    compressed_size: int
    size: int  # uncompressed
    crc32: int
    header_offset: int  # offset of the local header
    data_offset: int  # offset of the compressed data (after local header)
    is_dir: bool  # name ends with '/' and size == 0


# --- names --------------------------------------------------------------------


def check_entry_name(name: str, *, max_length: int = ZipLimits.max_name_length) -> None:
    """Refuse an entry name that could escape the package or mean two things.

    A directory name keeps its single trailing ``/``.

    Raises:
        UnsafePathError: empty, too long, absolute, ``.``/``..``/empty
            segments, backslash, colon (drive letters, NTFS streams), control
            characters (C0, DEL, C1) or a lone surrogate.
    """
    if not name:
        raise UnsafePathError("unsafe entry name: empty", entry=name)
    if len(name) > max_length:
        raise UnsafePathError(
            f"unsafe entry name: {len(name)} characters, limit {max_length}", entry=name[:64]
        )
    if name.startswith("/"):
        raise UnsafePathError(f"unsafe entry name: absolute path {name!r}", entry=name)
    if "\\" in name:
        raise UnsafePathError(f"unsafe entry name: backslash in {name!r}", entry=name)
    if ":" in name:
        raise UnsafePathError(f"unsafe entry name: colon in {name!r}", entry=name)
    if _CONTROL.search(name):
        raise UnsafePathError(f"unsafe entry name: control character in {name!r}", entry=name)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UnsafePathError(f"unsafe entry name: not valid Unicode {name!r}", entry=name) from exc
    body = name[:-1] if name.endswith("/") else name
    for segment in body.split("/"):
        if segment in ("", ".", ".."):
            raise UnsafePathError(f"unsafe entry name: segment {segment!r} in {name!r}", entry=name)


def _fold(name: str) -> str:
    # Canonical caseless form (NFC, casefold, NFC): what a case-insensitive or
    # normalising file system or URL layer would treat as the same name.
    if name.isascii():
        return name.lower()  # the same for ASCII, and much faster
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def check_name_set(names: Iterable[str]) -> None:
    """Refuse a set of (individually safe) names that is ambiguous as a tree.

    Raises:
        DuplicateEntryError: the same exact name twice.
        UnsafePathError: two names equal after NFC + casefold, or a file name
            that is also a directory of another entry (``a`` and ``a/b``).
    """
    seen: set[str] = set()
    folded: dict[str, str] = {}
    for name in names:
        if name in seen:
            raise DuplicateEntryError(f"duplicate entry: {name!r}", entry=name)
        seen.add(name)
        key = _fold(name)
        other = folded.get(key)
        if other is not None:
            raise UnsafePathError(
                f"unsafe entry name: {name!r} collides with {other!r} after Unicode "
                f"normalisation and case folding",
                entry=name,
            )
        folded[key] = name
    # A file F is also a directory iff another key is F itself as a directory
    # entry (F/) or starts with F/. With '/' mapped to NUL (never in a checked
    # name, NUL sorts first) such a key sorts right next to F: O(n log n), no
    # prefix sets (deep names would make those quadratic).
    tree = sorted(
        (key.rstrip("/").replace("/", "\0"), not key.endswith("/"), name)
        for key, name in folded.items()
    )
    for i, (key, is_file, name) in enumerate(tree):
        if not is_file:
            continue
        clash = (i > 0 and tree[i - 1][0] == key) or (
            i + 1 < len(tree) and tree[i + 1][0].startswith(key + "\0")
        )
        if clash:
            raise UnsafePathError(
                f"unsafe entry name: {name!r} is both a file and a directory", entry=name
            )


# --- byte sources -------------------------------------------------------------


class _Source:
    """Positional reads of the package bytes; no shared file position.

    ``read`` may be called from several threads at once. It returns fewer
    bytes than asked only at the end of the file.
    """

    size: int

    def read(self, offset: int, length: int) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _BufferSource(_Source):
    def __init__(self, buf: bytes) -> None:
        self._buf = buf
        self.size = len(buf)

    def read(self, offset: int, length: int) -> bytes:
        return self._buf[offset : offset + length]


class _PreadSource(_Source):
    # os.pread rather than mmap: mapped pages would count in the process's
    # resident size (a 512 MiB package would look like 512 MiB of memory) and
    # a file truncated under a mapping kills the process with SIGBUS; a short
    # pread is just a corrupt package.
    def __init__(self, fd: int, size: int) -> None:
        self._fd = fd
        self.size = size

    def read(self, offset: int, length: int) -> bytes:
        out = os.pread(self._fd, length, offset)
        if 0 < len(out) < length:  # pread may return less than asked: loop
            parts = [out]
            got = len(out)
            while got < length:
                more = os.pread(self._fd, length - got, offset + got)
                if not more:
                    break
                parts.append(more)
                got += len(more)
            out = b"".join(parts)
        return out

    def close(self) -> None:
        # Forget the number first: a late read must fail (EBADF), never hit a
        # reused descriptor of some other file.
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


class _StreamSource(_Source):
    # Seekable streams without a file descriptor: a lock makes seek+read atomic.
    def __init__(self, stream: BinaryIO, size: int) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self.size = size

    def read(self, offset: int, length: int) -> bytes:
        with self._lock:
            self._stream.seek(offset)
            return self._stream.read(length)


def _open_source(source: str | os.PathLike[str] | BinaryIO) -> _Source:
    if isinstance(source, (str, os.PathLike)):
        # O_NONBLOCK: opening a fifo must not hang; fstat then refuses it.
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(source, flags)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise CorruptPackageError(
                    f"malformed package: {os.fspath(source)!r} is not a regular file"
                )
            if hasattr(os, "pread"):
                return _PreadSource(fd, info.st_size)
            with os.fdopen(os.dup(fd), "rb") as fh:  # no pread (Windows): read it all
                return _BufferSource(fh.read())
        except BaseException:
            os.close(fd)
            raise
    if isinstance(source, io.BytesIO):
        return _BufferSource(source.getvalue())
    try:
        fd = source.fileno()
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        fd = -1
    if fd >= 0 and hasattr(os, "pread"):
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode):
            # Our own descriptor: the caller may close theirs whenever.
            return _PreadSource(os.dup(fd), info.st_size)
    if source.seekable():
        size = source.seek(0, io.SEEK_END)
        return _StreamSource(source, size)
    return _BufferSource(source.read())


# --- the reader ---------------------------------------------------------------


class _Record(NamedTuple):
    """A central directory record while the archive is being validated."""

    name: str
    raw_name: bytes
    flags: int
    method: int
    crc32: int
    compressed_size: int
    size: int
    header_offset: int


def _corrupt(message: str, name: str | None = None) -> CorruptPackageError:
    if name is None:
        return CorruptPackageError(message)
    return CorruptPackageError(message, entry=name)


def _parse_extra(extra: bytes, where: str, name: str) -> dict[int, bytes]:
    fields: dict[int, bytes] = {}
    if not extra:
        return fields
    pos = 0
    while pos < len(extra):
        if pos + 4 > len(extra):
            raise _corrupt(f"malformed {where} extra field: {len(extra) - pos} stray bytes", name)
        header_id, length = _EXTRA_HEADER.unpack_from(extra, pos)
        pos += 4
        if pos + length > len(extra):
            raise _corrupt(
                f"malformed {where} extra field 0x{header_id:04x}: length {length} runs past "
                f"the end",
                name,
            )
        if header_id in fields:
            raise _corrupt(f"malformed {where} extra field: 0x{header_id:04x} twice", name)
        fields[header_id] = extra[pos : pos + length]
        pos += length
    return fields


def _zip64_values(
    fields: dict[int, bytes], wanted: list[tuple[int, int]], where: str, name: str
) -> list[int]:
    # ``wanted``: (value, width) for each field in APPNOTE order; values equal
    # to the 32/16-bit sentinel are read, in order, from the ZIP64 extra field.
    need = [width for value, width in wanted if value == (_MAX_U32 if width == 8 else _MAX_U16)]
    if not need:
        return [value for value, _ in wanted]
    data = fields.get(_EXTRA_ZIP64)
    if data is None:
        raise _corrupt(f"malformed {where} header: ZIP64 sizes without a ZIP64 extra field", name)
    if len(data) < sum(8 if w == 8 else 4 for w in need):
        raise _corrupt(f"malformed {where} ZIP64 extra field: {len(data)} bytes, too short", name)
    out: list[int] = []
    pos = 0
    for value, width in wanted:
        if value == (_MAX_U32 if width == 8 else _MAX_U16):
            if width == 8:
                value = _U64.unpack_from(data, pos)[0]
                pos += 8
            else:
                value = _U32.unpack_from(data, pos)[0]
                pos += 4
        out.append(value)
    return out


class SafeZipReader:
    """A ZIP archive validated as a whole before anything is read from it.

    Args:
        source: a path, or a binary file object (read positionally; the
            caller keeps ownership of a file object and closes it).
        limits: size and count limits.

    Raises:
        CorruptPackageError: CORRUPT_PACKAGE, the structure is broken or ambiguous.
        UnsafePathError: UNSAFE_PATH, an entry name is unsafe or collides.
        DuplicateEntryError: DUPLICATE_ENTRY, the same name twice.
        PackageTooLargeError: PACKAGE_TOO_LARGE, a limit is exceeded.
        OSError: the file cannot be opened or read (not a property of its bytes).
    """

    entries: list[ZipEntry]
    size: int

    def __init__(
        self,
        source: str | os.PathLike[str] | BinaryIO,
        *,
        limits: ZipLimits = ZipLimits(),
    ) -> None:
        self._limits = limits
        self._closed = False
        self.entries = []
        self._by_name: dict[str, ZipEntry] = {}
        self._src: _Source = _open_source(source)
        self.size = self._src.size
        try:
            self._parse()
        except (
            struct.error,
            ValueError,
            IndexError,
            OverflowError,
            UnicodeError,
            MemoryError,
        ) as exc:
            self.close()
            raise CorruptPackageError(f"malformed package: {exc}") from exc
        except BaseException:
            self.close()
            raise

    # -- context manager and lifetime --

    def close(self) -> None:
        """Release the file descriptor; the reader cannot be used afterwards."""
        if not self._closed:
            self._closed = True
            self._src.close()

    def __enter__(self) -> SafeZipReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- lookups --

    def get(self, name: str) -> ZipEntry | None:
        """The entry with exactly this name, or ``None``."""
        return self._by_name.get(name)

    # -- parsing (every structural rule of the module docstring) --

    def _find_eocd(self) -> int:
        # The EOCD must end the file, followed only by the comment it declares.
        # Look at every signature in the last 22 + 65535 bytes: exactly one may
        # parse that way, else two readers could pick two different archives.
        if self.size < _EOCD.size:
            raise _corrupt(f"malformed package: {self.size} bytes is too short for a ZIP")
        start = max(0, self.size - _EOCD.size - _MAX_COMMENT)
        tail = self._src.read(start, self.size - start)
        candidates: list[int] = []
        seen_signature = False
        pos = len(tail) - _EOCD.size
        while pos >= 0:
            pos = tail.rfind(_SIG_EOCD, 0, pos + 4)
            if pos < 0:
                break
            seen_signature = True
            comment_len = _EOCD.unpack_from(tail, pos)[7]
            if pos + _EOCD.size + comment_len == len(tail):
                candidates.append(start + pos)
            pos -= 1
        if not candidates:
            if seen_signature:
                raise _corrupt("malformed package: data after the archive (end record not at end)")
            raise _corrupt("malformed package: not a ZIP archive (no end of central directory)")
        if len(candidates) > 1:
            raise _corrupt(
                f"malformed package: {len(candidates)} end of central directory records "
                f"(a second central directory)"
            )
        # Readers that take the last signature in the file (zipfile does) would
        # pick a fake record planted in the comment, and another archive.
        if tail.find(_SIG_EOCD, candidates[0] - start + 4) >= 0:
            raise _corrupt(
                "malformed package: the archive comment holds an end of central directory "
                "signature (a second end record)"
            )
        return candidates[0]

    def _parse(self) -> None:
        limits = self._limits
        # (1) The end of central directory record, and its ZIP64 twin.
        eocd_pos = self._find_eocd()
        (_, disk, cd_disk, n_disk, count, cd_size, cd_offset, _) = _EOCD.unpack(
            self._src.read(eocd_pos, _EOCD.size)
        )
        cd_end = eocd_pos
        loc_pos = eocd_pos - _Z64_LOCATOR.size
        if loc_pos >= 0 and self._src.read(loc_pos, 4) == _SIG_Z64_LOCATOR:
            _, z64_disk, z64_pos, total_disks = _Z64_LOCATOR.unpack(
                self._src.read(loc_pos, _Z64_LOCATOR.size)
            )
            if z64_disk != 0 or total_disks > 1:
                raise _corrupt("malformed ZIP64 locator: multi-disk archive")
            if z64_pos + _Z64_EOCD.size > loc_pos:
                raise _corrupt(
                    f"malformed ZIP64 locator: record offset {z64_pos} outside the archive"
                )
            (sig, rec_size, _, _, z_disk, z_cd_disk, z_n_disk, z_count, z_cd_size, z_cd_off) = (
                _Z64_EOCD.unpack(self._src.read(z64_pos, _Z64_EOCD.size))
            )
            if sig != _SIG_Z64_EOCD:
                raise _corrupt(f"malformed ZIP64 end record: bad signature at {z64_pos}")
            # No extensible data sector (PKWARE strong encryption only): zipfile
            # and others assume the record sits right before the locator, so
            # anything else would be read differently by them.
            if rec_size != _Z64_EOCD.size - 12 or z64_pos + _Z64_EOCD.size != loc_pos:
                raise _corrupt(
                    f"malformed ZIP64 end record: size {rec_size} at {z64_pos} does not end at "
                    f"the locator ({loc_pos})"
                )
            for small, big, sentinel, what in (
                (disk, z_disk, _MAX_U16, "disk number"),
                (cd_disk, z_cd_disk, _MAX_U16, "directory disk"),
                (n_disk, z_n_disk, _MAX_U16, "entries on disk"),
                (count, z_count, _MAX_U16, "entry count"),
                (cd_size, z_cd_size, _MAX_U32, "directory size"),
                (cd_offset, z_cd_off, _MAX_U32, "directory offset"),
            ):
                if small != sentinel and small != big:
                    raise _corrupt(
                        f"malformed ZIP64 end record: {what} {big} disagrees with {small}"
                    )
            disk, cd_disk, n_disk, count, cd_size, cd_offset = (
                z_disk,
                z_cd_disk,
                z_n_disk,
                z_count,
                z_cd_size,
                z_cd_off,
            )
            cd_end = z64_pos
        if disk != 0 or cd_disk != 0 or n_disk != count:
            raise _corrupt("malformed end record: multi-disk archive")
        if count > limits.max_entries:
            raise PackageTooLargeError(
                f"package too large: {count} entries, limit {limits.max_entries}"
            )
        if cd_offset + cd_size != cd_end:
            raise _corrupt(
                f"malformed central directory: offset {cd_offset} + size {cd_size} does not "
                f"end at the end record ({cd_end})"
            )
        if count * _CENTRAL.size > cd_size:
            raise _corrupt(f"malformed central directory: {count} entries in {cd_size} bytes")

        # (2) The central directory, entry by entry, read in one go.
        if cd_size > _MAX_CD_SIZE:
            raise PackageTooLargeError(
                f"package too large: central directory of {cd_size} bytes, limit {_MAX_CD_SIZE}"
            )
        cd = self._src.read(cd_offset, cd_size)
        if len(cd) != cd_size:
            raise _corrupt(f"malformed central directory: truncated at {cd_offset + len(cd)}")
        pos = 0
        total = 0
        records: list[_Record] = []
        for _ in range(count):
            record, pos = self._parse_central(cd, pos, cd_offset)
            total += record.size
            if total > limits.max_total_size:
                raise PackageTooLargeError(
                    f"package too large: over {limits.max_total_size} bytes uncompressed",
                    entry=record.name,
                )
            records.append(record)
        if pos != cd_size:
            raise _corrupt(
                f"malformed central directory: {cd_size - pos} bytes after the {count} "
                f"declared entries"
            )

        # (3) The names as a set: duplicates, caseless collisions, file/dir clashes.
        check_name_set(r.name for r in records)

        # (4) The local headers tile [0, cd_offset) exactly.
        data_offsets = self._check_layout(records, cd_offset)
        self.entries = [
            ZipEntry(
                name=r.name,
                method=r.method,
                compressed_size=r.compressed_size,
                size=r.size,
                crc32=r.crc32,
                header_offset=r.header_offset,
                data_offset=data_offset,
                is_dir=r.name.endswith("/"),
            )
            for r, data_offset in zip(records, data_offsets, strict=True)
        ]
        self._by_name = {e.name: e for e in self.entries}

    def _parse_central(self, cd: bytes, pos: int, cd_offset: int) -> tuple[_Record, int]:
        # ``pos`` is relative to the central directory ``cd``; messages give
        # file offsets (``cd_offset + pos``).
        limits = self._limits
        if pos + _CENTRAL.size > len(cd):
            raise _corrupt(f"malformed central directory: truncated at {cd_offset + pos}")
        (
            sig,
            made_by,
            needed,
            flags,
            method,
            _time,
            _date,
            crc,
            csize,
            usize,
            name_len,
            extra_len,
            comment_len,
            disk_start,
            _int_attr,
            ext_attr,
            offset,
        ) = _CENTRAL.unpack_from(cd, pos)
        if sig != _SIG_CENTRAL:
            raise _corrupt(f"malformed central directory: bad signature at {cd_offset + pos}")
        name_start = pos + _CENTRAL.size
        extra_start = name_start + name_len
        end = extra_start + extra_len + comment_len
        if end > len(cd):
            raise _corrupt(
                f"malformed central directory: record at {cd_offset + pos} runs past its end"
            )
        raw_name = cd[name_start:extra_start]
        if name_len > limits.max_name_length:
            raise UnsafePathError(
                f"unsafe entry name: {name_len} bytes, limit {limits.max_name_length}",
                entry=raw_name[:64].decode("utf-8", "replace"),
            )
        if flags & _FLAG_UTF8:
            try:
                name = raw_name.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UnsafePathError(
                    f"unsafe entry name: invalid UTF-8 {raw_name!r}",
                    entry=raw_name.decode("utf-8", "replace"),
                ) from exc
        else:
            name = raw_name.decode("cp437")
        fields = _parse_extra(cd[extra_start : extra_start + extra_len], "central", name)
        if _MAX_U32 in (usize, csize, offset) or disk_start == _MAX_U16:
            usize, csize, offset, disk_start = _zip64_values(
                fields, [(usize, 8), (csize, 8), (offset, 8), (disk_start, 4)], "central", name
            )

        if flags & (_FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION | _FLAG_MASKED_HEADERS) or (
            method == _METHOD_AES
        ):
            raise _corrupt(
                f"malformed entry: {name!r} is encrypted (flags 0x{flags:04x}, method {method})",
                name,
            )
        if flags & ~_FLAGS_KNOWN:
            raise _corrupt(
                f"malformed entry: {name!r} uses unsupported flag bits "
                f"0x{flags & ~_FLAGS_KNOWN:04x}",
                name,
            )
        if needed > _MAX_VERSION_NEEDED:
            raise _corrupt(
                f"malformed entry: {name!r} needs ZIP version {needed // 10}.{needed % 10}, "
                f"over {_MAX_VERSION_NEEDED // 10}.{_MAX_VERSION_NEEDED % 10}",
                name,
            )
        if method not in (METHOD_STORED, METHOD_DEFLATED):
            raise _corrupt(f"malformed entry: compression method {method} in {name!r}", name)
        if disk_start != 0:
            raise _corrupt(f"malformed entry: {name!r} starts on disk {disk_start}", name)
        check_entry_name(name, max_length=limits.max_name_length)
        if made_by >> 8 == _HOST_UNIX:
            mode = ext_attr >> 16
            kind = stat.S_IFMT(mode)
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise UnsafePathError(
                    f"unsafe entry: {name!r} has Unix file type 0o{kind:o} (not a regular file)",
                    entry=name,
                )
            if kind == stat.S_IFDIR and not name.endswith("/"):
                raise UnsafePathError(
                    f"unsafe entry: {name!r} has a directory mode but a file name", entry=name
                )
        is_dir = name.endswith("/")
        if is_dir and usize != 0:
            raise _corrupt(f"malformed directory entry: {name!r} has size {usize}", name)
        if method == METHOD_STORED and csize != usize:
            raise _corrupt(
                f"malformed entry: stored {name!r} has compressed size {csize} != size {usize}",
                name,
            )
        if usize > limits.max_entry_size:
            raise PackageTooLargeError(
                f"entry too large: {name!r} is {usize} bytes, limit {limits.max_entry_size}",
                entry=name,
            )
        if usize > _RATIO_MIN_SIZE and usize > limits.max_ratio * csize:
            raise PackageTooLargeError(
                f"entry too large: {name!r} compression ratio {usize}/{csize} over "
                f"{limits.max_ratio}",
                entry=name,
            )
        return _Record(name, raw_name, flags, method, crc, csize, usize, offset), end

    def _check_layout(self, records: list[_Record], cd_offset: int) -> list[int]:
        # Sorted by offset, each entry must start exactly where the previous one
        # (header, data, descriptor) ended: the first at 0, the last ending at the
        # central directory. _check_local refuses gaps and overlaps.
        if not records:
            if cd_offset != 0:
                raise _corrupt(f"malformed package: {cd_offset} bytes before the central directory")
            return []
        order = sorted(range(len(records)), key=lambda i: records[i].header_offset)
        first = records[order[0]]
        if first.header_offset != 0:
            raise _corrupt(
                f"malformed package: {first.header_offset} bytes before the first entry "
                f"(prepended data)",
                first.name,
            )
        data_offsets = [0] * len(records)
        for rank, index in enumerate(order):
            last = rank + 1 == len(order)
            next_start = cd_offset if last else records[order[rank + 1]].header_offset
            data_offsets[index] = self._check_local(records[index], next_start)
        return data_offsets

    def _check_local(self, entry: _Record, next_start: int) -> int:
        name = entry.name
        raw_name, cflags = entry.raw_name, entry.flags
        hdr = entry.header_offset
        if hdr + _LOCAL.size > next_start:
            raise _corrupt(
                f"malformed layout: local header of {name!r} at {hdr} overlaps the next record "
                f"at {next_start}",
                name,
            )
        # One read for header, name and a typical extra field.
        head = self._src.read(hdr, min(_LOCAL.size + len(raw_name) + 64, next_start - hdr))
        (sig, _needed, flags, method, _time, _date, crc, csize, usize, name_len, extra_len) = (
            _LOCAL.unpack_from(head)
        )
        if sig != _SIG_LOCAL:
            raise _corrupt(f"malformed local header: bad signature for {name!r} at {hdr}", name)
        data_offset: int = hdr + _LOCAL.size + name_len + extra_len
        if data_offset > next_start:
            raise _corrupt(f"malformed local header: {name!r} runs into the next record", name)
        local_name = head[_LOCAL.size : _LOCAL.size + name_len]
        if local_name != raw_name:
            raise _corrupt(
                f"malformed local header: name {local_name!r} != central {raw_name!r}", name
            )
        if method != entry.method:
            raise _corrupt(
                f"malformed local header: {name!r} method {method} != central {entry.method}",
                name,
            )
        if (flags ^ cflags) & _FLAGS_MUST_MATCH:
            raise _corrupt(
                f"malformed local header: {name!r} flags 0x{flags:04x} != central 0x{cflags:04x}",
                name,
            )
        extra_start = _LOCAL.size + name_len
        if extra_start + extra_len <= len(head):
            extra = head[extra_start : extra_start + extra_len]
        else:
            extra = self._src.read(hdr + extra_start, extra_len)
        fields = _parse_extra(extra, "local", name)
        if _MAX_U32 in (usize, csize):
            usize, csize = _zip64_values(fields, [(usize, 8), (csize, 8)], "local", name)
        declared = (crc, csize, usize)
        central = (entry.crc32, entry.compressed_size, entry.size)
        if flags & _FLAG_DESCRIPTOR:
            # Streaming writers leave CRC and sizes zero in the local header;
            # the descriptor after the data carries them.
            if any(v not in (0, c) for v, c in zip(declared, central, strict=True)):
                raise _corrupt(
                    f"malformed local header: {name!r} CRC/sizes {declared} != central {central}",
                    name,
                )
        elif declared != central:
            raise _corrupt(
                f"malformed local header: {name!r} CRC/sizes {declared} != central {central}", name
            )
        data_end = data_offset + entry.compressed_size
        if data_end > next_start:
            raise _corrupt(
                f"malformed layout: data of {name!r} overlaps the next record at {next_start}",
                name,
            )
        gap = next_start - data_end
        if flags & _FLAG_DESCRIPTOR:
            self._check_descriptor(entry, data_end, gap)
        elif gap:
            raise _corrupt(f"malformed layout: {gap} unaccounted bytes after {name!r}", name)
        return data_offset

    def _check_descriptor(self, entry: _Record, pos: int, length: int) -> None:
        # The descriptor's form follows from its length, which the next record's
        # declared offset fixes: no guessing.
        name = entry.name
        raw = self._src.read(pos, length)
        if length in (16, 24):
            if raw[:4] != _SIG_DESCRIPTOR:
                raise _corrupt(f"malformed data descriptor: {name!r} bad signature", name)
            raw = raw[4:]
        elif length not in (12, 20):
            raise _corrupt(
                f"malformed layout: {length} bytes after {name!r} is not a data descriptor", name
            )
        values = struct.unpack("<III" if len(raw) == 12 else "<IQQ", raw)
        central = (entry.crc32, entry.compressed_size, entry.size)
        if values != central:
            raise _corrupt(
                f"malformed data descriptor: {name!r} CRC/sizes {values} != central {central}",
                name,
            )

    # -- reading --

    def iter_chunks(self, entry: ZipEntry, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Stream an entry's uncompressed bytes in chunks of at most ``chunk_size``.

        Constant memory whatever the entry size; never inflates more than the
        declared size + 1 byte. The size and CRC-32 are checked once the data
        ends, so a consumer must read to the end before trusting any chunk.

        Raises:
            CorruptPackageError: CORRUPT_PACKAGE, bad deflate data, data that
                inflates past or short of the declared size, or a CRC mismatch.
            ValueError: the entry is not from this reader, or it is closed.
        """
        if self._closed:
            raise ValueError("SafeZipReader is closed")
        known = self._by_name.get(entry.name)
        if known is not entry and known != entry:
            raise ValueError(f"entry {entry.name!r} is not from this archive")
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        try:
            if entry.method == METHOD_STORED:
                yield from self._iter_stored(entry, chunk_size)
            else:
                yield from self._iter_deflated(entry, chunk_size)
        except inflate.ERRORS as exc:
            raise CorruptPackageError(
                f"malformed deflate data in {entry.name!r}: {exc}", entry=entry.name
            ) from exc

    def _iter_stored(self, entry: ZipEntry, chunk_size: int) -> Iterator[bytes]:
        crc = 0
        pos = entry.data_offset
        end = pos + entry.size
        read = self._src.read
        while pos < end:
            chunk = read(pos, min(chunk_size, end - pos))
            if not chunk:
                raise _corrupt(f"malformed entry data: {entry.name!r} truncated", entry.name)
            pos += len(chunk)
            crc = inflate.crc32(chunk, crc)
            yield chunk
        self._check_crc(entry, crc)

    def _iter_deflated(self, entry: ZipEntry, chunk_size: int) -> Iterator[bytes]:
        name = entry.name
        if entry.compressed_size == 0 and entry.size == 0:
            # Some writers store an empty file as "deflated" with no stream at all.
            self._check_crc(entry, 0)
            return
        inflater = inflate.raw_decompressobj()
        read = self._src.read
        pos = entry.data_offset
        end = pos + entry.compressed_size
        budget = entry.size + 1  # one byte past the declared size proves a liar
        produced = 0
        crc = 0
        pending = b""
        while True:
            if not pending and pos < end:
                pending = read(pos, min(_INPUT_CHUNK, end - pos))
                if not pending:
                    raise _corrupt(f"malformed entry data: {name!r} truncated", name)
                pos += len(pending)
            out = inflater.decompress(pending, min(chunk_size, budget - produced))
            pending = inflater.unconsumed_tail
            if out:
                produced += len(out)
                if produced > entry.size:
                    raise _corrupt(
                        f"malformed entry data: {name!r} inflates past its declared size "
                        f"{entry.size}",
                        name,
                    )
                crc = inflate.crc32(out, crc)
                yield out
            if inflater.eof:
                break
            if not out and not pending and pos >= end:
                raise _corrupt(f"malformed entry data: {name!r} deflate stream is truncated", name)
        if pending or inflater.unused_data or pos < end:
            raise _corrupt(
                f"malformed entry data: {name!r} has bytes after the end of its deflate stream",
                name,
            )
        if produced != entry.size:
            raise _corrupt(
                f"malformed entry data: {name!r} inflates to {produced} bytes, declared "
                f"{entry.size}",
                name,
            )
        self._check_crc(entry, crc)

    @staticmethod
    def _check_crc(entry: ZipEntry, crc: int) -> None:
        if crc != entry.crc32:
            raise _corrupt(
                f"malformed entry data: {entry.name!r} CRC-32 0x{crc:08x} != declared "
                f"0x{entry.crc32:08x}",
                entry.name,
            )

    def read(self, entry: ZipEntry, *, max_size: int) -> bytes:
        """The whole uncompressed entry, for small files (manifest, signature files).

        Raises:
            PackageTooLargeError: PACKAGE_TOO_LARGE, the entry is over ``max_size``.
            CorruptPackageError: CORRUPT_PACKAGE, as ``iter_chunks``.
        """
        if entry.size > max_size:
            raise PackageTooLargeError(
                f"entry too large: {entry.name!r} is {entry.size} bytes, limit {max_size}",
                entry=entry.name,
            )
        return b"".join(self.iter_chunks(entry))
