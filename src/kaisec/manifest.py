"""App manifests: the KaiOS 3 web manifest and the legacy ``manifest.webapp``.

Both formats are read into one frozen model, :class:`AppManifest`. Parsing
is strict (one JSON reading: duplicate keys refused, size and nesting
limited), then validated field by field with msgspec (strict types), then against the
permission table and the app's origin. Every problem is reported with the
path of its field, e.g. ``b2g_features.permissions.contacts.access: must be
one of readonly, readwrite, readcreate, createonly``.

What a manifest says about trust (``b2g_features.core``, the legacy
``type``) is only a *request*: the signature decides the class (see
``kaisec.package``). A permission the table does not know is reported as a
warning and never granted.

Unknown fields are kept (``extra``) and written back by :meth:`AppManifest.to_dict`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

from kaisec.errors import InvalidManifestError, InvalidOriginError
from kaisec.types import AppClass

__all__ = [
    "MANIFEST_FILENAMES",
    "AppManifest",
    "ManifestLimits",
    "PermissionRequest",
    "manifest_from_dict",
    "normalize_origin_name",
    "parse_manifest",
]

#: Where a package keeps its manifest (root of the ZIP or app folder), in order of preference.
MANIFEST_FILENAMES = ("manifest.webmanifest", "manifest.webapp")
#: Placeholder origin for checks before the real one is known (packaged apps get theirs at install).
PLACEHOLDER_ORIGIN = "http://app.localhost"
_VERSION = re.compile(r"^\d{1,9}(\.\d{1,9}){0,3}$")
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_ACCESS = ("readonly", "readwrite", "readcreate", "createonly")


@dataclass(frozen=True)
class ManifestLimits:
    """Bounds on an untrusted manifest."""

    max_size: int = 256 * 1024
    max_depth: int = 16
    max_permissions: int = 128
    max_string: int = 4096


@dataclass(frozen=True)
class PermissionRequest:
    """One entry of the manifest's ``permissions``."""

    name: str
    description: str
    access: str | None = None

    def to_dict(self) -> dict[str, str]:
        out = {"description": self.description}
        if self.access is not None:
            out["access"] = self.access
        return out


@dataclass(frozen=True)
class AppManifest:
    """A validated app manifest (immutable once built).

    ``requested_class`` is what the manifest asks for (None: nothing asked);
    ``origin_name`` the host label asked with ``b2g_features.origin``.
    """

    format: Literal["webmanifest", "webapp"]
    name: str
    start_url: str
    scope: str | None
    version: str | None
    description: str | None
    developer_name: str | None
    developer_url: str | None
    requested_class: AppClass | None
    origin_name: str | None
    permissions: Mapping[str, PermissionRequest]
    csp: str | None
    activities: Mapping[str, Any]
    messages: tuple[Mapping[str, str], ...]
    icons: tuple[Mapping[str, Any], ...]
    document: Mapping[str, Any] = field(repr=False, compare=False)
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)
    warnings: tuple[str, ...] = ()

    @property
    def asks_core(self) -> bool:
        return self.requested_class is AppClass.CORE

    def expanded_permissions(self) -> dict[str, tuple[str, ...]]:
        """Each requested permission the table knows, with the names it expands to."""
        from kaisec.permissions import default_table

        table = default_table()
        out: dict[str, tuple[str, ...]] = {}
        for name, req in self.permissions.items():
            row = table.find(name)
            if row is None or row.name != name:
                continue
            try:
                out[name] = row.expand(req.access)
            except ValueError:
                continue  # validated already; defensive
        return out

    def to_dict(self) -> dict[str, Any]:
        """The manifest in KaiOS 3 web-manifest form, unknown fields included."""
        doc: dict[str, Any] = dict(self.extra)
        doc["name"] = self.name
        doc["start_url"] = self.start_url
        if self.scope is not None:
            doc["scope"] = self.scope
        if self.description is not None:
            doc["description"] = self.description
        if self.icons:
            doc["icons"] = [dict(i) for i in self.icons]
        b2g: dict[str, Any] = dict(self.extra.get("b2g_features", {}))
        if self.version is not None:
            b2g["version"] = self.version
        if self.developer_name is not None or self.developer_url is not None:
            dev = {"name": self.developer_name, "url": self.developer_url}
            b2g["developer"] = {k: v for k, v in dev.items() if v is not None}
        if self.requested_class is AppClass.CORE:
            b2g["core"] = True
        elif self.requested_class is not None:
            b2g["type"] = {AppClass.SIGNED: "privileged", AppClass.PWA: "web"}[self.requested_class]
        if self.origin_name is not None:
            b2g["origin"] = self.origin_name
        if self.permissions:
            b2g["permissions"] = {n: p.to_dict() for n, p in self.permissions.items()}
        if self.csp is not None:
            b2g["csp"] = self.csp
        if self.activities:
            b2g["activities"] = dict(self.activities)
        if self.messages:
            b2g["messages"] = [dict(m) for m in self.messages]
        if b2g:
            doc["b2g_features"] = b2g
        return doc


