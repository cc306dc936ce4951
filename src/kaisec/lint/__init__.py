"""``kaisec lint``: what an app developer should fix before submitting to a store.

One recipe, :func:`lint_app`, over an app folder or a package file:

* the manifest: every problem ``parse_manifest`` finds, at the line of its
  field; permissions the table denies to the target class, unknown ones,
  access modes that do not expand, missing descriptions, prompts the user
  will see; a ``csp`` that tries to loosen the class policy; ``start_url``
  and icons that name no file;
* what the target class's Content-Security-Policy (``kaisec.daemon.csp``)
  will block, found statically in the HTML (html5lib's tokenizer) and the
  JavaScript (a small tokenizer): inline scripts, inline event handlers,
  ``javascript:`` URLs, ``eval``/``Function``/string timers, WebAssembly,
  scripts and stylesheets from other origins, plugins, ``<base>``, and for
  ``core`` (or a manifest policy without ``'unsafe-inline'``) inline styles.

Every finding has a stable code, a file and, where it applies, a 1-based
line and column (docs/lint.md). Errors are what will break or be refused;
warnings do not fail a lint.

Invariants: the input is untrusted. A package is read only through
``SafeZipReader`` with the package limits; each file analysed is bounded in
size; nothing is executed, fetched or written. A broken package is a
``CORRUPT_PACKAGE``-family finding, not an exception.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from kaisec.errors import KaisecError
from kaisec.lint._model import FINDING_CODES, Finding, LintContext, Severity
from kaisec.types import AppClass

if TYPE_CHECKING:
    from kaisec._internal.zipsafe import SafeZipReader

__all__ = ["FINDING_CODES", "Finding", "LintLimits", "LintReport", "Severity", "lint_app"]

_log = logging.getLogger(__name__)

_HTML_SUFFIXES = (".html", ".htm")
_JS_SUFFIXES = (".js", ".mjs")
_MANIFEST_NAMES = ("manifest.webmanifest", "manifest.webapp")  # kaisec.manifest.MANIFEST_FILENAMES
_VCS_DIRS = frozenset({".git", ".hg", ".svn"})  # skipped by ``kaisec pack`` too


@dataclass(frozen=True)
class LintLimits:
    """Bounds on what one lint reads (the package itself has the ZIP limits on top)."""

    max_file: int = 8 * 1024 * 1024  # per HTML or JS file analysed
    max_total: int = 128 * 1024 * 1024  # HTML and JS, all files together
    max_manifest: int = 256 * 1024  # as PackageLimits.max_app_manifest


@dataclass(frozen=True)
class LintReport:
    """Everything one lint found, sorted by file, line and column."""

    app: str
    name: str | None
    app_class: AppClass
    class_source: str  # "option" (--class), "manifest" (what it asks) or "default" (signed)
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> int:
        """How many findings are errors."""
        return sum(1 for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> int:
        """How many findings are warnings."""
        return sum(1 for f in self.findings if f.severity == "warning")

    @property
    def ok(self) -> bool:
        """No errors (warnings do not fail a lint)."""
        return self.errors == 0

    def to_dict(self) -> dict[str, Any]:
        """The ``kaisec lint --json`` shape."""
        return {
            "app": self.app,
            "name": self.name,
            "class": self.app_class.value,
            "class_source": self.class_source,
            "errors": self.errors,
            "warnings": self.warnings,
            "findings": [f.to_dict() for f in self.findings],
        }


# --- reading the app -----------------------------------------------------------------


class _Source(Protocol):
    def names(self) -> list[str]: ...

    def size(self, name: str) -> int: ...

    def read(self, name: str, max_size: int) -> bytes: ...


class _Folder:
    def __init__(self, root: Path, findings: list[Finding]) -> None:
        from kaisec._internal.zipsafe import check_entry_name

        self._files: dict[str, Path] = {}
        stack: list[tuple[str, Path]] = [("", root)]
        while stack:
            prefix, folder = stack.pop()
            with os.scandir(folder) as it:
                children = sorted(it, key=lambda e: e.name)
            for child in children:
                rel = prefix + child.name
                if child.is_symlink():
                    findings.append(_unsafe(rel, "a symlink; `kaisec pack` refuses it"))
                elif child.is_dir(follow_symlinks=False):
                    if child.name not in _VCS_DIRS:
                        stack.append((rel + "/", Path(child.path)))
                elif not child.is_file(follow_symlinks=False):
                    findings.append(_unsafe(rel, "not a regular file; `kaisec pack` refuses it"))
                else:
                    try:
                        check_entry_name(rel)
                    except KaisecError as exc:
                        findings.append(_unsafe(rel, exc.message))
                        continue
                    self._files[rel] = Path(child.path)

    def names(self) -> list[str]:
        return sorted(self._files)

    def size(self, name: str) -> int:
        return self._files[name].stat().st_size

    def read(self, name: str, max_size: int) -> bytes:
        with self._files[name].open("rb") as fh:
            data = fh.read(max_size + 1)
        if len(data) > max_size:
            raise ValueError(f"{name!r} is over {max_size} bytes")
        return data


class _Package:
    def __init__(self, reader: SafeZipReader) -> None:
        self._reader = reader

    def names(self) -> list[str]:
        return sorted(e.name for e in self._reader.entries if not e.is_dir)

    def size(self, name: str) -> int:
        entry = self._reader.get(name)
        return entry.size if entry is not None else 0

    def read(self, name: str, max_size: int) -> bytes:
        entry = self._reader.get(name)
        if entry is None:
            raise ValueError(f"no entry {name!r}")
        return self._reader.read(entry, max_size=max_size)


def _unsafe(name: str, why: str) -> Finding:
    return Finding(
        "error",
        "UNSAFE_PATH",
        name,
        None,
        None,
        f"{name}: {why}",
        "keep only regular files with plain names in the app folder",
    )


@contextmanager
def _open(path: Path, findings: list[Finding]) -> Iterator[_Source | None]:
    if path.is_dir():
        yield _Folder(path, findings)
        return
    from kaisec._internal.zipsafe import SafeZipReader
    from kaisec.package import PackageLimits

    try:
        reader = SafeZipReader(path, limits=PackageLimits().zip)
    except KaisecError as exc:
        code = exc.code if exc.code in FINDING_CODES else "CORRUPT_PACKAGE"
        findings.append(
            Finding(
                "error",
                code,
                path.name,
                None,
                None,
                f"{exc.code}: {exc.message}",
                "rebuild the package with `kaisec pack`",
            )
        )
        yield None
        return
    with reader:
        yield _Package(reader)


# --- the recipe ----------------------------------------------------------------------


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace").removeprefix("\ufeff")


def lint_app(
    path: str | os.PathLike[str],
    *,
    target: AppClass | None = None,
    limits: LintLimits | None = None,
) -> LintReport:
    """Lint an app folder or a package file for the class it will run as.

    Args:
        path: an app folder (as given to ``kaisec pack``) or a package (.zip).
        target: the class to check against; by default what the manifest asks
            (``b2g_features.core``, the legacy ``type``), else ``signed``.
        limits: how much to read.

    Returns:
        The report; it never raises for problems of the app itself (a corrupt
        package or a missing manifest is a finding).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is neither a folder nor a regular file (a FIFO, a device).
        OSError: a file cannot be read (not a property of its bytes).
    """
    from kaisec.lint._html import lint_html
    from kaisec.lint._js import lint_js
    from kaisec.lint._manifest import lint_manifest

    lim = limits or LintLimits()
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"no such app folder or package: {os.fspath(path)!r}")
    if not (root.is_dir() or root.is_file()):
        raise ValueError(f"not an app folder or a package file: {os.fspath(path)!r}")
    findings: list[Finding] = []
    name: str | None = None
    app_class, source_kind = target or AppClass.SIGNED, "option" if target else "default"
    with _open(root, findings) as src:
        if src is None:
            return _report(path, name, app_class, source_kind, findings)
        names = src.names()
        files = frozenset(names)
        # (1) The manifest, which decides the class the rest is checked against.
        present = [n for n in _MANIFEST_NAMES if n in files]
        ctx = LintContext(app_class, files)
        if not present:
            findings.append(
                Finding(
                    "error",
                    "MISSING_MANIFEST",
                    _MANIFEST_NAMES[0],
                    None,
                    None,
                    "the app root holds neither manifest.webmanifest nor manifest.webapp",
                    "add a manifest.webmanifest (see docs/install.md)",
                )
            )
        else:
            if len(present) > 1:
                findings.append(
                    Finding(
                        "error",
                        "MANIFEST",
                        present[1],
                        1,
                        1,
                        "both manifest.webmanifest and manifest.webapp are present; "
                        "packing refuses the ambiguity",
                        "keep only manifest.webmanifest",
                    )
                )
            data = None
            if src.size(present[0]) > lim.max_manifest:
                findings.append(
                    Finding(
                        "error",
                        "MANIFEST",
                        present[0],
                        None,
                        None,
                        f"{present[0]}: over {lim.max_manifest} bytes",
                        "a manifest is a small JSON document",
                    )
                )
            else:
                data = _read(src, present[0], lim.max_manifest, findings)
            if data is not None:
                result = lint_manifest(present[0], data, target=target, files=files)
                findings.extend(result.findings)
                name = result.manifest.name if result.manifest is not None else None
                app_class, source_kind = result.app_class, result.class_source
                ctx = LintContext(app_class, files, result.origin_name, result.csp)
        # (2) Each HTML and JS file, in name order, within the size budget.
        budget = lim.max_total
        for entry in names:
            low = entry.lower()
            is_html, is_js = low.endswith(_HTML_SUFFIXES), low.endswith(_JS_SUFFIXES)
            if not (is_html or is_js):
                continue
            if src.size(entry) > min(lim.max_file, budget):
                findings.append(
                    Finding(
                        "warning",
                        "SKIPPED_FILE",
                        entry,
                        None,
                        None,
                        f"{entry}: {src.size(entry)} bytes, over the lint limit; not checked",
                        "split the file, or check it by other means",
                    )
                )
                continue
            raw = _read(src, entry, lim.max_file, findings)
            if raw is None:
                continue
            budget -= len(raw)
            text = _decode(raw)
            if is_html:
                findings.extend(lint_html(text, entry, ctx))
            else:
                findings.extend(lint_js(text, entry, ctx))
    return _report(path, name, app_class, source_kind, findings)


def _read(src: _Source, entry: str, max_size: int, findings: list[Finding]) -> bytes | None:
    try:
        return src.read(entry, max_size)
    except KaisecError as exc:  # a CRC or deflate fault in one entry
        code = exc.code if exc.code in FINDING_CODES else "CORRUPT_PACKAGE"
        findings.append(
            Finding(
                "error",
                code,
                entry,
                None,
                None,
                f"{entry}: {exc.message}",
                "rebuild the package with `kaisec pack`",
            )
        )
    except ValueError as exc:  # over the size bound (a folder)
        findings.append(
            Finding(
                "warning",
                "SKIPPED_FILE",
                entry,
                None,
                None,
                f"{entry}: {exc}; not checked",
                "split the file, or check it by other means",
            )
        )
    return None


def _order(f: Finding) -> tuple[int, str, int, int, str]:
    manifest_first = 0 if f.file in _MANIFEST_NAMES else 1
    return (manifest_first, f.file, f.line or 0, f.column or 0, f.code)


def _report(
    path: str | os.PathLike[str],
    name: str | None,
    app_class: AppClass,
    class_source: str,
    findings: list[Finding],
) -> LintReport:
    return LintReport(
        app=os.fspath(path),
        name=name,
        app_class=app_class,
        class_source=class_source,
        findings=tuple(sorted(findings, key=_order)),
    )
