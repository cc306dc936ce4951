"""Manifest checks: validation problems with their field paths and lines, permissions per class.

``kaisec.manifest.parse_manifest`` is the one judge of validity; this module
turns each of its problems (``"path: message"``) into a finding at the line
of that field. Lines come from ``_json_positions``, a small JSON reader that
records where each key (and each array item) starts; it is tolerant, so a
document ``json`` refuses still yields the positions before the fault.

Permission findings are computed from the raw document too, so they are
reported even when some other field makes the manifest invalid.
"""

from __future__ import annotations

import contextlib
import difflib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kaisec.errors import KaisecError
from kaisec.lint._model import Finding, LineIndex, LintContext, Severity
from kaisec.permissions import ACCESS_MODES, default_table
from kaisec.types import Action, AppClass

if TYPE_CHECKING:
    from kaisec.manifest import AppManifest

__all__ = ["ManifestLint", "json_positions", "lint_manifest"]

_MAX_DEPTH = 64
_WS = " \t\n\r"
_LITERAL_STOP = frozenset(_WS + ",]}:")


@dataclass
class _Positions:
    at: dict[str, int] = field(default_factory=dict)  # path -> offset of its key or item
    duplicates: dict[str, int] = field(default_factory=dict)  # path -> offset of the 2nd key