def normalize_origin_name(value: str) -> str:
    """The host label of a requested origin: ``name``, ``name.localhost`` or ``http://name.localhost``.

    Raises:
        ValueError: not a single safe DNS label (lower-case letters, digits, hyphens).
    """
    text = value.strip()
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme not in ("http", "app") or parts.path not in ("", "/"):
            raise ValueError(f"expected http://<name>.localhost, got {value!r}")
        if parts.query or parts.fragment or parts.username or parts.port:
            raise ValueError(f"expected http://<name>.localhost, got {value!r}")
        text = parts.hostname or ""
    text = text.removesuffix(".localhost")
    if not _LABEL.match(text):
        raise ValueError(f"not a safe host label: {value!r}")
    return text


# --- parsing ------------------------------------------------------------------------


class _Problems:
    def __init__(self) -> None:
        self.items: list[tuple[str, str, bool]] = []  # (path, message, is_origin)
        self.warnings: list[str] = []

    def add(self, path: str, message: str, *, origin: bool = False) -> None:
        self.items.append((path or "(root)", message, origin))

    def raise_if_any(self, filename: str) -> None:
        if not self.items:
            return
        lines = [f"{p}: {m}" for p, m, _ in self.items]
        if all(o for _, _, o in self.items):
            raise InvalidOriginError(
                f"{filename}: {lines[0]}"
                + (f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""),
                problems=lines,
            )
        raise InvalidManifestError(
            f"{filename}: {len(lines)} problem{'s' if len(lines) > 1 else ''}: {lines[0]}",
            problems=lines,
        )


def parse_manifest(
    data: bytes,
    *,
    filename: str = "manifest.webmanifest",
    origin: str | None = None,
    limits: ManifestLimits | None = None,
) -> AppManifest:
    """Parse and validate an app manifest.

    Args:
        data: the manifest file's bytes (untrusted).
        filename: ``manifest.webapp`` selects the legacy format; anything else the KaiOS 3 one.
        origin: the app's origin (``scheme://host[:port]``) when known; URLs must stay on it.
        limits: size, nesting and count limits.

    Raises:
        InvalidManifestError: any problem (all of them in ``problems``).
        InvalidOriginError: the only problems are URLs leaving the app's origin.
    """
    from kaisec._internal.jsonstrict import JsonProblem, loads_strict

    lim = limits or ManifestLimits()
    try:
        doc = loads_strict(data, max_size=lim.max_size, max_depth=lim.max_depth)
    except JsonProblem as exc:
        raise InvalidManifestError(f"{filename}: {exc}", problems=[f"(root): {exc}"]) from exc
    return manifest_from_dict(doc, filename=filename, origin=origin, limits=lim)


def manifest_from_dict(
    doc: Any,
    *,
    filename: str = "manifest.webmanifest",
    origin: str | None = None,
    limits: ManifestLimits | None = None,
) -> AppManifest:
    """Validate an already-decoded manifest document (see :func:`parse_manifest`).

    Raises:
        InvalidManifestError: any problem (all of them in ``problems``).
        InvalidOriginError: the only problems are URLs leaving the app's origin.
    """
    from kaisec._internal import manifest_schema as schema

    lim = limits or ManifestLimits()
    problems = _Problems()
    if not isinstance(doc, dict):
        problems.add("", "a manifest must be a JSON object")
        problems.raise_if_any(filename)
    legacy = filename.rsplit("/", 1)[-1] == "manifest.webapp"
    fields = schema.validate(doc, legacy=legacy, add=problems.add, max_string=lim.max_string)
    if fields is None:
        problems.raise_if_any(filename)
        raise AssertionError("unreachable")  # pragma: no cover
    base = origin or PLACEHOLDER_ORIGIN
    _check_urls(fields, base, problems, legacy=legacy)
    requested = _requested_class(fields, problems, legacy=legacy)
    origin_name = _origin_name(fields, problems, legacy=legacy)
    perms = _permissions(fields, problems, lim, legacy=legacy)
    csp = fields.csp
    if csp is not None:
        from kaisec._internal.csp import CspProblem, parse_csp

        try:
            parse_csp(csp)
        except CspProblem as exc:
            problems.add(fields.csp_path, str(exc))
    if fields.version is not None and not _VERSION.match(fields.version):
        problems.add(
            fields.version_path, f"expected a dotted number like 1.2.0, got {fields.version!r}"
        )
    problems.raise_if_any(filename)
    return AppManifest(
        format="webapp" if legacy else "webmanifest",
        name=fields.name,
        start_url=fields.start_url,
        scope=fields.scope,
        version=fields.version,
        description=fields.description,
        developer_name=fields.developer_name,
        developer_url=fields.developer_url,
        requested_class=requested,
        origin_name=origin_name,
        permissions=MappingProxyType(perms),
        csp=csp,
        activities=MappingProxyType(dict(fields.activities)),
        messages=tuple(MappingProxyType(dict(m)) for m in fields.messages),
        icons=tuple(MappingProxyType(dict(i)) for i in fields.icons),
        document=MappingProxyType(doc),
        extra=MappingProxyType(fields.extra),
        warnings=tuple(problems.warnings),
    )


