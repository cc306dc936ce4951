"""Deterministic ZIP writer for ``kaisec pack`` and the signer.

This module owns the bytes of every package kaisec writes. Invariants:

* the same ``(name, content)`` list gives the same archive bytes, whatever
  the files' mtimes, owners, modes or the umask: entries in the order given
  (callers sort), DOS time fixed at ``FIXED_DATE_TIME``, Unix mode 0o644 for
  files (0o755 for explicit directory entries), "made by" Unix 2.0, no extra
  fields (ZIP64 ones only when a size or offset needs them), no comments;
* deflate at level 9, or stored when ``compress=False`` or when deflate does
  not make the entry smaller; the UTF-8 flag is set exactly for non-ASCII names;
* every archive written here passes ``SafeZipReader``: names are checked with
  ``check_entry_name`` and the name set with ``check_name_set`` before a
  byte is written.

Same bytes across machines needs the same zlib: deflate output may differ
between zlib builds (zlib-ng, for one). The signature covers the bytes
actually written, so that never breaks a signature, only byte-for-byte
reproducibility across machines.

Why hand-written: ``zipfile`` stamps mtimes and umask-dependent modes unless
each ``ZipInfo`` is built by hand, adds ZIP64 extras on its own schedule and
cannot fall back to stored per entry; writing the records ourselves keeps
every byte of the output specified, and in step with what ``zipsafe`` accepts.
"""

from __future__ import annotations

import os
import secrets
import stat
import struct
import tempfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from kaisec._internal.zipsafe import check_entry_name, check_name_set
from kaisec.errors import UnsafePathError

__all__ = ["FIXED_DATE_TIME", "collect_app_files", "write_zip"]

FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)

_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
_EOCD = struct.Struct("<4sHHHHIIH")
_Z64_LOCATOR = struct.Struct("<4sIQI")
_Z64_EOCD = struct.Struct("<4sQHHIIQQQQ")

