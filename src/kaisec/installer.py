"""Installing, updating and uninstalling apps: all or nothing.

Invariants (what makes each operation atomic):

- One operation at a time per home: every install, update, uninstall and
  recovery holds an exclusive ``flock`` on the ``apps/`` directory.
- Packages live at ``apps/<app id>/<sha256 of the file>.zip``; the registry
  row names the digest, so the row says which file is *the* package.
- Install: the source is copied (and hashed) into ``apps/.staging/``, the
  staged copy is verified (the bytes stored are the bytes verified), moved
  by ``rename`` to ``apps/<id>/``, then the registry row and the permissions
  are written in one SQLite transaction. Update writes the new file beside
  the old one, commits, then deletes the old file. Uninstall commits the
  deletion first, then removes files.
- Before touching a file, an operation journals the paths it may create or
  delete (``apps/.journal/``). A crash at any point leaves either the old
  committed state or the new one, plus possibly journaled files no row
  names; recovery, run at the start of every operation, deletes exactly
  those (O(1) in the number of apps). ``doctor`` also scans every folder.
- A refusal writes nothing but the audit log.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from kaisec.errors import (
    DuplicateOriginError,
    InstallBusyError,
    InvalidOriginError,
    InvalidSecurityLevelError,
    KaisecError,
    NotSignedError,
    SignerMismatchError,
    UninstallForbiddenError,
    VersionDowngradeError,
)
from kaisec.home import Home
from kaisec.manager import PermissionManager
from kaisec.manifest import AppManifest, parse_manifest
from kaisec.registry import AppRecord, find_app, list_apps
from kaisec.types import AppClass

__all__ = [
    "RESERVED_NAMES",
    "Installer",
    "compare_versions",
    "name_from_manifest",
]

log = logging.getLogger(__name__)

#: Host labels no installed app may take (the daemon's own origins and KaiOS's reserved ones).
RESERVED_NAMES = frozenset(
    {"system", "shared", "cached", "localhost", "kaisec", "api", "theme", "branding", "www",
     "daemon", "default", "local-device", "127", "xn--"}
)  # fmt: skip
_LABEL_OK = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_CHUNK = 1 << 20
_LOCK_TIMEOUT = 120.0
Progress = Callable[[str, float], None]


def compare_versions(a: str | None, b: str | None) -> int:
    """-1, 0 or 1 as dotted version ``a`` is lower, equal or higher than ``b`` (None lowest)."""
    if a == b:
        return 0
    if a is None:
        return -1
    if b is None:
        return 1
    pa = [int(x) for x in a.split(".")]
    pb = [int(x) for x in b.split(".")]
    width = max(len(pa), len(pb))
    pa += [0] * (width - len(pa))
    pb += [0] * (width - len(pb))
    return (pa > pb) - (pa < pb)


def name_from_manifest(name: str) -> str:
    """A safe host label made from an app's name (``My App!`` -> ``my-app``)."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:50].strip("-")
    return text or "app"


@dataclass(frozen=True)
class InstallResult:
    """What an install or update did."""

    app: AppRecord
    warnings: tuple[str, ...] = ()


