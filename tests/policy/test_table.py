"""Chosen rows of the permission table, checked against the reference (not the data file).

Expected values are transcribed by hand from shared/reference/permissions-table.md
(KaiOS 3 PermissionsTable.sys.mjs), so a wrong data file fails here.
"""

from __future__ import annotations

import pytest

from kaisec.errors import UnknownPermissionError
from kaisec.manager import PermissionManager
from kaisec.permissions import default_table
from kaisec.types import Action, AppClass

from ..conftest import RegisterFn

A, D, P = Action.ALLOW, Action.DENY, Action.PROMPT

# (permission row, access, {class: (expanded names, action)}) from the reference
REFERENCE_ROWS = [
    ("contacts", "readwrite", {
        AppClass.SIGNED: (["contacts:read", "contacts:create", "contacts:write"], A),
        AppClass.PWA: (["contacts:read", "contacts:create", "contacts:write"], D),
        AppClass.CORE: (["contacts:read", "contacts:create", "contacts:write"], A),  # falls back
    }),
    ("settings", "readwrite", {
        AppClass.SIGNED: (["settings:read", "settings:write"], D),
        AppClass.CORE: (["settings:read", "settings:write"], A),
        AppClass.PWA: (["settings:read", "settings:write"], D),
    }),
    ("geolocation", None, {c: (["geolocation"], P) for c in AppClass}),
    ("device-storage:pictures", "readcreate", {
        AppClass.PWA: (["device-storage:pictures:read", "device-storage:pictures:create"], D),
        AppClass.SIGNED: (["device-storage:pictures:read", "device-storage:pictures:create"], P),
        AppClass.CORE: (["device-storage:pictures:read", "device-storage:pictures:create"], A),
    }),
    ("device-storage:apps", "readonly", {
        AppClass.SIGNED: (["device-storage:apps:read"], D),
        AppClass.CORE: (["device-storage:apps:read"], A),
    }),
    ("system-time", "readwrite", {AppClass.CORE: (["system-time:read", "system-time:write"], A)}),
    ("alarms", None, {AppClass.PWA: (["alarms"], A), AppClass.CORE: (["alarms"], A)}),
    ("bluetooth", None, {AppClass.PWA: (["bluetooth"], D), AppClass.SIGNED: (["bluetooth"], A),
                         AppClass.CORE: (["bluetooth"], A)}),
    ("camera", None, {AppClass.PWA: (["camera"], P), AppClass.SIGNED: (["camera"], P),
                      AppClass.CORE: (["camera"], A)}),
    ("sms", None, {AppClass.PWA: (["sms"], D), AppClass.SIGNED: (["sms"], D),
                   AppClass.CORE: (["sms"], A)}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "access", "expect"), REFERENCE_ROWS, ids=lambda v: str(v))
def test_reference_rows_through_the_manager(
    manager: PermissionManager, register: RegisterFn, name: str, access: str | None, expect: dict
) -> None:
    for app_class, (names, action) in expect.items():
        app = register(f"{app_class.value}-{abs(hash(name)) % 10**6}", app_class, {name: access})
        stored = {s.permission: s.action for s in manager.permissions(app.origin)}
        for expanded in names:
            assert stored[expanded] is action, (app_class, expanded)
            assert manager.check(app.origin, expanded, use=False) is action
        extra = {p for p in stored if p.startswith(name + ":")} - set(names)
        assert not extra, f"{name}/{access} expanded to more than the reference: {extra}"


def test_telephony_is_core_only_and_restricted_by_default(
    manager: PermissionManager, register: RegisterFn
) -> None:
    table = default_table()
    assert table.rows["telephony"].action_for(AppClass.CORE) is A
    assert table.rows["telephony"].action_for(AppClass.SIGNED) is D
    assert table.rows["telephony"].action_for(AppClass.PWA) is D
    # the seed: not every certified app may use telephony; without a policy entry, deny
    core = register("anycore", AppClass.CORE, {"telephony": None}, signer="ab" * 32)
    assert manager.check(core.origin, "telephony") is D


def test_core_falls_back_to_signed_where_the_row_has_no_core_value() -> None:
    table = default_table()
    # reference: 18 rows have no core key; e.g. account-observer-google D/A/-, geolocation P/P/-
    fallback = [r for r in table.rows.values() if r.core is None]
    assert len(fallback) == 18
    assert table.rows["account-observer-google"].action_for(AppClass.CORE) is A
    assert table.rows["geolocation"].action_for(AppClass.CORE) is P
    assert table.rows["tcp-socket"].action_for(AppClass.CORE) is A


def test_counts_match_the_reference() -> None:
    table = default_table()
    assert len(table.rows) == 70
    assert len(table.all_possible()) == 82
    pwa = [r.pwa for r in table.rows.values()]
    assert (pwa.count(A), pwa.count(P), pwa.count(D)) == (3, 5, 62)
    signed = [r.signed for r in table.rows.values()]
    assert (signed.count(A), signed.count(P), signed.count(D)) == (23, 9, 38)
    core = [r.action_for(AppClass.CORE) for r in table.rows.values()]
    assert (core.count(A), core.count(P)) == (68, 2)
    assert table.default_permissions == (
        "vibration",
        "networkstats-perm",
        "lock-orientation",
        "push",
    )


@pytest.mark.parametrize(
    ("app_class", "explicit"),
    [
        (AppClass.PWA, {"audio-capture", "camera", "desktop-notification", "geolocation",
                        "video-capture"}),
        (AppClass.SIGNED, {"audio-capture", "camera", "desktop-notification",
                           "device-storage:music", "device-storage:pictures",
                           "device-storage:sdcard", "device-storage:videos", "geolocation",
                           "video-capture"}),
        (AppClass.CORE, {"desktop-notification", "geolocation"}),
    ],
)  # fmt: skip
def test_explicit_rows_by_class(app_class: AppClass, explicit: set[str]) -> None:
    table = default_table()
    found = {
        row.name
        for row in table.rows.values()
        if any(table.is_explicit(n, app_class) for n in row.expanded_names)
    }
    assert found == explicit


def test_access_expansion_rules() -> None:
    row = default_table().rows["contacts"]
    assert row.expand("readonly") == ("contacts:read",)
    assert row.expand("createonly") == ("contacts:create",)
    assert row.expand("readcreate") == ("contacts:read", "contacts:create")
    assert row.expand("readwrite") == ("contacts:read", "contacts:create", "contacts:write")
    settings = default_table().rows["settings"]
    assert settings.expand("readwrite") == ("settings:read", "settings:write")
    with pytest.raises(ValueError):
        settings.expand("createonly")  # the row has no create: expands to nothing
    with pytest.raises(ValueError):
        default_table().rows["geolocation"].expand("readonly")
    with pytest.raises(ValueError):
        row.expand(None)


def test_desktop_notification_default_prompt_action() -> None:
    row = default_table().rows["desktop-notification"]
    assert row.initial_action(AppClass.PWA) is P
    assert row.initial_action(AppClass.SIGNED) is A
    assert row.initial_action(AppClass.CORE) is A
    assert default_table().is_explicit("desktop-notification", AppClass.SIGNED)


def test_unknown_names() -> None:
    with pytest.raises(UnknownPermissionError):
        default_table().row("mobilenetwork")  # a .jsm-only row, gone in KaiOS 3
    assert default_table().row("contacts:write").name == "contacts"