class _JsonWalk:
    """Where each member key and array item of a JSON text starts; stops at the first fault."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.out = _Positions()

    def skip(self) -> None:
        while self.i < len(self.text) and self.text[self.i] in _WS:
            self.i += 1

    def string(self) -> str:
        text, j = self.text, self.i + 1
        while j < len(text) and text[j] != '"':
            j += 2 if text[j] == "\\" else 1
        if j >= len(text):
            raise ValueError("unterminated string")
        raw = text[self.i : j + 1]
        self.i = j + 1
        try:
            value = json.loads(raw)
        except ValueError:
            return raw[1:-1]
        return value if isinstance(value, str) else raw[1:-1]

    def value(self, path: str, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise ValueError("too deep")
        self.skip()
        if self.i >= len(self.text):
            raise ValueError("end of text")
        ch = self.text[self.i]
        if ch == "{":
            self.i += 1
            self.members(path, depth)
        elif ch == "[":
            self.i += 1
            self.items(path, depth)
        elif ch == '"':
            self.string()
        else:
            start = self.i
            while self.i < len(self.text) and self.text[self.i] not in _LITERAL_STOP:
                self.i += 1
            if self.i == start:
                raise ValueError("expected a value")

    def members(self, path: str, depth: int) -> None:
        self.skip()
        if self.text.startswith("}", self.i):
            self.i += 1
            return
        while True:
            self.skip()
            if not self.text.startswith('"', self.i):
                raise ValueError("expected a key")
            offset = self.i
            key = self.string()
            child = f"{path}.{key}" if path else key
            if child in self.out.at:
                self.out.duplicates.setdefault(child, offset)
            else:
                self.out.at[child] = offset
            self.skip()
            if not self.text.startswith(":", self.i):
                raise ValueError("expected ':'")
            self.i += 1
            self.value(child, depth + 1)
            self.skip()
            if self.text.startswith(",", self.i):
                self.i += 1
                continue
            if self.text.startswith("}", self.i):
                self.i += 1
                return
            raise ValueError("expected ',' or '}'")

    def items(self, path: str, depth: int) -> None:
        self.skip()
        if self.text.startswith("]", self.i):
            self.i += 1
            return
        index = 0
        while True:
            self.skip()
            child = f"{path}.{index}" if path else str(index)
            self.out.at.setdefault(child, self.i)
            self.value(child, depth + 1)
            index += 1
            self.skip()
            if self.text.startswith(",", self.i):
                self.i += 1
                continue
            if self.text.startswith("]", self.i):
                self.i += 1
                return
            raise ValueError("expected ',' or ']'")


def json_positions(text: str) -> tuple[dict[str, int], dict[str, int]]:
    """Offsets of every dotted field path (``b2g_features.permissions.camera``, ``icons.0.src``).

    Returns ``(positions, duplicates)``: the offset of each path's key (or
    array item), and of the second occurrence of each duplicated key.
    Never raises: on malformed JSON, the paths before the fault.
    """
    walk = _JsonWalk(text)
    with contextlib.suppress(ValueError, IndexError):
        walk.value("", 0)
    return walk.out.at, walk.out.duplicates


@dataclass
class ManifestLint:
    """What the manifest checks found, and what the other checks need from the manifest."""

    findings: list[Finding]
    manifest: AppManifest | None
    app_class: AppClass
    class_source: str  # "option", "manifest" or "default"
    origin_name: str | None
    csp: dict[str, list[str]] | None


class _Reporter:
    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.lines = LineIndex(text)
        self.positions, self.duplicates = json_positions(text)
        self.findings: list[Finding] = []
        self.covered: set[str] = set()  # paths whose problem a specific finding already reports

    def where(self, path: str) -> tuple[int, int]:
        probe = path
        while probe and probe != "(root)":
            if probe in self.positions:
                return self.lines.position(self.positions[probe])
            if "." not in probe:
                break
            probe = probe.rsplit(".", 1)[0]
        return 1, 1

    def add(self, severity: Severity, code: str, path: str, message: str, hint: str = "") -> None:
        line, column = self.where(path)
        self.findings.append(Finding(severity, code, self.file, line, column, message, hint))


def _parse_problem(problem: str) -> tuple[str, str]:
    path, sep, message = problem.partition(": ")
    if not sep or " " in path:
        return "(root)", problem
    return path, message


def _raw_class(doc: Any, legacy: bool) -> AppClass | None:
    if not isinstance(doc, dict):
        return None
    b2g = doc if legacy else doc.get("b2g_features")
    if not isinstance(b2g, dict):
        return None
    if b2g.get("core") is True and not legacy:
        return AppClass.CORE
    kind = b2g.get("type")
    if isinstance(kind, str):
        try:
            return AppClass.from_legacy(kind)
        except ValueError:
            return None
    return None


def _raw_origin(doc: Any, legacy: bool) -> str | None:
    from kaisec.manifest import normalize_origin_name

    b2g = doc if legacy else (doc.get("b2g_features") if isinstance(doc, dict) else None)
    value = b2g.get("origin") if isinstance(b2g, dict) else None
    if not isinstance(value, str):
        return None
    try:
        if legacy and value.startswith("app://"):
            return normalize_origin_name(value[len("app://") :].split(".", 1)[0].split("/")[0])
        return normalize_origin_name(value)
    except ValueError:
        return None


def _json_problem_line(rep: _Reporter, exc: KaisecError) -> tuple[int, int]:
    cause = exc.__cause__
    while cause is not None and not isinstance(cause, json.JSONDecodeError):
        cause = cause.__cause__
    if isinstance(cause, json.JSONDecodeError):
        return cause.lineno, cause.colno
    if rep.duplicates:
        offset = min(rep.duplicates.values())
        return rep.lines.position(offset)
    return 1, 1


def _check_permissions(rep: _Reporter, doc: Any, legacy: bool, cls: AppClass) -> None:
    table = default_table()
    prefix = "permissions" if legacy else "b2g_features.permissions"
    holder = doc if legacy else doc.get("b2g_features")
    perms = holder.get("permissions") if isinstance(holder, dict) else None
    if not isinstance(perms, dict):
        return
    one = "PWA" if cls is AppClass.PWA else f"{cls.value} app"
    for name, spec in perms.items():
        if not isinstance(spec, dict):
            continue  # a type problem: parse_manifest reports it
        path = f"{prefix}.{name}"
        desc = spec.get("description")
        if desc is None or desc == "":
            rep.covered.add(f"{path}.description")
            rep.add(
                "error",
                "MISSING_DESCRIPTION",
                path,
                f"{path}: a description is required (the user sees it when asked)",
                'say what the app does with it, e.g. "to attach photos to contacts"',
            )
        elif isinstance(desc, str) and not desc.strip():
            rep.add(
                "warning",
                "MISSING_DESCRIPTION",
                f"{path}.description",
                f"{path}.description: blank; the user sees it when asked",
                "say what the app does with it",
            )
        access = spec.get("access")
        if access is not None and not isinstance(access, str):
            continue  # a type problem: parse_manifest reports it
        access_path = f"{path}.access" if "access" in spec else path
        if isinstance(access, str) and access not in ACCESS_MODES:
            rep.covered.add(f"{path}.access")
            rep.add(
                "error",
                "ACCESS_MODE",
                access_path,
                f"{path}.access: {access!r} is not an access mode",
                f"use one of {', '.join(ACCESS_MODES)}",
            )
            continue
        row = table.rows.get(name)
        if row is None:
            _unknown(rep, path, name)
            continue
        try:
            expanded = row.expand(access)
        except ValueError as exc:
            rep.covered.add(f"{path}.access")
            modes = ", ".join(row.access_modes) or "none (omit access)"
            rep.add(
                "error",
                "ACCESS_MODE",
                access_path,
                f"{path}.access: {exc}",
                f"access modes of {name}: {modes}",
            )
            continue
        by_action: dict[Action, list[str]] = {}
        for expanded_name in expanded:
            action = row.initial_action(cls)
            if row.action_for(cls) is Action.DENY:
                action = Action.DENY
            by_action.setdefault(action, []).append(expanded_name)
        denied = by_action.get(Action.DENY)
        if denied:
            allowed_in = [c.value for c in AppClass if row.action_for(c) is not Action.DENY]
            rep.add(
                "warning",
                "PERMISSION_DENIED_FOR_CLASS",
                path,
                f"{', '.join(denied)}: {table.explain(denied[0], cls)}; it will not be granted",
                (
                    f"available to {', '.join(allowed_in)} apps; or drop it from the manifest"
                    if allowed_in
                    else "no class gets it; drop it from the manifest"
                ),
            )
        asked = by_action.get(Action.PROMPT)
        if asked:
            rep.add(
                "warning",
                "PERMISSION_PROMPT",
                path,
                f"{', '.join(asked)}: the user will be asked at first use ({one})",
                "handle a refusal gracefully; the user can also change the answer later",
            )


def _unknown(rep: _Reporter, path: str, name: str) -> None:
    table = default_table()
    row = table.find(name)
    if row is not None:
        hint = f"ask for {row.name!r} with an access mode instead of the expanded name"
    elif name in table.default_permissions:
        hint = "every installed app has it already; remove it from the manifest"
    else:
        close = difflib.get_close_matches(name, list(table.rows), n=3, cutoff=0.7)
        hint = (
            f"did you mean {' or '.join(repr(c) for c in close)}?"
            if close
            else ("see `kaisec perms` and docs/security-model.md for the table's names")
        )
    rep.covered.add(path)
    rep.add(
        "warning",
        "UNKNOWN_PERMISSION",
        path,
        f"{path}: unknown permission {name!r}; it will never be granted",
        hint,
    )


def _raw_csp(doc: Any, legacy: bool) -> tuple[str, str] | None:
    """The manifest's policy and its field path, as ``kaisec.manifest`` picks it."""
    if not isinstance(doc, dict):
        return None
    if isinstance(doc.get("csp"), str):
        return doc["csp"], "csp"
    b2g = doc.get("b2g_features")
    if not legacy and isinstance(b2g, dict) and isinstance(b2g.get("csp"), str):
        return b2g["csp"], "b2g_features.csp"
    return None