class Installer:
    """Install, update and uninstall apps in one home."""

    def __init__(
        self,
        home: Home,
        *,
        manager: PermissionManager | None = None,
        now: Callable[[], datetime] | None = None,
        trust_dir: Path | None = None,
    ) -> None:
        self.home = home.ensure()
        self._own_manager = manager is None
        self.manager = manager or PermissionManager.open(home)
        self.store = self.manager.store
        self._now = now
        self.trust_dir = trust_dir or home.trust_dir
        self.staging = home.apps_dir / ".staging"
        self.journal = home.apps_dir / ".journal"

    def close(self) -> None:
        if self._own_manager:
            self.manager.close()

    def __enter__(self) -> Installer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- locking and recovery --------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, *, full: bool = False) -> Iterator[None]:
        # the lock is the apps directory itself (flock on a directory fd): no lock file to leave
        fd = os.open(self.home.apps_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            deadline = time.monotonic() + _LOCK_TIMEOUT
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() > deadline:
                        raise InstallBusyError(
                            "another install, update or uninstall is running"
                        ) from exc
                    time.sleep(0.05)
            self._recover_locked(full=full)
            yield
        finally:
            for empty in (self.staging, self.journal):
                with contextlib.suppress(OSError):
                    empty.rmdir()  # only when empty: leave no trace of a refusal
            os.close(fd)  # releases the lock

    def recover(self, *, full: bool = False) -> list[str]:
        """Remove what interrupted operations left behind; returns what was removed.

        Every operation runs this first, cheaply: the staging area and the
        intent journal only. ``full=True`` (doctor) also scans every app folder.
        """
        with self._locked(full=full):
            return list(self._recovered)

    @contextlib.contextmanager
    def _intent(self, app_id: str, *paths: Path) -> Iterator[None]:
        """Journal the paths an operation may create or delete, before touching any.

        After the operation (or a crash), a journaled path stays only if the
        committed row of ``app_id`` names it: its folder, its package, its data.
        """
        self.journal.mkdir(parents=True, exist_ok=True, mode=0o700)
        entry = self.journal / f"{secrets.token_hex(8)}.json"
        rels = [str(p.relative_to(self.home.root)) for p in paths]
        with open(entry, "x") as fh:
            json.dump({"app": app_id, "paths": rels}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        _fsync_dir(self.journal)
        try:
            yield
        finally:
            self._settle(entry)

    def _settle(self, entry: Path, removed: list[str] | None = None) -> None:
        try:
            data = json.loads(entry.read_text())
            app_id, rels = str(data["app"]), [str(r) for r in data["paths"]]
        except (OSError, ValueError, KeyError, TypeError):
            app_id, rels = "", []  # a torn entry: written before anything was touched
        rows = self.store.read("SELECT package_digest FROM apps WHERE id = ?", (app_id,))
        keep: set[Path] = set()
        if rows:
            keep = {self.home.apps_dir / app_id, self.home.storage_dir / "apps" / app_id}
            if rows[0][0]:
                keep.add(self.home.apps_dir / app_id / f"{rows[0][0]}.zip")
        for rel in rels:
            path = self.home.root / rel
            if path not in keep and (path.exists() or path.is_symlink()):
                _remove(path)
                if removed is not None:
                    removed.append(rel)
        with contextlib.suppress(FileNotFoundError):
            entry.unlink()

    def _recover_locked(self, *, full: bool = False) -> None:
        removed: list[str] = []
        if self.staging.exists():
            for child in self.staging.iterdir():
                _remove(child)
                removed.append(str(child.relative_to(self.home.root)))
        if self.journal.exists():
            for entry in sorted(self.journal.iterdir()):
                self._settle(entry, removed)
        if full:
            self._scan(removed)
        if removed:
            log.warning("recovered from an interrupted operation: removed %s", removed)
        self._recovered = removed

    def _scan(self, removed: list[str]) -> None:
        rows = {rec.id: rec for rec in list_apps(self.store)}
        for app_dir in self.home.apps_dir.iterdir():
            if app_dir.name.startswith("."):
                continue
            rec = rows.get(app_dir.name)
            if rec is None:
                _remove(app_dir)
                removed.append(str(app_dir.relative_to(self.home.root)))
                continue
            keep = f"{rec.package_digest}.zip" if rec.package_digest else None
            for item in app_dir.iterdir():
                if item.name != keep:
                    _remove(item)
                    removed.append(str(item.relative_to(self.home.root)))
        data_root = self.home.storage_dir / "apps"
        if data_root.exists():
            for data_dir in data_root.iterdir():
                if data_dir.name not in rows:
                    _remove(data_dir)
                    removed.append(str(data_dir.relative_to(self.home.root)))

    # -- helpers -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _audit_refusal(self, operation: str, what: str) -> Iterator[None]:
        """Record a refused operation in the audit log (the only trace a refusal leaves)."""
        try:
            yield
        except KaisecError as exc:
            with self.store.transaction() as txn:
                txn.audit("-", operation, f"refused:{exc.code}", actor=operation, detail=what)
            raise

    def package_path(self, rec: AppRecord) -> Path | None:
        """Where the stored package of ``rec`` is (None for hosted apps)."""
        if not rec.package_digest:
            return None
        return self.home.apps_dir / rec.id / f"{rec.package_digest}.zip"

    def developer_mode(self) -> bool:
        return self.store.get_setting("developer-mode") == "on"

    def set_developer_mode(self, on: bool, *, pin: str | None = None) -> None:
        """Turn developer mode on (needs the PIN once one is set) or off.

        Raises:
            PinRequiredError, PinLockedError: turning it on without the right PIN.
        """
        if on:
            self.manager.pins.verify(pin, actor="config")
        with self.store.transaction() as txn:
            txn.set_setting("developer-mode", "on" if on else None)
            txn.audit("device", "developer-mode", "on" if on else "off", actor="config")

    def _stage_copy(self, source: Path) -> tuple[Path, str, threading.Thread]:
        """Copy and hash ``source`` into staging; the returned thread makes the copy durable.

        The fsync runs while the staged copy is being verified (disk and CPU
        overlap); callers join it before the copy is renamed into place.
        """
        self.staging.mkdir(parents=True, exist_ok=True, mode=0o700)
        staged = self.staging / f"{secrets.token_hex(8)}.zip"
        digest = hashlib.sha256()
        with open(source, "rb") as src, open(staged, "xb") as dst:
            while True:
                chunk = src.read(_CHUNK)
                if not chunk:
                    break
                digest.update(chunk)
                dst.write(chunk)

        def make_durable() -> None:
            fd = os.open(staged, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

        syncing = threading.Thread(target=make_durable, name="kaisec-fsync", daemon=True)
        syncing.start()
        return staged, digest.hexdigest(), syncing

    def _verify_staged(
        self, staged: Path, *, allow_unsigned: bool
    ) -> tuple[AppManifest, AppClass, str | None, str | None]:
        """(manifest, class, signer fingerprint, signer subject) of a staged package."""
        from kaisec.package import read_unsigned_package, verify_package

        try:
            verified = verify_package(
                staged, trust=self.trust_dir, now=self._now() if self._now else None
            )
        except NotSignedError:
            if not allow_unsigned or not self.developer_mode():
                raise
            manifest = read_unsigned_package(staged)
            log.warning("developer mode: installing UNSIGNED %r as a PWA", manifest.name)
            return manifest, AppClass.PWA, None, None
        return (
            verified.manifest,
            verified.app_class,
            verified.signer_fingerprint,
            verified.signer_subject,
        )

    def _taken(self, *, name: str | None = None, origin: str | None = None) -> bool:
        rows = self.store.read(
            "SELECT 1 FROM apps WHERE name = ? OR origin = ? LIMIT 1", (name or "", origin or "")
        )
        return bool(rows)

    def _choose_name(
        self, manifest: AppManifest, app_class: AppClass, *, allow_reserved: bool
    ) -> str:
        if manifest.origin_name is not None:
            asked = manifest.origin_name
            if app_class is AppClass.PWA:
                raise InvalidOriginError(
                    f"only signed packages may choose their origin (asked {asked!r})",
                    origin=asked,
                )
            if asked in RESERVED_NAMES and not allow_reserved:
                raise InvalidOriginError(f"the origin name {asked!r} is reserved", origin=asked)
            if self._taken(name=asked, origin=f"http://{asked}.localhost"):
                raise DuplicateOriginError(
                    f"http://{asked}.localhost belongs to another installed app", origin=asked
                )
            return asked
        base = name_from_manifest(manifest.name)
        if base in RESERVED_NAMES and not allow_reserved:
            base = f"{base}-app"
        # one query for every name of this family: install time stays flat with many apps
        stem = base[:58]
        taken = {
            str(r[0])
            for r in self.store.read(
                "SELECT name FROM apps WHERE name = ? OR name GLOB ?", (base, f"{stem}-[0-9]*")
            )
        }
        for i in range(1, 1000):
            candidate = base if i == 1 else f"{stem}-{i}"
            if _LABEL_OK.match(candidate) and candidate not in taken:
                return candidate
        return f"app-{uuid.uuid4().hex[:12]}"

    # -- install -------------------------------------------------------------------------------

    def install(
        self,
        source: str | os.PathLike[str],
        *,
        preloaded: bool = False,
        removable: bool = True,
        progress: Progress | None = None,
    ) -> InstallResult:
        """Install a package file, a hosted app's manifest URL or a store update manifest URL.

        Raises:
            KaisecError: any refusal (see docs/errors.md); nothing is left behind.
        """
        text = os.fspath(source)
        with self._audit_refusal("install", text):
            if text.startswith(("http://", "https://")):
                return self._install_url(text, progress=progress)
            return self.install_package(
                Path(text), preloaded=preloaded, removable=removable, progress=progress
            )

    def install_package(
        self,
        path: Path,
        *,
        preloaded: bool = False,
        removable: bool = True,
        source_label: str | None = None,
        progress: Progress | None = None,
        expect: Callable[[AppManifest], None] | None = None,
    ) -> InstallResult:
        """Install a package file (see :meth:`install`)."""
        with self._locked():
            return self._install_package_locked(
                path,
                preloaded=preloaded,
                removable=removable,
                source_label=source_label,
                progress=progress,
                expect=expect,
            )

    def _install_package_locked(
        self,
        path: Path,
        *,
        preloaded: bool = False,
        removable: bool = True,
        source_label: str | None = None,
        progress: Progress | None = None,
        expect: Callable[[AppManifest], None] | None = None,
    ) -> InstallResult:
        staged, digest, syncing = self._stage_copy(path)
        try:
            _tell(progress, "verifying", 0.3)
            manifest, app_class, signer, subject = self._verify_staged(staged, allow_unsigned=True)
            if expect is not None:
                expect(manifest)
            name = self._choose_name(manifest, app_class, allow_reserved=preloaded)
            origin = f"http://{name}.localhost"
            app_id = str(uuid.uuid4())
            final_dir = self.home.apps_dir / app_id
            rec = AppRecord(
                id=app_id,
                name=name,
                origin=origin,
                app_class=app_class,
                manifest=manifest.to_dict(),
                version=manifest.version,
                manifest_url=f"{origin}/{_manifest_file(manifest)}",
                signer=signer,
                signer_subject=subject,
                source=source_label or ("preloaded" if preloaded else "file"),
                removable=removable and not preloaded,
                package_digest=digest,
            )
            syncing.join()
            with self._intent(app_id, final_dir):
                final_dir.mkdir(parents=True, mode=0o700)
                staged.replace(final_dir / f"{digest}.zip")
                _fsync_dir(final_dir)
                _tell(progress, "committing", 0.9)
                self.manager.register_app(rec, manifest)
        except BaseException:
            syncing.join()
            _remove(staged)
            raise
        _tell(progress, "installed", 1.0)
        return InstallResult(rec, manifest.warnings)

    def _install_url(self, url: str, *, progress: Progress | None) -> InstallResult:
        from kaisec._internal.jsonstrict import JsonProblem, loads_strict
        from kaisec.hosted import StoreUpdateManifest, fetch_document

        _tell(progress, "fetching manifest", 0.05)
        final, body = fetch_document(url)
        try:
            doc = loads_strict(body, max_size=256 * 1024, max_depth=16)
        except JsonProblem:
            doc = None  # parse_manifest reports it with the right code
        if StoreUpdateManifest.looks_like(doc):
            assert isinstance(doc, dict)
            mini = StoreUpdateManifest.from_dict(doc, url=final)
            return self._install_from_store(mini, progress=progress)
        return self._install_hosted(final, body, progress=progress)

    def _install_hosted(self, url: str, body: bytes, *, progress: Progress | None) -> InstallResult:
        from kaisec.hosted import origin_of

        origin = origin_of(url)
        manifest = parse_manifest(body, filename="manifest.webmanifest", origin=origin)
        if manifest.requested_class is not None and manifest.requested_class is not AppClass.PWA:
            raise InvalidSecurityLevelError(
                f"invalid security level: a hosted app is a PWA; it asks for "
                f"{manifest.requested_class.value!r}",
                requested=manifest.requested_class.value,
                proven="pwa",
            )
        if manifest.origin_name is not None:
            raise InvalidOriginError(
                "a hosted app's origin is its manifest's origin; b2g_features.origin is "
                "for signed packages",
                origin=manifest.origin_name,
            )
        with self._locked():
            if self._taken(origin=origin):
                raise DuplicateOriginError(f"{origin} already has an installed app", origin=origin)
            name = self._choose_name(manifest, AppClass.PWA, allow_reserved=False)
            rec = AppRecord(
                id=str(uuid.uuid4()),
                name=name,
                origin=origin,
                app_class=AppClass.PWA,
                manifest=manifest.to_dict(),
                version=manifest.version,
                manifest_url=url,
                source="url",
            )
            self.manager.register_app(rec, manifest)
        _tell(progress, "installed", 1.0)
        return InstallResult(rec, manifest.warnings)

    def _install_from_store(self, mini: object, *, progress: Progress | None) -> InstallResult:
        from kaisec.hosted import StoreUpdateManifest, fetch_package

        assert isinstance(mini, StoreUpdateManifest)

        def report(got: int, total: int | None) -> None:
            if total:
                _tell(progress, "downloading", 0.1 + 0.5 * got / total)

        with self._locked():
            self.staging.mkdir(parents=True, exist_ok=True, mode=0o700)
            download = self.staging / f"dl-{secrets.token_hex(8)}.zip"
            try:
                fetch_package(mini.package_url, download, expected_size=mini.size, progress=report)
                return self._install_package_locked(
                    download,
                    source_label="url",
                    progress=progress,
                    expect=lambda m: _agree(mini, m),
                )
            finally:
                _remove(download)

    # -- update --------------------------------------------------------------------------------

    def update(
        self,
        app_key: str,
        source: str | os.PathLike[str],
        *,
        rotation: bytes | None = None,
        progress: Progress | None = None,
    ) -> InstallResult:
        """Update an installed app from a package file or URL.

        Raises:
            AppNotFoundError: no such app.
            SignerMismatchError: another signer, without a valid rotation record.
            VersionDowngradeError: the version is not higher.
            InvalidOriginError: the update asks for another origin.
            KaisecError: any verification refusal; the installed version stays.
        """
        text = os.fspath(source)
        with self._audit_refusal("update", f"{app_key} <- {text}"):
            return self._update(app_key, text, rotation=rotation, progress=progress)

    def _update(
        self, app_key: str, text: str, *, rotation: bytes | None, progress: Progress | None
    ) -> InstallResult:
        current = find_app(self.store, app_key)
        if current.source == "url" and not current.package_digest:
            return self._update_hosted(current, text, progress=progress)
        if text.startswith(("http://", "https://")):
            from kaisec.hosted import StoreUpdateManifest, fetch_document, fetch_package

            final, body = fetch_document(text)
            from kaisec._internal.jsonstrict import loads_strict

            doc = loads_strict(body, max_size=256 * 1024, max_depth=16)
            mini = StoreUpdateManifest.from_dict(doc, url=final)
            with self._locked():
                self.staging.mkdir(parents=True, exist_ok=True, mode=0o700)
                download = self.staging / f"dl-{secrets.token_hex(8)}.zip"
                try:
                    fetch_package(mini.package_url, download, expected_size=mini.size)
                    return self._update_package_locked(
                        current, download, rotation=rotation, progress=progress, mini=mini
                    )
                finally:
                    _remove(download)
        with self._locked():
            return self._update_package_locked(
                current, Path(text), rotation=rotation, progress=progress
            )

    def _update_package_locked(
        self,
        current: AppRecord,
        path: Path,
        *,
        rotation: bytes | None,
        progress: Progress | None,
        mini: object | None = None,
    ) -> InstallResult:
        current = find_app(self.store, current.id)
        staged, digest, syncing = self._stage_copy(path)
        try:
            _tell(progress, "verifying", 0.3)
            manifest, app_class, signer, subject = self._verify_staged(
                staged, allow_unsigned=current.signer is None
            )
            if mini is not None:
                _agree(mini, manifest)
            self._check_update(current, manifest, signer, rotation)
            new_file = self.home.apps_dir / current.id / f"{digest}.zip"
            old = self.package_path(current)
            rec = replace(
                current,
                app_class=app_class,
                manifest=manifest.to_dict(),
                version=manifest.version,
                signer=signer,
                signer_subject=subject,
                package_digest=digest,
            )
            # the journal settles it: the row's digest decides which file stays
            syncing.join()
            with self._intent(current.id, new_file, *([old] if old else [])):
                staged.replace(new_file)
                _fsync_dir(new_file.parent)
                _tell(progress, "committing", 0.9)
                self.manager.update_registered_app(rec, manifest)
        except BaseException:
            syncing.join()
            _remove(staged)
            raise
        _tell(progress, "updated", 1.0)
        return InstallResult(rec, manifest.warnings)

    def _check_update(
        self,
        current: AppRecord,
        manifest: AppManifest,
        signer: str | None,
        rotation: bytes | None,
    ) -> None:
        if current.signer != signer:
            if current.signer is None or signer is None or rotation is None:
                raise SignerMismatchError(
                    f"signer mismatch: {current.name} is signed by "
                    f"{current.signer or 'nobody'}, the update by {signer or 'nobody'}",
                    installed=current.signer,
                    signer=signer,
                )
            from kaisec.rotation import check_rotation

            check_rotation(
                rotation, app_origin=current.origin, installed=current.signer, new_signer=signer
            )
        if compare_versions(manifest.version, current.version) <= 0:
            raise VersionDowngradeError(
                f"version downgrade: {current.name} {current.version} is installed, the "
                f"update is {manifest.version}; an update must be higher",
                installed=current.version,
                update=manifest.version,
            )
        if manifest.origin_name is not None and manifest.origin_name != current.name:
            raise InvalidOriginError(
                f"an update cannot move {current.origin} to "
                f"http://{manifest.origin_name}.localhost",
                origin=manifest.origin_name,
            )

    def _update_hosted(
        self, current: AppRecord, url: str, *, progress: Progress | None
    ) -> InstallResult:
        from kaisec.hosted import fetch_document, origin_of

        final, body = fetch_document(url or current.manifest_url or "")
        if origin_of(final) != current.origin:
            raise InvalidOriginError(
                f"the update's manifest is on {origin_of(final)}, the app is {current.origin}",
                origin=origin_of(final),
            )
        manifest = parse_manifest(body, origin=current.origin)
        if manifest.requested_class not in (None, AppClass.PWA):
            raise InvalidSecurityLevelError(
                "invalid security level: a hosted app is a PWA", proven="pwa"
            )
        if (
            manifest.version is not None
            and current.version is not None
            and compare_versions(manifest.version, current.version) <= 0
        ):
            raise VersionDowngradeError(
                f"version downgrade: {current.version} installed, update is {manifest.version}",
                installed=current.version,
                update=manifest.version,
            )
        with self._locked():
            rec = replace(
                current, manifest=manifest.to_dict(), version=manifest.version, manifest_url=final
            )
            self.manager.update_registered_app(rec, manifest)
        _tell(progress, "updated", 1.0)
        return InstallResult(rec, manifest.warnings)

    # -- uninstall -----------------------------------------------------------------------------

    def _forget_device_data(self, origin: str) -> None:
        """The app's files in device storage go with it (a reinstall starts empty)."""
        if not _device_db(self.home).exists():
            return  # the device was never used: nothing of the app can be there
        from kaisec.device import open_device

        with open_device(self.home) as device:
            device.storage.remove_owner(origin)

    def uninstall(self, app_key: str) -> AppRecord:
        """Remove an app: its package, its row, its permissions and its private data.

        Raises:
            AppNotFoundError: no such app.
            UninstallForbiddenError: a preloaded, non-removable app.
        """
        with self._locked():
            rec = find_app(self.store, app_key)
            if not rec.removable:
                raise UninstallForbiddenError(
                    f"{rec.name} is preloaded and cannot be uninstalled", app=rec.name
                )
            with self._intent(
                rec.id, self.home.apps_dir / rec.id, self.home.storage_dir / "apps" / rec.id
            ):
                self.manager.unregister_app(rec)
            self._forget_device_data(rec.origin)
        return rec


def _device_db(home: Home) -> Path:
    return home.storage_dir / "device.db"


def _manifest_file(manifest: AppManifest) -> str:
    return "manifest.webapp" if manifest.format == "webapp" else "manifest.webmanifest"


def _agree(mini: object, manifest: AppManifest) -> None:
    """A store update manifest and the package's own manifest must agree."""
    from kaisec.errors import InvalidManifestError
    from kaisec.hosted import StoreUpdateManifest
    from kaisec.manifest import normalize_origin_name

    assert isinstance(mini, StoreUpdateManifest)
    problems = []
    if mini.name != manifest.name:
        problems.append(f"name: the store says {mini.name!r}, the package {manifest.name!r}")
    if (mini.developer_name, mini.developer_url) != (
        manifest.developer_name,
        manifest.developer_url,
    ) and (mini.developer_name or mini.developer_url):
        problems.append("developer: the store's and the package's differ")
    if mini.version is not None and mini.version != manifest.version:
        problems.append(f"version: the store says {mini.version}, the package {manifest.version}")
    if problems:
        raise InvalidManifestError(
            f"the update manifest and the package disagree: {problems[0]}", problems=problems
        )
    if mini.origin is not None:
        try:
            wanted = normalize_origin_name(mini.origin)
        except ValueError as exc:
            raise InvalidOriginError(f"update manifest origin: {exc}") from exc
        if wanted != manifest.origin_name:
            raise InvalidOriginError(
                f"origin: the store says {mini.origin!r}, the package {manifest.origin_name!r}"
            )


def _tell(progress: Progress | None, stage: str, fraction: float) -> None:
    if progress is not None:
        progress(stage, fraction)


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
