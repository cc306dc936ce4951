"""The field-level schema of both manifest formats (pydantic), behind ``kaisec.manifest``.

Types are strict (no coercion: ``"core": "true"`` is not ``true``); unknown
fields are allowed and kept. The result is a flat :class:`Fields` record
that the semantic checks in ``kaisec.manifest`` work on, with the path each
value came from so problems name the right field in either format.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

__all__ = ["Fields", "validate"]

_Str = Annotated[str, StringConstraints(max_length=4096)]
_NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=4096, strip_whitespace=False)]
_STRICT = ConfigDict(strict=True, extra="allow")


class _Permission(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    description: _NonEmpty
    access: _Str | None = None


class _Developer(BaseModel):
    model_config = _STRICT
    name: _Str | None = None
    url: _Str | None = None


class _Icon(BaseModel):
    model_config = _STRICT
    src: _NonEmpty
    sizes: _Str | None = None
    type: _Str | None = None


class _B2G(BaseModel):
    model_config = _STRICT
    permissions: dict[_NonEmpty, _Permission] = Field(default_factory=dict)
    core: bool = False
    type: _Str | None = None
    origin: _Str | None = None
    version: _Str | None = None
    developer: _Developer | None = None
    activities: dict[_NonEmpty, dict[str, Any]] = Field(default_factory=dict)
    messages: list[dict[_NonEmpty, _Str]] = Field(default_factory=list)
    csp: _Str | None = None


class _WebManifest(BaseModel):
    model_config = _STRICT
    name: _Str | None = None
    short_name: _Str | None = None
    start_url: _NonEmpty = "/"
    scope: _NonEmpty | None = None
    description: _Str | None = None
    icons: list[_Icon] = Field(default_factory=list)
    b2g_features: _B2G | None = None
    csp: _Str | None = None


class _LegacyManifest(BaseModel):
    model_config = _STRICT
    name: _Str | None = None
    description: _Str | None = None
    launch_path: _NonEmpty = "/"
    type: _Str | None = None
    permissions: dict[_NonEmpty, _Permission] = Field(default_factory=dict)
    csp: _Str | None = None
    origin: _Str | None = None
    version: _Str | None = None
    developer: _Developer | None = None
    activities: dict[_NonEmpty, dict[str, Any]] = Field(default_factory=dict)
    messages: list[dict[_NonEmpty, _Str]] = Field(default_factory=list)
    icons: dict[_NonEmpty, _NonEmpty] = Field(default_factory=dict)


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


def _path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(root)"


def validate(
    doc: dict[str, Any], *, legacy: bool, add: Callable[[str, str], None], max_string: int
) -> Fields | None:
    """Check field types; report each problem through ``add(path, message)``; None if any."""
    model: type[BaseModel] = _LegacyManifest if legacy else _WebManifest
    try:
        parsed = model.model_validate(doc)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            add(_path(err["loc"]), err["msg"])
        return None
    if isinstance(parsed, _LegacyManifest):
        return _from_legacy(parsed, add)
    assert isinstance(parsed, _WebManifest)
    return _from_web(parsed, add)


def _name(name: str | None, short: str | None, add: Callable[[str, str], None]) -> str:
    value = (name or short or "").strip()
    if not value:
        add("name", "a non-empty name (or short_name) is required")
    return value


def _perms(raw: dict[str, _Permission]) -> dict[str, tuple[str, str | None]]:
    return {k: (v.description, v.access) for k, v in raw.items()}


def _from_web(m: _WebManifest, add: Callable[[str, str], None]) -> Fields:
    b2g = m.b2g_features or _B2G()
    extra = dict(m.model_extra or {})
    if m.short_name is not None:
        extra["short_name"] = m.short_name
    if b2g.model_extra:
        extra["b2g_features"] = dict(b2g.model_extra)
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
        icons=[i.model_dump(exclude_none=True) for i in m.icons],
        extra=extra,
    )


def _from_legacy(m: _LegacyManifest, add: Callable[[str, str], None]) -> Fields:
    extra = dict(m.model_extra or {})
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
