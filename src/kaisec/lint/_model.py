"""What ``kaisec lint`` reports: findings, their codes, and the context the checks share.

A finding names one problem at one place (file, line, column: 1-based, the
file being the entry name inside the app, ``/``-separated). Codes are stable:
scripts match on them, so a code is never reused for a different meaning
(docs/lint.md lists them all).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

from kaisec.types import AppClass

__all__ = ["FINDING_CODES", "Finding", "LineIndex", "LintContext", "Severity", "UrlKind"]

Severity = Literal["error", "warning"]

#: Every finding code and what it means (docs/lint.md keeps the same list).
FINDING_CODES: dict[str, str] = {
    # the package or folder
    "CORRUPT_PACKAGE": "the package cannot be read (broken, ambiguous or over a limit)",
    "UNSAFE_PATH": "a file `kaisec pack` refuses (symlink, special file, unsafe name)",
    "DUPLICATE_ENTRY": "the package holds the same name twice",
    "PACKAGE_TOO_LARGE": "the package is over a size or count limit",
    "SKIPPED_FILE": "a file too large to analyse; it was not checked",
    # the manifest
    "MISSING_MANIFEST": "neither manifest.webmanifest nor manifest.webapp at the app root",
    "MANIFEST": "a manifest problem, with the path of its field",
    "CLASS_MISMATCH": "--class is lower than the class the manifest asks for",
    "UNKNOWN_PERMISSION": "a permission the table does not know; it is never granted",
    "ACCESS_MODE": "a permission's access mode is missing, unknown, or expands to nothing",
    "MISSING_DESCRIPTION": "a permission without a description for the user",
    "PERMISSION_DENIED_FOR_CLASS": "the table denies this permission to the target class",
    "PERMISSION_PROMPT": "the user will be asked for this permission at first use",
    "CSP_UNSAFE": "the manifest's csp tries to loosen the class policy (it cannot)",
    "MISSING_FILE": "start_url, an icon, a script or a stylesheet names a file the app lacks",
    # what the class's Content-Security-Policy blocks
    "INLINE_SCRIPT": "an inline <script>: script-src has no 'unsafe-inline'",
    "INLINE_HANDLER": "an on* event-handler attribute: script-src has no 'unsafe-inline'",
    "JAVASCRIPT_URL": "a javascript: URL: script-src has no 'unsafe-inline'",
    "EVAL": "eval(): script-src has no 'unsafe-eval'",
    "NEW_FUNCTION": "Function()/new Function(): script-src has no 'unsafe-eval'",
    "STRING_TIMER": "setTimeout/setInterval with a string: script-src has no 'unsafe-eval'",
    "WASM": "WebAssembly compilation: script-src has no 'wasm-unsafe-eval'",
    "REMOTE_SCRIPT": "a script or module import from another origin: script-src 'self' <shared>",
    "BLOCKED_SCRIPT_URL": "a script from a data:, blob: or other non-http URL",
    "REMOTE_STYLE": "a stylesheet from another origin: style-src 'self' <shared>",
    "INLINE_STYLE": "a style attribute or <style> element where style-src has no 'unsafe-inline'",
    "PLUGIN": "<object>, <embed> or <applet>: object-src 'none'",
    "BASE_TAG": "<base href>: base-uri 'none'",
    "META_CSP": "a <meta> Content-Security-Policy: a third policy that can only tighten",
}

#: Host label of the daemon's shared origin, ``http://shared.localhost:<port>`` (daemon/sites.py).
SHARED_LABEL = "shared"

#: Template placeholders: a URL holding one is filled in later, so it is not checked as a file.
_PLACEHOLDERS = ("{{", "${", "<%")

UrlKind = Literal["local", "self", "shared", "daemon", "remote", "data", "javascript", "other"]


@dataclass(frozen=True)
class Finding:
    """One problem at one place.

    ``file`` is the entry name inside the app (``js/app.js``); ``line`` and
    ``column`` are 1-based, None where no position applies (a missing file).
    """

    severity: Severity
    code: str
    file: str
    line: int | None
    column: int | None
    message: str
    hint: str = ""

    def __post_init__(self) -> None:
        if self.code not in FINDING_CODES:
            raise ValueError(f"unknown finding code {self.code!r}")
        if self.severity not in ("error", "warning"):
            raise ValueError(f"expected error or warning, got {self.severity!r}")

    @property
    def location(self) -> str:
        """``file:line:column`` (as far as known), the form editors and CI annotations read."""
        out = self.file
        if self.line is not None:
            out += f":{self.line}"
            if self.column is not None:
                out += f":{self.column}"
        return out

    def to_dict(self) -> dict[str, Any]:
        """The ``kaisec lint --json`` form of a finding."""
        return {
            "severity": self.severity,
            "code": self.code,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "message": self.message,
            "hint": self.hint,
        }


class LineIndex:
    """Turns offsets into a text into 1-based (line, column); ``\\n`` ends a line."""

    def __init__(self, text: str) -> None:
        self._starts = [0]
        pos = text.find("\n")
        while pos >= 0:
            self._starts.append(pos + 1)
            pos = text.find("\n", pos + 1)

    def position(self, offset: int) -> tuple[int, int]:
        """The 1-based line and column of ``offset``."""
        line = bisect.bisect_right(self._starts, offset)
        return line, offset - self._starts[line - 1] + 1

    def offset(self, line: int, column0: int) -> int:
        """The offset of a 1-based line and a 0-based column."""
        line = max(1, min(line, len(self._starts)))
        return self._starts[line - 1] + column0


@dataclass(frozen=True)
class LintContext:
    """What every check needs to know about the app being linted."""

    app_class: AppClass
    files: frozenset[str]
    origin_name: str | None = None
    #: The manifest's own policy, parsed (it applies on top of the class's).
    manifest_csp: dict[str, list[str]] | None = None

    def inline_style_blocked_by(self, *, element: bool) -> str | None:
        """Which policy blocks a ``<style>`` element (or a ``style=`` attribute), or None."""
        if self.app_class is AppClass.CORE:
            return "the core class policy (style-src 'self' <shared>)"
        first = "style-src-elem" if element else "style-src-attr"
        if self.manifest_csp is not None and not _allows_inline(
            self.manifest_csp, (first, "style-src", "default-src")
        ):
            return "the manifest's csp"
        return None

    def classify(self, url: str) -> UrlKind:
        """Where a URL found in the app points, as the class policy sees it."""
        value = url.strip(" \t\n\f\r").replace("\t", "").replace("\n", "").replace("\r", "")
        low = value.lower()
        if low.startswith("javascript:"):
            return "javascript"
        if low.startswith(("data:", "blob:")):
            return "data"
        try:
            parts = urlsplit(value)
        except ValueError:
            return "other"
        if value.startswith("//") or parts.scheme in ("http", "https"):
            host = (parts.hostname or "").lower()
            if host == f"{SHARED_LABEL}.localhost":
                return "shared"
            if self.origin_name is not None and host == f"{self.origin_name}.localhost":
                return "self"
            return "remote"
        if parts.scheme:
            return "other"
        return "local"

    def local_entry(self, url: str, base_file: str) -> str | None:
        """The app entry a local URL names, relative to ``base_file``; None if not a local file."""
        from kaisec.appurl import normalize_entry_path
        from kaisec.errors import KaisecError

        value = url.strip(" \t\n\f\r")
        if any(mark in value for mark in _PLACEHOLDERS):
            return None  # filled in at build or serve time (the demo's "{{KAISEC_JS}}")
        kind = self.classify(value)
        if kind == "self":
            value = urlsplit(value).path or "/"
        elif kind != "local":
            return None
        try:
            resolved = urlsplit(urljoin("http://app.localhost/" + base_file, value)).path
        except ValueError:
            return None
        if resolved.startswith("/.kaisec/"):
            return None  # served by the daemon on every app's origin (the JS client)
        try:
            return normalize_entry_path(resolved)
        except KaisecError:
            return None


def _allows_inline(policy: dict[str, list[str]], chain: tuple[str, ...]) -> bool:
    for directive in chain:
        values = policy.get(directive)
        if values is None:
            continue
        low = [v.lower() for v in values]
        # A nonce or hash turns 'unsafe-inline' off (CSP3, "Does a source list allow all inline").
        if any(v.startswith(("'nonce-", "'sha256-", "'sha384-", "'sha512-")) for v in low):
            return False
        return "'unsafe-inline'" in low
    return True