_DOS_TIME = (FIXED_DATE_TIME[3] << 11) | (FIXED_DATE_TIME[4] << 5) | (FIXED_DATE_TIME[5] // 2)
_DOS_DATE = ((FIXED_DATE_TIME[0] - 1980) << 9) | (FIXED_DATE_TIME[1] << 5) | FIXED_DATE_TIME[2]
_MADE_BY = (3 << 8) | 20  # Unix, APPNOTE 2.0
_NEEDED = 20
_NEEDED_ZIP64 = 45
_FLAG_UTF8 = 0x0800
_FILE_ATTR = (stat.S_IFREG | 0o644) << 16
_DIR_ATTR = ((stat.S_IFDIR | 0o755) << 16) | 0x10  # plus the MS-DOS directory bit
_STORED = 0
_DEFLATED = 8

_SENTINEL = 0xFFFFFFFF  # "see the ZIP64 extra field"
# When ZIP64 records start; module-level so tests can lower them.
_ZIP64_LIMIT = 0xFFFFFFFF
_ZIP64_COUNT_LIMIT = 0xFFFF

_CHUNK = 1 << 20
_SPOOL_MAX = 16 << 20  # compressed data kept in memory up to this, then a temp file
_VCS_DIRS = frozenset({".git", ".hg", ".svn"})


@dataclass
class _Written:
    name: bytes
    flags: int
    method: int
    crc: int
    csize: int
    size: int
    offset: int
    attr: int


def _open_regular(path: Path) -> BinaryIO:
    # O_NOFOLLOW + fstat: a file swapped for a symlink, fifo or device after
    # collect_app_files looked at it is refused, not followed.
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if path.is_symlink():
            raise UnsafePathError(
                f"unsafe file: {str(path)!r} is a symlink", path=str(path)
            ) from exc
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafePathError(f"unsafe file: {str(path)!r} is not a regular file", path=str(path))
    return os.fdopen(fd, "rb")


def _chunks(content: bytes | Path) -> Iterable[bytes]:
    if isinstance(content, bytes):
        yield content
        return
    with _open_regular(content) as fh:
        while chunk := fh.read(_CHUNK):
            yield chunk


def _prepare(content: bytes | Path, compress: bool, spool: IO[bytes]) -> tuple[int, int, int, int]:
    """Deflate ``content`` into ``spool``; returns (method, crc, csize, size)."""
    crc = 0
    size = 0
    csize = 0
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    for chunk in _chunks(content):
        crc = zlib.crc32(chunk, crc)
        size += len(chunk)
        if compress:
            out = deflater.compress(chunk)
            csize += len(out)
            spool.write(out)
    if compress:
        out = deflater.flush()
        csize += len(out)
        spool.write(out)
        if csize < size:
            return _DEFLATED, crc, csize, size
    return _STORED, crc, size, size


def _zip64_extra(values: list[int]) -> bytes:
    if not values:
        return b""
    return struct.pack(f"<HH{len(values)}Q", 0x0001, 8 * len(values), *values)


def _write_entry(
    out: BinaryIO, offset: int, name: str, content: bytes | Path, compress: bool
) -> tuple[_Written, int]:
    """Write one local header and its data; returns the entry and the bytes written."""
    raw_name = name.encode("utf-8")
    flags = _FLAG_UTF8 if not name.isascii() else 0
    is_dir = name.endswith("/")
    if is_dir and not (isinstance(content, bytes) and not content):
        raise ValueError(f"directory entry {name!r} must have empty content")
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_MAX) as spool:
        method, crc, csize, size = _prepare(content, compress and not is_dir, spool)
        big = size >= _ZIP64_LIMIT or csize >= _ZIP64_LIMIT
        extra = _zip64_extra([size, csize]) if big else b""
        out.write(
            _LOCAL.pack(
                b"PK\x03\x04",
                _NEEDED_ZIP64 if big else _NEEDED,
                flags,
                method,
                _DOS_TIME,
                _DOS_DATE,
                crc,
                _SENTINEL if big else csize,
                _SENTINEL if big else size,
                len(raw_name),
                len(extra),
            )
        )
        out.write(raw_name)
        out.write(extra)
        if method == _DEFLATED:
            spool.seek(0)
            while chunk := spool.read(_CHUNK):
                out.write(chunk)
        else:
            # Stored: read the content again, and make sure it did not change.
            check = 0
            length = 0
            for chunk in _chunks(content):
                check = zlib.crc32(chunk, check)
                length += len(chunk)
                out.write(chunk)
            if (check, length) != (crc, size):
                raise OSError(f"{str(content)!r} changed while it was being packed")
    entry = _Written(
        raw_name, flags, method, crc, csize, size, offset, _DIR_ATTR if is_dir else _FILE_ATTR
    )
    return entry, _LOCAL.size + len(raw_name) + len(extra) + csize


def _central(entry: _Written) -> bytes:
    z64: list[int] = []
    size, csize, offset = entry.size, entry.csize, entry.offset
    if size >= _ZIP64_LIMIT:
        z64.append(size)
        size = _SENTINEL
    if csize >= _ZIP64_LIMIT:
        z64.append(csize)
        csize = _SENTINEL
    if offset >= _ZIP64_LIMIT:
        z64.append(offset)
        offset = _SENTINEL
    extra = _zip64_extra(z64)
    header = _CENTRAL.pack(
        b"PK\x01\x02",
        _MADE_BY,
        _NEEDED_ZIP64 if z64 else _NEEDED,
        entry.flags,
        entry.method,
        _DOS_TIME,
        _DOS_DATE,
        entry.crc,
        csize,
        size,
        len(entry.name),
        len(extra),
        0,
        0,
        0,
        entry.attr,
        offset,
    )
    return header + entry.name + extra