def _same_origin(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


def _check_url(value: str, path: str, base: str, problems: _Problems) -> str | None:
    if any(ord(c) < 0x21 or c == "\\" for c in value):
        problems.add(path, f"URL has whitespace, control characters or backslashes: {value!r}")
        return None
    scheme = urlsplit(value).scheme.lower()
    if scheme and scheme not in ("http", "https", "app"):
        problems.add(path, f"scheme {scheme!r} is not allowed: {value!r}", origin=True)
        return None
    if value.startswith("//"):
        problems.add(path, f"scheme-relative URL leaves the app's origin: {value!r}", origin=True)
        return None
    resolved = urljoin(base + "/", value)
    if not _same_origin(resolved, base):
        problems.add(path, f"must stay on the app's origin {base}, got {value!r}", origin=True)
        return None
    return resolved


def _check_urls(fields: Any, base: str, problems: _Problems, *, legacy: bool) -> None:
    start = _check_url(fields.start_url, fields.start_url_path, base, problems)
    scope = None
    if fields.scope is not None:
        scope = _check_url(fields.scope, "scope", base, problems)
    if start and scope and not urlsplit(start).path.startswith(urlsplit(scope).path):
        problems.add("start_url", f"{fields.start_url!r} is outside the scope {fields.scope!r}")
    for i, icon in enumerate(fields.icons):
        src = icon.get("src")
        if isinstance(src, str) and not src.startswith("data:"):
            _check_url(src, f"icons.{i}.src", base, problems)
    prefix = "" if legacy else "b2g_features."
    for name, act in fields.activities.items():
        href = act.get("href") if isinstance(act, dict) else None
        if isinstance(href, str):
            _check_url(href, f"{prefix}activities.{name}.href", base, problems)
    for i, msg in enumerate(fields.messages):
        for key, href in msg.items():
            _check_url(href, f"{prefix}messages.{i}.{key}", base, problems)


def _requested_class(fields: Any, problems: _Problems, *, legacy: bool) -> AppClass | None:
    asked: AppClass | None = None
    if fields.type is not None:
        try:
            asked = AppClass.from_legacy(fields.type)
        except ValueError:
            problems.add(
                fields.type_path,
                f"must be one of web, privileged, certified, got {fields.type!r}",
            )
    if fields.core:
        if asked not in (None, AppClass.CORE):
            problems.add("b2g_features.core", f"core: true contradicts type {fields.type!r}")
        asked = AppClass.CORE
    return asked


def _origin_name(fields: Any, problems: _Problems, *, legacy: bool) -> str | None:
    if fields.origin is None:
        return None
    try:
        if legacy and fields.origin.startswith("app://"):
            host = urlsplit(fields.origin).hostname or ""
            return normalize_origin_name(host.split(".", 1)[0])
        return normalize_origin_name(fields.origin)
    except ValueError as exc:
        problems.add(fields.origin_path, str(exc), origin=True)
        return None


def _permissions(
    fields: Any, problems: _Problems, lim: ManifestLimits, *, legacy: bool
) -> dict[str, PermissionRequest]:
    from kaisec.permissions import default_table

    table = default_table()
    prefix = "permissions" if legacy else "b2g_features.permissions"
    out: dict[str, PermissionRequest] = {}
    if len(fields.permissions) > lim.max_permissions:
        problems.add(prefix, f"more than {lim.max_permissions} permissions")
        return out
    for name, (description, access) in fields.permissions.items():
        path = f"{prefix}.{name}"
        if access is not None and access not in _ACCESS:
            problems.add(f"{path}.access", f"must be one of {', '.join(_ACCESS)}")
            continue
        row = table.rows.get(name)
        if row is None:
            problems.warnings.append(f"{path}: unknown permission {name!r}; it will not be granted")
            out[name] = PermissionRequest(name, description, access)
            continue
        try:
            row.expand(access)
        except ValueError as exc:
            problems.add(f"{path}.access", str(exc))
            continue
        out[name] = PermissionRequest(name, description, access)
    return out
