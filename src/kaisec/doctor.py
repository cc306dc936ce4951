"""``kaisec doctor``: is the home consistent, and is every package still what was verified?

It first finishes what interrupted operations left (the installer's recovery:
files that no committed row names are removed, and reported), then checks:

1. SQLite's ``integrity_check``;
2. for each packaged app: the file exists, its SHA-256 is the digest recorded
   at install, and it still verifies (signature, chain, class and signer as
   recorded) against the current trust store;
3. hosted apps have no package; every app has a valid origin;
4. no permission row belongs to an origin without an app, no app directory
   lacks a row, and nothing stray is left in the apps directory.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kaisec.errors import KaisecError
from kaisec.installer import Installer
from kaisec.registry import list_apps

__all__ = ["DoctorReport", "Problem", "run_doctor"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong."""

    what: str  # an app name, "database" or a path
    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"what": self.what, "code": self.code, "message": self.message}


@dataclass
class DoctorReport:
    """Everything doctor found."""

    apps: int = 0
    checked_packages: int = 0
    problems: list[Problem] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "apps": self.apps,
            "checked_packages": self.checked_packages,
            "problems": [p.to_dict() for p in self.problems],
            "recovered": self.recovered,
        }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def run_doctor(installer: Installer, *, verify_signatures: bool = True) -> DoctorReport:
    """Recover, then check the home of ``installer``; never raises for what it finds."""
    from kaisec.package import verify_package

    report = DoctorReport(recovered=installer.recover(full=True))
    store = installer.store
    for line in store.integrity_check():
        report.problems.append(Problem("database", "DATABASE_CORRUPT", line))
    apps = list_apps(store)
    report.apps = len(apps)
    origins = {a.origin for a in apps}
    for rec in apps:
        path = installer.package_path(rec)
        if path is None:
            if rec.source != "url":
                report.problems.append(
                    Problem(rec.name, "PACKAGE_MISSING", "a packaged app has no package digest")
                )
            continue
        if not path.is_file():
            report.problems.append(Problem(rec.name, "PACKAGE_MISSING", f"{path} is missing"))
            continue
        if _sha256(path) != rec.package_digest:
            report.problems.append(
                Problem(rec.name, "MODIFIED_ENTRY", f"{path} changed since it was installed")
            )
            continue
        report.checked_packages += 1
        if not verify_signatures or rec.signer is None:
            continue
        try:
            verified = verify_package(path, trust=installer.trust_dir)
        except KaisecError as exc:
            report.problems.append(Problem(rec.name, exc.code, exc.message))
            continue
        if verified.signer_fingerprint != rec.signer:
            report.problems.append(
                Problem(rec.name, "SIGNER_MISMATCH", "signed by another key than recorded")
            )
        if verified.app_class is not rec.app_class:
            report.problems.append(
                Problem(
                    rec.name,
                    "INVALID_SECURITY_LEVEL",
                    f"recorded as {rec.app_class.value}, verifies as {verified.app_class.value}",
                )
            )
    for (origin,) in store.read("SELECT DISTINCT origin FROM permissions"):
        if origin not in origins:
            report.problems.append(
                Problem(origin, "ORPHAN_PERMISSIONS", "permission rows of an uninstalled origin")
            )
    ids = {a.id for a in apps}
    if installer.home.apps_dir.exists():
        for child in installer.home.apps_dir.iterdir():
            if child.name.startswith(".") and child.name != ".staging":
                report.problems.append(Problem(str(child), "STRAY_FILE", "unexpected file"))
            elif not child.name.startswith(".") and child.name not in ids:
                report.problems.append(Problem(str(child), "STRAY_FILE", "no app has this id"))
    return report