def _write_all(out: BinaryIO, files: Iterable[tuple[str, bytes | Path]], compress: bool) -> None:
    items = list(files)
    for name, _ in items:
        check_entry_name(name)
    check_name_set(name for name, _ in items)
    offset = 0
    written: list[_Written] = []
    for name, content in items:
        entry, length = _write_entry(out, offset, name, content, compress)
        offset += length
        written.append(entry)
    cd_offset = offset
    cd = b"".join(_central(e) for e in written)
    out.write(cd)
    cd_end = cd_offset + len(cd)
    count = len(written)
    zip64 = count >= _ZIP64_COUNT_LIMIT or cd_offset >= _ZIP64_LIMIT or len(cd) >= _ZIP64_LIMIT
    if zip64:
        record_size = _Z64_EOCD.size - 12  # APPNOTE 4.3.14.1: size of the rest of the record
        out.write(
            _Z64_EOCD.pack(
                b"PK\x06\x06",
                record_size,
                _MADE_BY,
                _NEEDED_ZIP64,
                0,
                0,
                count,
                count,
                len(cd),
                cd_offset,
            )
        )
        out.write(_Z64_LOCATOR.pack(b"PK\x06\x07", 0, cd_end, 1))
        out.write(_EOCD.pack(b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0))
    else:
        out.write(_EOCD.pack(b"PK\x05\x06", 0, 0, count, count, len(cd), cd_offset, 0))


def write_zip(
    out: str | os.PathLike[str] | BinaryIO,
    files: Iterable[tuple[str, bytes | Path]],
    *,
    compress: bool = True,
) -> None:
    """Write a deterministic ZIP of ``files`` (entry name, bytes or a file path).

    A path destination is written to a temporary file next to it and renamed
    into place, so a failure never leaves half an archive under that name. A
    file object is written from its current position, sequentially (no seek).

    Raises:
        UnsafePathError: UNSAFE_PATH, a name is unsafe, two names collide, or a
            source path is no longer a regular file.
        DuplicateEntryError: DUPLICATE_ENTRY, the same name twice.
        OSError: a source file cannot be read or changed while being packed.
    """
    if not isinstance(out, (str, os.PathLike)):
        _write_all(out, files, compress)
        return
    target = Path(out)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    # O_EXCL: never write through someone else's file or symlink; mode 0o666
    # minus the umask, as for any file the user creates.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            _write_all(fh, files, compress)
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def collect_app_files(src_dir: Path) -> list[tuple[str, Path]]:
    """Every regular file under ``src_dir``, as (POSIX relative name, path), sorted by name.

    Version-control folders named ``.git``, ``.hg`` or ``.svn`` are skipped at
    any depth; nothing else is skipped silently. Empty folders are not
    recorded (archives hold files only).

    Raises:
        UnsafePathError: UNSAFE_PATH, a symlink, device, fifo or socket, a
            name ``check_entry_name`` refuses, or names that collide.
        NotADirectoryError: ``src_dir`` is not a folder.
    """
    root = Path(src_dir)
    if not root.is_dir():
        raise NotADirectoryError(f"not a folder: {str(root)!r}")
    found: list[tuple[str, Path]] = []
    stack: list[tuple[str, Path]] = [("", root)]
    while stack:
        prefix, folder = stack.pop()
        with os.scandir(folder) as it:
            children = list(it)
        for child in children:
            rel = prefix + child.name
            path = folder / child.name
            if child.is_symlink():
                raise UnsafePathError(f"unsafe file: {rel!r} is a symlink", entry=rel)
            if child.is_dir(follow_symlinks=False):
                if child.name not in _VCS_DIRS:
                    stack.append((rel + "/", path))
                continue
            if not child.is_file(follow_symlinks=False):
                raise UnsafePathError(
                    f"unsafe file: {rel!r} is not a regular file (device, fifo or socket)",
                    entry=rel,
                )
            check_entry_name(rel)
            found.append((rel, path))
    found.sort(key=lambda item: item[0])
    check_name_set(name for name, _ in found)
    return found
