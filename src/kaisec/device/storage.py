"""Device storage: files kept per (owner, area).

State: file contents are blob files ``<home>/storage/blobs/<32 hex>`` (random
names, mode 0600); the ``files`` table of ``device.db`` maps (owner, area,
name) to its blob, size, MIME type, SHA-256 and creation time.

Invariants:
- Isolation: every operation takes the ``owner`` and only ever reads or
  writes rows of that owner, so one app never lists, reads, replaces or
  deletes another's file, even under the same area and name. Nothing handed
  out carries a host path (:class:`FileInfo` has none); names are validated
  (:func:`check_name`) and never reach the file system: blob names are ours.
- Crash safety: ``add`` writes the blob, fsyncs it and its directory, *then*
  commits the row; ``delete`` commits the row's removal, *then* unlinks the
  blob. A crash therefore leaves at most an orphan blob, never a row without
  its data; :meth:`SimStorage.cleanup` removes orphans (a device opening
  while no other device on the home is alive runs it at once).
- Integrity: ``get`` checks size and SHA-256 against the row
  (``DeviceError(reason="CORRUPT")`` otherwise).
- Limits: ``config.max_file_size`` per file, ``config.storage_quota`` bytes
  and ``config.max_items`` files per owner across every area.

Events: ``storage``/``change`` with ``{"area", "name", "reason"}`` (reason
``created`` or ``deleted``), owner: the file's owner. ``remove_owner`` emits
nothing: the app is gone.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import mimetypes
import os
import re
import secrets
import threading
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kaisec.device._db import DeviceDB
from kaisec.device._runtime import EventBus, check_owner, check_text
from kaisec.device.base import AREAS, DeviceConfig, DeviceEvent, FileInfo
from kaisec.errors import DeviceError

__all__ = ["AREAS", "CLEANUP_GRACE", "SimStorage", "check_area", "check_name"]

#: Seconds an unreferenced blob is left alone by default: another process may
#: be between writing it and committing its row.
CLEANUP_GRACE = 60.0

_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,127}\Z", re.ASCII)
_BLOB = re.compile(r"[0-9a-f]{32}\Z", re.ASCII)
_COLS = "area, name, size, mime, sha256, created"
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def check_name(name: object) -> str:
    """``name`` if it is an acceptable file name, else DeviceError(BAD_NAME).

    1..255 characters; no ``/``, ``\\``, NUL or other control character; not
    ``.`` or ``..``.
    """
    text = check_text(name, field="name", reason="BAD_NAME", max_len=255, min_len=1)
    if text in (".", "..") or "/" in text or "\\" in text:
        raise DeviceError(f"name: not a plain file name: {text!r}", reason="BAD_NAME", field="name")
    # check_text refused Cc; also refuse the other "invisible" formats that
    # would let a name pose as another in a file list (bidi overrides...).
    for ch in text:
        if (
            unicodedata.category(ch) in ("Zl", "Zp")
            or 0x202A <= ord(ch) <= 0x202E
            or (0x2066 <= ord(ch) <= 0x2069)
        ):
            raise DeviceError(
                f"name: character U+{ord(ch):04X} not allowed", reason="BAD_NAME", field="name"
            )
    return text


def check_area(area: object) -> str:
    """``area`` if it is one of :data:`AREAS`, else DeviceError(BAD_AREA)."""
    if not isinstance(area, str) or area not in AREAS:
        raise DeviceError(
            f"area: expected one of {', '.join(AREAS)}, got {area!r}", reason="BAD_AREA"
        )
    return area


def _check_mime(mime: object, name: str) -> str:
    if mime is None:
        guessed, _ = mimetypes.guess_type(name, strict=False)
        return guessed or "application/octet-stream"
    if not isinstance(mime, str) or not _MIME.match(mime.lower()):
        raise DeviceError(f"mime: expected type/subtype, got {mime!r}", reason="BAD_MIME")
    return mime.lower()


def _info(r: tuple[Any, ...]) -> FileInfo:
    return FileInfo(area=r[0], name=r[1], size=r[2], mime=r[3], sha256=r[4], created=r[5])


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class SimStorage:
    """Files per (owner, area): blobs on disk, index in SQLite."""

    AREAS: tuple[str, ...] = AREAS

    def __init__(
        self,
        db: DeviceDB,
        bus: EventBus,
        config: DeviceConfig,
        root: Path,
        *,
        clock: Callable[[], float],
    ) -> None:
        self._db = db
        self._bus = bus
        self._config = config
        self._clock = clock
        self._blobs = root / "blobs"
        self._blobs.mkdir(mode=0o700, exist_ok=True)
        # Blobs being written by this process, not yet committed: cleanup keeps off.
        self._pending: set[str] = set()
        self._pending_lock = threading.Lock()

    def add(
        self, area: str, name: str, data: bytes, *, owner: str, mime: str | None = None
    ) -> FileInfo:
        """Store a new file ``name`` in ``owner``'s ``area``.

        Raises:
            DeviceError: ``BAD_AREA``, ``BAD_NAME``, ``BAD_MIME``; ``TOO_LARGE``
                (over ``max_file_size``); ``EXISTS`` (``owner`` already has that
                name in that area); ``QUOTA`` (``owner``'s bytes or files).
            ValueError: ``data`` is not bytes.
        """
        owner = check_owner(owner)
        area = check_area(area)
        name = check_name(name)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ValueError(f"data: expected bytes, got {type(data).__name__}")
        data = bytes(data)
        if len(data) > self._config.max_file_size:
            raise DeviceError(
                f"{area}/{name}: {len(data)} bytes, at most {self._config.max_file_size} allowed",
                reason="TOO_LARGE",
            )
        mime = _check_mime(mime, name)
        # Cheap refusals before any disk write; repeated inside the transaction.
        self._check_room(self._db.read, owner, area, name, len(data))
        info = FileInfo(
            area=area,
            name=name,
            size=len(data),
            mime=mime,
            sha256=hashlib.sha256(data).hexdigest(),
            created=self._clock(),
        )
        blob = secrets.token_hex(16)
        with self._pending_lock:
            self._pending.add(blob)
        committed = False
        try:
            self._write_blob(blob, data)
            with self._db.lock:  # events leave in commit order
                with self._db.transaction() as conn:

                    def read(sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
                        return conn.execute(sql, params).fetchall()

                    self._check_room(read, owner, area, name, len(data))
                    conn.execute(
                        "INSERT INTO files (owner, blob, area, name, size, mime, sha256, created)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            owner,
                            blob,
                            info.area,
                            info.name,
                            info.size,
                            info.mime,
                            info.sha256,
                            info.created,
                        ),
                    )
                committed = True
                self._emit(owner, area, name, "created")
        except BaseException:
            if not committed:  # the row never made it: the blob must not linger
                with contextlib.suppress(OSError):
                    (self._blobs / blob).unlink()
            raise
        finally:
            with self._pending_lock:
                self._pending.discard(blob)
        return info

    def _check_room(
        self,
        read: Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]],
        owner: str,
        area: str,
        name: str,
        size: int,
    ) -> None:
        if read(
            "SELECT 1 FROM files WHERE owner = ? AND area = ? AND name = ?", (owner, area, name)
        ):
            raise DeviceError(f"{area}/{name} already exists", reason="EXISTS")
        count, used = read(
            "SELECT count(*), coalesce(sum(size), 0) FROM files WHERE owner = ?", (owner,)
        )[0]
        if count >= self._config.max_items:
            raise DeviceError(
                f"{count} files stored, at most {self._config.max_items}", reason="QUOTA"
            )
        if used + size > self._config.storage_quota:
            raise DeviceError(
                f"{used} + {size} bytes would pass the quota of {self._config.storage_quota}",
                reason="QUOTA",
            )

    def _write_blob(self, blob: str, data: bytes) -> None:
        path = self._blobs / blob
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW, 0o600)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        _fsync_dir(self._blobs)

    def get(self, area: str, name: str, *, owner: str) -> tuple[FileInfo, bytes]:
        """``owner``'s file ``name`` in ``area``: its info and contents.

        Raises:
            DeviceError: ``BAD_AREA``, ``BAD_NAME``; ``NOT_FOUND`` (``owner`` has
                no such file); ``CORRUPT`` (the blob is missing or altered).
        """
        owner = check_owner(owner)
        area = check_area(area)
        name = check_name(name)
        rows = self._db.read(
            f"SELECT {_COLS}, blob FROM files WHERE owner = ? AND area = ? AND name = ?",
            (owner, area, name),
        )
        if not rows:
            raise DeviceError(f"{area}/{name} not found", reason="NOT_FOUND")
        info, blob = _info(rows[0]), str(rows[0][6])
        try:
            data = self._read_blob(blob, info.size)
        except FileNotFoundError:
            # Deleted between our read of the row and the open: gone, like the row.
            if not self._db.read("SELECT 1 FROM files WHERE blob = ?", (blob,)):
                raise DeviceError(f"{area}/{name} not found", reason="NOT_FOUND") from None
            raise DeviceError(f"{area}/{name}: contents missing", reason="CORRUPT") from None
        if len(data) != info.size or hashlib.sha256(data).hexdigest() != info.sha256:
            raise DeviceError(
                f"{area}/{name}: contents do not match their digest", reason="CORRUPT"
            )
        return info, data

    def _read_blob(self, blob: str, size: int) -> bytes:
        if not _BLOB.match(blob):
            raise DeviceError(f"malformed blob reference {blob!r}", reason="CORRUPT")
        fd = os.open(self._blobs / blob, os.O_RDONLY | _O_NOFOLLOW)
        with os.fdopen(fd, "rb") as f:
            return f.read(size + 1)

    def list(self, area: str, *, owner: str) -> builtins.list[FileInfo]:
        """``owner``'s files in ``area``, by name.

        Raises:
            DeviceError: ``BAD_AREA``.
        """
        owner = check_owner(owner)
        area = check_area(area)
        rows = self._db.read(
            f"SELECT {_COLS} FROM files WHERE owner = ? AND area = ? ORDER BY name", (owner, area)
        )
        return [_info(r) for r in rows]

    def delete(self, area: str, name: str, *, owner: str) -> None:
        """Delete ``owner``'s file ``name`` in ``area``.

        Raises:
            DeviceError: ``BAD_AREA``, ``BAD_NAME``; ``NOT_FOUND``.
        """
        owner = check_owner(owner)
        area = check_area(area)
        name = check_name(name)
        with self._db.lock:
            with self._db.transaction() as conn:
                r = conn.execute(
                    "SELECT blob FROM files WHERE owner = ? AND area = ? AND name = ?",
                    (owner, area, name),
                ).fetchone()
                if r is None:
                    raise DeviceError(f"{area}/{name} not found", reason="NOT_FOUND")
                conn.execute(
                    "DELETE FROM files WHERE owner = ? AND area = ? AND name = ?",
                    (owner, area, name),
                )
            self._emit(owner, area, name, "deleted")
        self._unlink(str(r[0]))

    def remove_owner(self, owner: str) -> None:
        """Delete every file of ``owner`` in every area (on uninstall)."""
        owner = check_owner(owner)
        with self._db.transaction() as conn:
            blobs = [
                str(r[0])
                for r in conn.execute("SELECT blob FROM files WHERE owner = ?", (owner,)).fetchall()
            ]
            conn.execute("DELETE FROM files WHERE owner = ?", (owner,))
        for blob in blobs:
            self._unlink(blob)

    def cleanup(self, *, min_age: float = CLEANUP_GRACE) -> int:
        """Remove blobs no row refers to and older than ``min_age`` seconds; returns how many.

        ``min_age`` protects a blob another process has written but not yet
        committed; blobs this process is writing are always left alone.
        """
        # Order matters: list the directory, then note what this process is
        # writing, then read the rows. A blob seen in the listing is either
        # committed by the time the rows are read, or still pending when noted.
        now = time.time()
        candidates = []
        with os.scandir(self._blobs) as it:
            for entry in it:
                if entry.is_file(follow_symlinks=False):
                    candidates.append((entry.name, entry.stat(follow_symlinks=False).st_mtime))
        with self._pending_lock:
            pending = set(self._pending)
        referenced = {str(r[0]) for r in self._db.read("SELECT blob FROM files")}
        removed = 0
        for blob, mtime in candidates:
            if blob in referenced or blob in pending or now - mtime < min_age:
                continue
            with contextlib.suppress(FileNotFoundError):
                (self._blobs / blob).unlink()
                removed += 1
        return removed

    def _unlink(self, blob: str) -> None:
        if _BLOB.match(blob):
            with contextlib.suppress(FileNotFoundError):
                (self._blobs / blob).unlink()

    def _emit(self, owner: str, area: str, name: str, reason: str) -> None:
        self._bus.emit(
            DeviceEvent("storage", "change", {"area": area, "name": name, "reason": reason}, owner)
        )
