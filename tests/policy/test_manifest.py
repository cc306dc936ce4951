"""Manifest parsing and validation: both formats, every problem with its field path."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kaisec._internal import manifest_schema
from kaisec.errors import InvalidManifestError, InvalidOriginError, KaisecError
from kaisec.manifest import parse_manifest
from kaisec.types import AppClass


def doc(**b2g: Any) -> dict[str, Any]:
    return {"name": "App", "start_url": "/index.html", "b2g_features": b2g}


def enc(d: Any) -> bytes:
    return json.dumps(d).encode()


def perm(description: str = "why", access: str | None = None) -> dict[str, str]:
    return {"description": description} | ({"access": access} if access else {})


BAD: list[tuple[str, bytes, str, str]] = [
    ("access-not-a-mode", enc(doc(permissions={"contacts": perm(access="all")})),
     "INVALID_MANIFEST",
     "b2g_features.permissions.contacts.access: must be one of readonly, readwrite, readcreate, createonly"),
    ("access-missing", enc(doc(permissions={"contacts": perm()})), "INVALID_MANIFEST",
     "b2g_features.permissions.contacts.access"),
    ("access-where-none", enc(doc(permissions={"geolocation": perm(access="readonly")})),
     "INVALID_MANIFEST", "b2g_features.permissions.geolocation.access"),
    ("access-expands-to-nothing", enc(doc(permissions={"settings": perm(access="createonly")})),
     "INVALID_MANIFEST", "b2g_features.permissions.settings.access"),
    ("no-description", enc(doc(permissions={"camera": {}})), "INVALID_MANIFEST",
     "b2g_features.permissions.camera.description"),
    ("empty-description", enc(doc(permissions={"camera": {"description": ""}})),
     "INVALID_MANIFEST", "b2g_features.permissions.camera.description"),
    ("unknown-permission-field", enc(doc(permissions={"camera": perm() | {"x": 1}})),
     "INVALID_MANIFEST", "b2g_features.permissions.camera.x"),
    ("no-name", enc({"start_url": "/"}), "INVALID_MANIFEST", "name"),
    ("blank-name", enc({"name": "  "}), "INVALID_MANIFEST", "name"),
    ("name-not-string", enc({"name": 5}), "INVALID_MANIFEST", "name"),
    ("core-as-string", enc(doc(core="true")), "INVALID_MANIFEST", "b2g_features.core"),
    ("duplicate-key", b'{"name": "a", "b2g_features": {"core": false, "core": true}}',
     "INVALID_MANIFEST", "duplicate key 'core'"),
    ("not-object", b"[]", "INVALID_MANIFEST", "(root)"),
    ("not-json", b"{name: 1}", "INVALID_MANIFEST", "malformed JSON"),
    ("not-utf8", b'{"name": "\xff"}', "INVALID_MANIFEST", "not UTF-8"),
    ("nan", b'{"name": "a", "x": NaN}', "INVALID_MANIFEST", "NaN"),
    ("too-deep", b'{"name": "a", "x": ' + b"[" * 40 + b"]" * 40 + b"}", "INVALID_MANIFEST",
     "nested deeper"),
    ("too-big", enc({"name": "a", "pad": "x" * 300_000}), "INVALID_MANIFEST", "larger than"),
    ("bad-csp", enc(doc(csp="script-src 'self'; bogus-directive x")), "INVALID_MANIFEST",
     "b2g_features.csp: unknown directive"),
    ("csp-comma", enc(doc(csp="script-src 'self', default-src *")), "INVALID_MANIFEST",
     "comma"),
    ("two-csps", enc({"name": "a", "csp": "default-src 'self'",
                      "b2g_features": {"csp": "default-src *"}}), "INVALID_MANIFEST", "csp"),
    ("bad-version", enc(doc(version="1.0-beta")), "INVALID_MANIFEST", "b2g_features.version"),
    ("bad-type", enc(doc(type="superuser")), "INVALID_MANIFEST", "b2g_features.type"),
    ("core-vs-type", enc(doc(core=True, type="web")), "INVALID_MANIFEST", "b2g_features.core"),
    ("start-outside-scope", enc({"name": "a", "start_url": "/app/", "scope": "/other/"}),
     "INVALID_MANIFEST", "start_url"),
    ("messages-not-list", enc(doc(messages={"a": "/b"})), "INVALID_MANIFEST",
     "b2g_features.messages"),
    # origin problems alone give INVALID_ORIGIN
    ("cross-origin-start", enc({"name": "a", "start_url": "https://evil.example/"}),
     "INVALID_ORIGIN", "start_url"),
    ("scheme-relative-start", enc({"name": "a", "start_url": "//evil.example/x"}),
     "INVALID_ORIGIN", "start_url"),
    ("javascript-start", enc({"name": "a", "start_url": "javascript:alert(1)"}),
     "INVALID_ORIGIN", "start_url"),
    ("cross-origin-scope", enc({"name": "a", "scope": "https://evil.example/"}),
     "INVALID_ORIGIN", "scope"),
    ("cross-origin-activity", enc(doc(activities={"share": {"href": "https://evil.example/"}})),
     "INVALID_ORIGIN", "b2g_features.activities.share.href"),
    ("cross-origin-message", enc(doc(messages=[{"alarm": "http://x.localhost.evil.example/"}])),
     "INVALID_ORIGIN", "b2g_features.messages.0.alarm"),
    ("cross-origin-icon", enc({"name": "a", "icons": [{"src": "https://evil.example/i.png"}]}),
     "INVALID_ORIGIN", "icons.0.src"),
    ("bad-origin-name", enc(doc(origin="Evil_Name!")), "INVALID_ORIGIN", "b2g_features.origin"),
    ("origin-with-path", enc(doc(origin="http://a.localhost/x")), "INVALID_ORIGIN",
     "b2g_features.origin"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "data", "code", "where"), BAD, ids=[b[0] for b in BAD])
def test_bad_manifests(case: str, data: bytes, code: str, where: str) -> None:
    with pytest.raises(KaisecError) as info:
        parse_manifest(data)
    assert info.value.code == code
    problems = info.value.details["problems"]
    assert any(where in p for p in problems), problems


def test_every_problem_is_reported() -> None:
    data = enc(
        doc(
            permissions={
                "contacts": perm(access="everything"),
                "settings": perm(),
                "geolocation": perm(access="readonly"),
            },
            version="x",
            csp="nonsense here",
        )
    )
    with pytest.raises(InvalidManifestError) as info:
        parse_manifest(data)
    paths = {p.split(":")[0] for p in info.value.problems}
    assert paths == {
        "b2g_features.permissions.contacts.access",
        "b2g_features.permissions.settings.access",
        "b2g_features.permissions.geolocation.access",
        "b2g_features.version",
        "b2g_features.csp",
    }


def test_origin_check_uses_the_apps_origin() -> None:
    data = enc({"name": "a", "start_url": "https://weather.example/app/"})
    assert parse_manifest(data, origin="https://weather.example").start_url.endswith("/app/")
    with pytest.raises(InvalidOriginError):
        parse_manifest(data, origin="https://weather.example:8443")


def test_unknown_permission_is_a_warning_and_not_granted() -> None:
    m = parse_manifest(enc(doc(permissions={"mind-reading": perm(), "alarms": perm()})))
    assert any("mind-reading" in w for w in m.warnings)
    assert m.expanded_permissions() == {"alarms": ("alarms",)}


def test_core_is_only_a_request() -> None:
    m = parse_manifest(enc(doc(core=True)))
    assert m.requested_class is AppClass.CORE
    assert parse_manifest(enc(doc())).requested_class is None
    assert parse_manifest(enc(doc(type="certified"))).requested_class is AppClass.CORE


@pytest.mark.parametrize(
    ("legacy_type", "cls"),
    [("web", AppClass.PWA), ("privileged", AppClass.SIGNED), ("certified", AppClass.CORE)],
)
def test_legacy_webapp_is_converted(legacy_type: str, cls: AppClass) -> None:
    legacy = {
        "name": "Old App",
        "description": "from 2.5",
        "launch_path": "/index.html",
        "type": legacy_type,
        "version": "2.1",
        "origin": "app://oldapp.gaiamobile.org",
        "developer": {"name": "Dev", "url": "https://dev.example"},
        "icons": {"56": "/icons/56.png", "112": "/icons/112.png"},
        "permissions": {"contacts": {"description": "read", "access": "readonly"}},
        "csp": "default-src 'self'",
        "default_locale": "en-US",
    }
    m = parse_manifest(enc(legacy), filename="manifest.webapp")
    assert m.format == "webapp"
    assert m.requested_class is cls
    assert m.start_url == "/index.html"
    assert m.origin_name == "oldapp"
    assert m.version == "2.1"
    assert m.developer_name == "Dev"
    assert m.csp == "default-src 'self'"
    assert m.expanded_permissions() == {"contacts": ("contacts:read",)}
    assert {i["sizes"] for i in m.icons} == {"56x56", "112x112"}
    assert m.extra["default_locale"] == "en-US"
    # the converted form is a valid KaiOS 3 manifest with the same meaning
    again = parse_manifest(enc(m.to_dict()))
    assert again.requested_class is cls
    assert again.expanded_permissions() == m.expanded_permissions()


def test_legacy_path_problems_name_legacy_fields() -> None:
    bad = {"name": "a", "launch_path": "https://evil.example/", "permissions": {"sms": {}}}
    with pytest.raises(InvalidManifestError) as info:
        parse_manifest(enc(bad), filename="manifest.webapp")
    assert any(p.startswith("permissions.sms.description") for p in info.value.problems)


def test_unknown_fields_round_trip() -> None:
    original = {
        "name": "Rich",
        "short_name": "R",
        "lang": "fr",
        "theme_color": "#123456",
        "display": "standalone",
        "start_url": "/",
        "icons": [{"src": "/i.png", "sizes": "56x56", "type": "image/png", "purpose": "any"}],
        "b2g_features": {
            "version": "1.2.3",
            "core": True,
            "origin": "rich",
            "developer": {"name": "D"},
            "permissions": {"camera": {"description": "photos"}},
            "focus_color": "#fff",
            "serviceworker": {"script_url": "/sw.js"},
            "activities": {"pick": {"href": "/pick.html", "filters": {"type": "image/*"}}},
            "messages": [{"alarm": "/alarm.html"}],
        },
    }
    m = parse_manifest(enc(original))
    assert m.to_dict() == original
    assert parse_manifest(enc(m.to_dict())) == m


# --- the schema walk: every refusal is explained, and it never accepts alone ---------

_scalars = st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["", "x", "/a"])
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["", "a", "src", "description", "x"]), inner, max_size=3)
    ),
    max_leaves=8,
)
_KEYS = [
    "name", "short_name", "start_url", "scope", "icons", "csp", "b2g_features", "launch_path",
    "permissions", "developer", "messages", "activities", "type", "core", "version", "origin",
]  # fmt: skip
_docs = st.recursive(
    st.dictionaries(st.sampled_from(_KEYS), _json, max_size=5),
    lambda inner: st.dictionaries(st.sampled_from(_KEYS), inner | _json, max_size=4),
    max_leaves=6,
)


@settings(max_examples=400, deadline=None)
@given(doc=_docs, legacy=st.booleans())
def test_schema_refusals_are_explained(doc: dict[str, Any], legacy: bool) -> None:
    problems: list[tuple[str, str]] = []
    fields = manifest_schema.validate(
        doc, legacy=legacy, add=lambda p, m: problems.append((p, m)), max_string=4096
    )
    model = manifest_schema._LegacyManifest if legacy else manifest_schema._WebManifest
    walked = manifest_schema._explain(doc, model, ())
    if fields is None:
        assert problems and walked  # refused: at least one problem, each with a path
        assert all(path for path, _ in problems)
    else:
        assert walked == []  # the walk finds nothing in what msgspec accepted