def _check_csp(
    rep: _Reporter, doc: Any, legacy: bool, cls: AppClass
) -> dict[str, list[str]] | None:
    from kaisec._internal.csp import CspProblem, parse_csp

    found = _raw_csp(doc, legacy)
    if found is None:
        return None
    text, path = found
    try:
        policy = parse_csp(text)
    except CspProblem:
        return None  # parse_manifest reported it
    script_loose: tuple[str, ...] = ("'unsafe-inline'", "'unsafe-eval'", "'wasm-unsafe-eval'")
    script_loose += ("'unsafe-hashes'", "*", "http:", "https:", "data:", "blob:")
    checks: list[tuple[str, tuple[str, ...], tuple[str, ...] | None]] = [
        ("script-src", ("script-src", "default-src"), script_loose),
        ("object-src", ("object-src", "default-src"), None),  # anything but 'none'
    ]
    if cls is AppClass.CORE:
        checks.append(("style-src", ("style-src", "default-src"), ("'unsafe-inline'",)))
    for directive, chain, loose in checks:
        name = next((d for d in chain if d in policy), None)
        if name is None:
            continue
        values = [v.lower() for v in policy[name]]
        if loose is None:
            bad = [v for v in values if v != "'none'"]
        else:
            bad = [v for v in values if v in loose]
        if bad:
            rep.add(
                "warning",
                "CSP_UNSAFE",
                path,
                f"{path}: {' '.join(bad)} in {name} cannot loosen the {cls.value} class "
                f"policy for {directive} (both policies apply); it has no effect",
                "remove it; the manifest's csp can only tighten the class policy",
            )
    return policy


