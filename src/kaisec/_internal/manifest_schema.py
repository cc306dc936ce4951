"""The field-level schema of both manifest formats (msgspec), behind ``kaisec.manifest``.

Types are strict (no coercion: ``"core": "true"`` is not ``true``); unknown
fields are allowed and kept. The result is a flat :class:`Fields` record
that the semantic checks in ``kaisec.manifest`` work on, with the path each
value came from so problems name the right field in either format.

msgspec decides what is valid: one ``msgspec.convert(..., strict=True)``
over the whole document. It stops at the first problem, so when it refuses,
``_explain`` walks the document against the same types to report every
problem with its full path (msgspec writes ``[...]`` for a mapping key; the
walk names the key). The walk only explains a refusal and never accepts
anything: it is hand-written because msgspec has no "collect all errors"
mode. (msgspec over pydantic: ``kaisec verify`` validates one manifest per
process, and pydantic's import and schema build cost ~110 ms of start-up;
msgspec's ~5 ms. docs/benchmarks.md.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import UnionType
from typing import Annotated, Any, get_args, get_origin

import msgspec
from msgspec import Meta, Struct

__all__ = ["Fields", "validate"]

_Str = Annotated[str, Meta(max_length=4096)]
_NonEmpty = Annotated[str, Meta(min_length=1, max_length=4096)]


class _Permission(Struct, forbid_unknown_fields=True):
    description: _NonEmpty
    access: _Str | None = None


class _Developer(Struct):
    name: _Str | None = None
    url: _Str | None = None


class _Icon(Struct):
    src: _NonEmpty
    sizes: _Str | None = None
    type: _Str | None = None


class _B2G(Struct):
    permissions: dict[_NonEmpty, _Permission] = {}
    core: bool = False
    type: _Str | None = None
    origin: _Str | None = None
    version: _Str | None = None
    developer: _Developer | None = None
    activities: dict[_NonEmpty, dict[str, Any]] = {}
    messages: list[dict[_NonEmpty, _Str]] = []
    csp: _Str | None = None


class _WebManifest(Struct):
    name: _Str | None = None
    short_name: _Str | None = None
    start_url: _NonEmpty = "/"
    scope: _NonEmpty | None = None
    description: _Str | None = None
    icons: list[_Icon] = []
    b2g_features: _B2G | None = None
    csp: _Str | None = None


class _LegacyManifest(Struct):
    name: _Str | None = None
    description: _Str | None = None
    launch_path: _NonEmpty = "/"
    type: _Str | None = None
    permissions: dict[_NonEmpty, _Permission] = {}
    csp: _Str | None = None
    origin: _Str | None = None
    version: _Str | None = None
    developer: _Developer | None = None
    activities: dict[_NonEmpty, dict[str, Any]] = {}
    messages: list[dict[_NonEmpty, _Str]] = []
    icons: dict[_NonEmpty, _NonEmpty] = {}


@dataclass
class Fields:
    """The validated fields, format-neutral, with their source paths."""

    name: str
    start_url: str
    start_url_path: str
    scope: str | None
    description: str | None
    version: str | None
    version_path: str
    developer_name: str | None
    developer_url: str | None
    type: str | None
    type_path: str
    core: bool
    origin: str | None
    origin_path: str
    permissions: dict[str, tuple[str, str | None]]
    csp: str | None
    csp_path: str
    activities: dict[str, dict[str, Any]]
    messages: list[dict[str, str]]
    icons: list[dict[str, Any]]
    extra: dict[str, Any] = field(default_factory=dict)


def validate(
    doc: dict[str, Any], *, legacy: bool, add: Callable[[str, str], None], max_string: int
) -> Fields | None:
    """Check field types; report each problem through ``add(path, message)``; None if any."""
    model: type[Struct] = _LegacyManifest if legacy else _WebManifest
    try:
        parsed = msgspec.convert(doc, model, strict=True)
    except msgspec.ValidationError as exc:
        problems = _explain(doc, model, ())
        if not problems:  # pragma: no cover - the walk mirrors msgspec; keep its word anyway
            problems = [_split(str(exc), ())]
        for path, message in problems:
            add(path, message)
        return None
    if isinstance(parsed, _LegacyManifest):
        return _from_legacy(parsed, _extra(doc, _LegacyManifest), add)
    assert isinstance(parsed, _WebManifest)
    return _from_web(parsed, doc, add)


# --- explaining a refusal -------------------------------------------------------------

_Path = tuple[str | int, ...]


def _dotted(path: _Path) -> str:
    return ".".join(str(p) for p in path) or "(root)"


def _split(message: str, path: _Path) -> tuple[str, str]:
    # msgspec's "Expected `str`, got `int` - at `$.x`" (or "... - at `key` in `$.x`" for
    # a mapping key): the message, and the path it gives relative to the value converted.
    text, sep, where = message.rpartition(" - at ")
    if not sep:
        return _dotted(path), message
    key = where.startswith("`key` in ")
    rest = where.removeprefix("`key` in ").strip("`").removeprefix("$")
    tail = tuple(p for p in rest.replace("[", ".").replace("]", "").split(".") if p)
    return _dotted(path + tail), f"{text} (a key)" if key else text


def _explain(value: Any, typ: Any, path: _Path) -> list[tuple[str, str]]:
    """Every problem of ``value`` against ``typ``, each with its full path."""
    origin = get_origin(typ)
    if origin is UnionType and type(None) in get_args(typ):
        if value is None:
            return []
        (typ,) = (a for a in get_args(typ) if a is not type(None))  # one type or None here
        origin = get_origin(typ)
    if isinstance(typ, type) and issubclass(typ, Struct):
        if not isinstance(value, dict):
            return [(_dotted(path), f"Expected `object`, got `{_kind(value)}`")]
        out: list[tuple[str, str]] = []
        known = set()
        for info in msgspec.structs.fields(typ):
            known.add(info.encode_name)
            if info.encode_name in value:
                out += _explain(value[info.encode_name], info.type, (*path, info.encode_name))
            elif info.required:
                out.append((_dotted((*path, info.encode_name)), "Field required"))
        if typ.__struct_config__.forbid_unknown_fields:
            out += [(_dotted((*path, str(k))), "Unknown field") for k in value if k not in known]
        return out
    if origin is dict and isinstance(value, dict):
        key_type, value_type = get_args(typ)
        out = []
        for k, v in value.items():
            out += [(p, f"{m} (a key)") for p, m in _leaf(k, key_type, (*path, str(k)))]
            out += _explain(v, value_type, (*path, str(k)))
        return out
    if origin is list and isinstance(value, list):
        (item_type,) = get_args(typ)
        out = []
        for i, item in enumerate(value):
            out += _explain(item, item_type, (*path, i))
        return out
    return _leaf(value, typ, path)


def _leaf(value: Any, typ: Any, path: _Path) -> list[tuple[str, str]]:
    try:
        msgspec.convert(value, typ, strict=True)
    except msgspec.ValidationError as exc:
        return [_split(str(exc), path)]
    return []


def _kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "str", bool: "bool", type(None): "null"}.get(
        type(value), type(value).__name__
    )


# --- the format-neutral record --------------------------------------------------------


def _extra(doc: Any, model: type[Struct]) -> dict[str, Any]:
    if not isinstance(doc, dict):
        return {}
    known = {f.encode_name for f in msgspec.structs.fields(model)}
    return {k: v for k, v in doc.items() if k not in known}


def _name(name: str | None, short: str | None, add: Callable[[str, str], None]) -> str:
    value = (name or short or "").strip()
    if not value:
        add("name", "a non-empty name (or short_name) is required")
    return value


def _perms(raw: dict[str, _Permission]) -> dict[str, tuple[str, str | None]]:
    return {k: (v.description, v.access) for k, v in raw.items()}


def _icons(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # The validated icon objects as given, unknown fields ("purpose") included.
    return [{k: v for k, v in icon.items() if v is not None} for icon in raw]


def _from_web(m: _WebManifest, doc: dict[str, Any], add: Callable[[str, str], None]) -> Fields:
    b2g = m.b2g_features or _B2G()
    extra = _extra(doc, _WebManifest)
    if m.short_name is not None:
        extra["short_name"] = m.short_name
    b2g_extra = _extra(doc.get("b2g_features"), _B2G)
    if b2g_extra:
        extra["b2g_features"] = b2g_extra
    csp, csp_path = b2g.csp, "b2g_features.csp"
    if m.csp is not None:
        if csp is not None and csp != m.csp:
            add("csp", "differs from b2g_features.csp; give one policy")
        csp, csp_path = m.csp, "csp"
    dev = b2g.developer or _Developer()
    return Fields(
        name=_name(m.name, m.short_name, add),
        start_url=m.start_url,
        start_url_path="start_url",
        scope=m.scope,
        description=m.description,
        version=b2g.version,
        version_path="b2g_features.version",
        developer_name=dev.name,
        developer_url=dev.url,
        type=b2g.type,
        type_path="b2g_features.type",
        core=b2g.core,
        origin=b2g.origin,
        origin_path="b2g_features.origin",
        permissions=_perms(b2g.permissions),
        csp=csp,
        csp_path=csp_path,
        activities=b2g.activities,
        messages=b2g.messages,
        icons=_icons(doc.get("icons") or []),
        extra=extra,
    )


def _from_legacy(
    m: _LegacyManifest, extra: dict[str, Any], add: Callable[[str, str], None]
) -> Fields:
    dev = m.developer or _Developer()
    icons = [
        {"src": src, "sizes": f"{size}x{size}" if size.isdigit() else size}
        for size, src in sorted(m.icons.items())
    ]
    return Fields(
        name=_name(m.name, None, add),
        start_url=m.launch_path,
        start_url_path="launch_path",
        scope=None,
        description=m.description,
        version=m.version,
        version_path="version",
        developer_name=dev.name,
        developer_url=dev.url,
        type=m.type,
        type_path="type",
        core=False,
        origin=m.origin,
        origin_path="origin",
        permissions=_perms(m.permissions),
        csp=m.csp,
        csp_path="csp",
        activities=m.activities,
        messages=m.messages,
        icons=icons,
        extra=extra,
    )