def lint_manifest(
    file: str,
    data: bytes,
    *,
    target: AppClass | None,
    files: frozenset[str],
) -> ManifestLint:
    """Check the app manifest ``file`` (its bytes ``data``) for the target class.

    The class is ``target`` when given, else what the manifest asks, else
    ``signed`` (a packaged app is at least signed-policy for its CSP).
    """
    from kaisec._internal.jsonstrict import JsonProblem, loads_strict
    from kaisec.errors import ManifestError
    from kaisec.manifest import ManifestLimits, parse_manifest

    legacy = file.rsplit("/", 1)[-1] == "manifest.webapp"
    text = data.decode("utf-8", errors="replace").removeprefix("\ufeff")
    rep = _Reporter(file, text)
    limits = ManifestLimits()
    doc: Any = None
    with contextlib.suppress(JsonProblem):
        doc = loads_strict(data, max_size=limits.max_size, max_depth=limits.max_depth)
    manifest: AppManifest | None = None
    problems: list[str] = []
    try:
        manifest = parse_manifest(data, filename=file)
    except ManifestError as exc:
        raw = exc.details.get("problems")
        problems = [str(p) for p in raw] if isinstance(raw, list) and raw else [exc.message]
        if doc is None:  # the JSON itself: report once, where json says
            line, column = _json_problem_line(rep, exc)
            message = problems[0].removeprefix("(root): ")
            rep.findings.append(
                Finding(
                    "error",
                    "MANIFEST",
                    file,
                    line,
                    column,
                    f"{file}: {message}",
                    "fix the JSON; kaisec reads manifests strictly (no duplicate keys)",
                )
            )
            problems = []

    # The class.
    asked = manifest.requested_class if manifest is not None else _raw_class(doc, legacy)
    if target is not None:
        cls, source = target, "option"
        if asked is not None and asked.rank > target.rank:
            path = (
                "type"
                if legacy
                else ("b2g_features.core" if asked is AppClass.CORE else "b2g_features.type")
            )
            rep.add(
                "error",
                "CLASS_MISMATCH",
                path,
                f"the manifest asks for {asked.value!r} but --class is {target.value!r}: a "
                f"package whose signature proves only {target.value!r} is refused "
                f"(INVALID_SECURITY_LEVEL)",
                f"sign it for {asked.value}, or lower what the manifest asks",
            )
    elif asked is not None:
        cls, source = asked, "manifest"
    else:
        cls, source = AppClass.SIGNED, "default"

    if isinstance(doc, dict):
        _check_permissions(rep, doc, legacy, cls)
    for problem in problems:
        path, message = _parse_problem(problem)
        if path in rep.covered or any(path.startswith(c + ".") for c in rep.covered):
            continue
        rep.add(
            "error",
            "MANIFEST",
            path,
            f"{path}: {message}",
            "see docs/install.md for the manifest fields kaisec reads",
        )
    if manifest is not None:
        for warning in manifest.warnings:
            path, message = _parse_problem(warning)
            if path not in rep.covered:
                rep.add("warning", "MANIFEST", path, f"{path}: {message}")
    csp = _check_csp(rep, doc, legacy, cls)

    origin_name = manifest.origin_name if manifest is not None else _raw_origin(doc, legacy)
    if isinstance(doc, dict):
        _check_files(rep, doc, LintContext(cls, files, origin_name), legacy)
    rep.findings.sort(key=lambda f: (f.line or 0, f.column or 0))
    return ManifestLint(rep.findings, manifest, cls, source, origin_name, csp)


def _check_files(rep: _Reporter, doc: dict[str, Any], ctx: LintContext, legacy: bool) -> None:
    start_key = "launch_path" if legacy else "start_url"
    start = doc.get(start_key, "/")
    refs: list[tuple[str, object, Severity]] = [(start_key, start, "error")]
    icons = doc.get("icons")
    if isinstance(icons, dict):  # legacy: {"56": "/icon.png"}
        refs.extend((f"icons.{size}", src, "warning") for size, src in icons.items())
    elif isinstance(icons, list):
        for i, icon in enumerate(icons):
            if isinstance(icon, dict):
                refs.append((f"icons.{i}.src", icon.get("src"), "warning"))
    for path, url, severity in refs:
        if not isinstance(url, str) or url.startswith("data:"):
            continue
        entry = ctx.local_entry(url, "")
        if entry is not None and entry not in ctx.files:
            rep.add(
                severity,
                "MISSING_FILE",
                path,
                f"{path}: {url!r} names {entry!r}, which is not in the app",
                "add the file to the app, or fix the URL (relative to the app's root)",
            )
