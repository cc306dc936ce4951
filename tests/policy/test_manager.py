"""The permission manager: install/update/uninstall grants, check, user changes, policy."""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path

import pytest

from kaisec.errors import (
    AppNotFoundError,
    ImplicitPermissionError,
    NotRequestedError,
    PinLockedError,
    PinRequiredError,
    UnknownPermissionError,
)
from kaisec.home import Home
from kaisec.manager import Change, PermissionManager
from kaisec.manifest import parse_manifest
from kaisec.registry import AppRecord
from kaisec.types import Action, AppClass, Expiry, Source

from ..conftest import RegisterFn, make_manifest

A, D, P = Action.ALLOW, Action.DENY, Action.PROMPT
DEFAULTS = {"vibration", "networkstats-perm", "lock-orientation", "push"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _actions(mgr: PermissionManager, origin: str) -> dict[str, Action]:
    return {s.permission: s.action for s in mgr.permissions(origin)}


def test_install_writes_requests_and_defaults(
    manager: PermissionManager, register: RegisterFn
) -> None:
    app = register("c", AppClass.SIGNED, {"contacts": "readonly", "geolocation": None, "sms": None})
    assert _actions(manager, app.origin) == {
        "contacts:read": A,
        "geolocation": P,
        "sms": D,  # a DENY request is stored, not an install failure
        **dict.fromkeys(DEFAULTS, A),
    }


def test_defaults_also_without_permissions_member(
    manager: PermissionManager, register: RegisterFn
) -> None:
    app = register("bare", AppClass.PWA, None)
    assert _actions(manager, app.origin) == dict.fromkeys(DEFAULTS, A)


def test_least_privilege_unrequested_is_deny(
    manager: PermissionManager, register: RegisterFn
) -> None:
    app = register("c", AppClass.CORE, {"contacts": "readonly"})
    # the table allows contacts:write and settings for core, but the manifest did not ask
    assert manager.check(app.origin, "contacts:write") is D
    assert manager.check(app.origin, "settings:read") is D
    assert manager.check(app.origin, "contacts:read") is A
    assert manager.check("http://not-installed.localhost", "alarms") is D


def test_user_changes_explicit_only(manager: PermissionManager, register: RegisterFn) -> None:
    app = register("s", AppClass.SIGNED, {"contacts": "readwrite", "camera": None, "sms": None})
    manager.set(app.origin, "camera", A)
    assert manager.check(app.origin, "camera") is A
    for implicit in ("contacts:read", "sms", "vibration"):
        before = manager.check(app.origin, implicit, use=False)
        with pytest.raises(ImplicitPermissionError):
            manager.set(app.origin, implicit, A if before is D else D)
        assert manager.check(app.origin, implicit, use=False) is before
    with pytest.raises(NotRequestedError):
        manager.set(app.origin, "geolocation", A)
    with pytest.raises(UnknownPermissionError):
        manager.set(app.origin, "mind-reading", A)
    with pytest.raises(AppNotFoundError):
        manager.set("http://nobody.localhost", "camera", A)
    # nothing of the refused changes was stored
    assert "geolocation" not in _actions(manager, app.origin)


def test_core_geolocation_is_explicit_through_fallback(
    manager: PermissionManager, register: RegisterFn
) -> None:
    app = register("core", AppClass.CORE, {"geolocation": None, "camera": None})
    manager.set(app.origin, "geolocation", D)
    with pytest.raises(ImplicitPermissionError):
        manager.set(app.origin, "camera", D)  # core: camera is an implicit allow


def test_one_time_grant_is_consumed(manager: PermissionManager, register: RegisterFn) -> None:
    app = register("w", AppClass.PWA, {"geolocation": None})
    manager.set(app.origin, "geolocation", A, expiry=Expiry.ONCE)
    assert manager.check(app.origin, "geolocation", use=False) is A  # inspecting uses nothing
    assert manager.check(app.origin, "geolocation") is A
    assert manager.check(app.origin, "geolocation") is P
    with pytest.raises(ValueError):
        manager.set(app.origin, "geolocation", D, expiry=Expiry.ONCE)


def test_time_limited_grant_expires(home: Home) -> None:
    clock = Clock()
    mgr = PermissionManager.open(home, clock=clock)
    try:
        m = parse_manifest(json.dumps(make_manifest({"geolocation": None})).encode())
        rec = AppRecord(str(uuid.uuid4()), "w", "https://w.example", AppClass.PWA, m.to_dict())
        mgr.register_app(rec, m)
        mgr.set(rec.origin, "geolocation", A, expiry=Expiry.UNTIL, duration=60)
        assert mgr.check(rec.origin, "geolocation") is A
        clock.now += 59
        assert mgr.check(rec.origin, "geolocation") is A  # cached with its expiry
        clock.now += 2
        assert mgr.check(rec.origin, "geolocation") is P
    finally:
        mgr.close()


def test_session_grant_lapses_with_a_new_session(
    manager: PermissionManager, register: RegisterFn
) -> None:
    app = register("w", AppClass.PWA, {"geolocation": None})
    manager.start_session()
    manager.set(app.origin, "geolocation", A, expiry=Expiry.SESSION)
    assert manager.check(app.origin, "geolocation") is A
    manager.start_session()
    assert manager.check(app.origin, "geolocation") is P


def test_update_keeps_user_answers_and_denies(
    manager: PermissionManager, register: RegisterFn
) -> None:
    app = register("s", AppClass.SIGNED,
                   {"camera": None, "geolocation": None, "contacts": "readwrite", "sms": None})  # fmt: skip
    manager.set(app.origin, "camera", D)
    manager.set(app.origin, "geolocation", A)
    new = parse_manifest(json.dumps(make_manifest(
        {"camera": None, "geolocation": None, "contacts": "readonly", "audio-capture": None,
         "alarms": None})).encode())  # fmt: skip
    rec = AppRecord(app.id, app.name, app.origin, app.app_class, new.to_dict(), version="2")
    manager.update_registered_app(rec, new)
    got = _actions(manager, app.origin)
    assert got["camera"] is D  # user's deny kept
    assert got["geolocation"] is A  # user's allow kept
    assert got["contacts:read"] is A
    assert "contacts:write" not in got and "contacts:create" not in got  # no longer requested
    assert got["sms"] is D  # a deny stays even when no longer requested
    assert got["audio-capture"] is P  # a new prompt permission asks
    assert got["alarms"] is A  # a new implicit allow comes from the table
    assert manager.check(app.origin, "contacts:write") is D


def test_uninstall_removes_everything(
    manager: PermissionManager, register: RegisterFn, home: Home
) -> None:
    app = register("s", AppClass.SIGNED, {"camera": None})
    manager.set(app.origin, "camera", A)
    manager.unregister_app(app)
    with sqlite3.connect(home.db_path) as db:
        assert (
            db.execute("SELECT count(*) FROM permissions WHERE origin=?", (app.origin,)).fetchone()[
                0
            ]
            == 0
        )
        assert (
            db.execute("SELECT count(*) FROM apps WHERE origin=?", (app.origin,)).fetchone()[0] == 0
        )
    assert manager.check(app.origin, "camera") is D
    with pytest.raises(AppNotFoundError):
        manager.permissions(app.origin)


def test_subscribers_hear_revocations(manager: PermissionManager, register: RegisterFn) -> None:
    app = register("s", AppClass.SIGNED, {"camera": None})
    manager.set(app.origin, "camera", A)
    assert manager.check(app.origin, "camera") is A
    heard: list[Change] = []
    unsubscribe = manager.subscribe(heard.append)
    manager.set(app.origin, "camera", D)
    assert heard == [Change(app.origin, "camera", D)]
    assert manager.check(app.origin, "camera") is D  # the cache did not keep the old answer
    unsubscribe()
    manager.set(app.origin, "camera", P)
    assert len(heard) == 1


def test_other_process_change_reaches_the_cache(
    home: Home, manager: PermissionManager, register: RegisterFn
) -> None:
    app = register("s", AppClass.SIGNED, {"camera": None})
    assert manager.check(app.origin, "camera") is P  # now cached
    other = PermissionManager.open(home)  # a second connection, as another process has
    try:
        other.set(app.origin, "camera", A)
    finally:
        other.close()
    heard: list[Change] = []
    manager.subscribe(heard.append)
    assert manager.check(app.origin, "camera") is A
    assert manager.refresh() is False  # check already noticed the change
    other = PermissionManager.open(home)
    other.set(app.origin, "camera", D)
    other.close()
    assert manager.refresh() is True and heard == [Change(None, None, None)]


def test_audit_log_records_changes_and_is_append_only(
    manager: PermissionManager, register: RegisterFn, home: Home
) -> None:
    app = register("s", AppClass.SIGNED, {"camera": None})
    manager.set(app.origin, "camera", A, actor="tester")
    entries = manager.store.audit_log(origin=app.origin)
    assert [(e.permission, e.decision, e.actor) for e in entries] == [
        ("*", "install", "install"),
        ("camera", "set:allow", "tester"),
    ]
    with sqlite3.connect(home.db_path) as db, pytest.raises(sqlite3.DatabaseError):
        db.execute("DELETE FROM audit")
    with sqlite3.connect(home.db_path) as db, pytest.raises(sqlite3.DatabaseError):
        db.execute("UPDATE audit SET decision = 'x'")


def _policy(home: Home, text: str) -> PermissionManager:
    (home.root / "policy.toml").write_text(text)
    return PermissionManager.open(home)


def test_override_needs_origin_and_signer(home: Home) -> None:
    signer = "ab" * 32
    mgr = _policy(home, f'[[app]]\norigin = "http://operator.localhost"\nsigner = "{signer.upper()}"\n'
                        'grant = ["telephony"]\n')  # fmt: skip
    try:
        m = parse_manifest(json.dumps(make_manifest({"telephony": None})).encode())

        def reg(name: str, fp: str | None, cls: AppClass = AppClass.SIGNED) -> AppRecord:
            rec = AppRecord(str(uuid.uuid4()), name, f"http://{name}.localhost", cls,
                            m.to_dict(), signer=fp)  # fmt: skip
            mgr.register_app(rec, m)
            return rec

        good = reg("operator", signer)
        assert mgr.check(good.origin, "telephony") is A  # the seed's operator account app
        states = {s.permission: s for s in mgr.permissions(good.origin)}
        assert states["telephony"].effective_source is Source.OVERRIDE
        # same origin, another key: nothing (re-register under the same origin)
        mgr.unregister_app(good)
        impostor = reg("operator", "cd" * 32)
        assert mgr.check(impostor.origin, "telephony") is D
        # right key, another origin: nothing
        other = reg("other", signer)
        assert mgr.check(other.origin, "telephony") is D
        # a core app without a policy entry: restricted
        core = reg("dialer", "ef" * 32, AppClass.CORE)
        assert mgr.check(core.origin, "telephony") is D
    finally:
        mgr.close()


def test_override_never_adds_an_unrequested_permission(home: Home) -> None:
    signer = "ab" * 32
    mgr = _policy(home, f'[[app]]\norigin = "http://x.localhost"\nsigner = "{signer}"\n'
                        'grant = ["telephony", "sms"]\ndeny = ["camera"]\n')  # fmt: skip
    try:
        m = parse_manifest(json.dumps(make_manifest({"telephony": None, "camera": None})).encode())
        rec = AppRecord(str(uuid.uuid4()), "x", "http://x.localhost", AppClass.CORE, m.to_dict(),
                        signer=signer)  # fmt: skip
        mgr.register_app(rec, m)
        assert mgr.check(rec.origin, "telephony") is A
        assert mgr.check(rec.origin, "sms") is D  # granted by policy, but never requested
        assert mgr.check(rec.origin, "camera") is D  # policy can also restrict
    finally:
        mgr.close()


@pytest.mark.parametrize(
    "text",
    ["restricted = 5", '[[app]]\norigin = "x"\nsigner = "' + "ab" * 32 + '"',
     '[[app]]\norigin = "http://a.localhost"\nsigner = "nothex"', "not toml = = ",
     '[[app]]\norigin = "http://a.localhost"\nsigner = "' + "ab" * 32 + '"\nextra = 1'],
)  # fmt: skip
def test_bad_policy_is_refused(home: Home, text: str) -> None:
    from kaisec.errors import ConfigError

    (home.root / "policy.toml").write_text(text)
    with pytest.raises(ConfigError):
        PermissionManager.open(home)


def test_pin_guards_allow(manager: PermissionManager, register: RegisterFn) -> None:
    app = register("w", AppClass.PWA, {"geolocation": None, "camera": None})
    manager.pins.set("2468")
    with pytest.raises(PinRequiredError):
        manager.set(app.origin, "geolocation", A)
    with pytest.raises(PinRequiredError):
        manager.set(app.origin, "geolocation", A, pin="0000")
    assert manager.check(app.origin, "geolocation") is P
    manager.set(app.origin, "geolocation", A, pin="2468")
    assert manager.check(app.origin, "geolocation") is A
    manager.set(app.origin, "camera", D)  # turning something off needs no PIN


def test_pin_back_off(home: Home) -> None:
    clock = Clock()
    mgr = PermissionManager.open(home, clock=clock)
    try:
        from kaisec.pin import PinPolicy, PinStore

        pins = PinStore(mgr.store, policy=PinPolicy(n=2**10), clock=clock)
        pins.set("1357")
        for _ in range(3):
            with pytest.raises(PinRequiredError):
                pins.verify("0000")
        with pytest.raises(PinRequiredError):
            pins.verify("0000")  # the 4th wrong PIN starts a 30 s lock
        with pytest.raises(PinLockedError):
            pins.verify("1357")  # even the right PIN waits
        clock.now += 31
        pins.verify("1357")
        with pytest.raises(PinRequiredError):
            pins.set("1111", current="9999")
        pins.set("1111", current="1357")
        pins.verify("1111")
        raw = mgr.store.get_setting("pin")
        assert raw is not None and "1111" not in raw and "1357" not in raw
        with pytest.raises(ValueError):
            pins.set("12", current="1111")
    finally:
        mgr.close()


def test_schema_version_and_reopen(
    home: Home, register: RegisterFn, manager: PermissionManager
) -> None:
    register("s", AppClass.SIGNED, {"camera": None})
    with sqlite3.connect(home.db_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] >= 1
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again = PermissionManager.open(home)
    try:
        assert again.check("http://s.localhost", "camera") is P
    finally:
        again.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "kaisec.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(RuntimeError, match="newer"):
        PermissionManager.open(Home(tmp_path))


def test_a_kept_deny_of_a_dropped_request_cannot_become_allow(
    manager: PermissionManager, register: RegisterFn
) -> None:
    """Regression (found by the property tests): an update keeps the user's deny of a
    permission the new version no longer requests; flipping that row to allow must fail."""
    app = register("w", AppClass.PWA, {"audio-capture": None, "camera": None})
    manager.set(app.origin, "audio-capture", D)
    new = parse_manifest(json.dumps(make_manifest({"camera": None})).encode())
    manager.update_registered_app(
        AppRecord(app.id, app.name, app.origin, app.app_class, new.to_dict()), new
    )
    assert _actions(manager, app.origin)["audio-capture"] is D  # the deny is kept
    with pytest.raises(NotRequestedError):
        manager.set(app.origin, "audio-capture", A)
    with pytest.raises(NotRequestedError):
        manager.answer_prompt(app.origin, "audio-capture", A)
    assert manager.check(app.origin, "audio-capture") is D


def test_an_update_to_a_lower_class_grants_no_more_than_a_fresh_install(
    manager: PermissionManager, register: RegisterFn
) -> None:
    """Regression (found by the property tests): a core app's table allow of a permission
    that is prompt for PWAs survived an update that made the app a PWA."""
    app = register("x", AppClass.CORE, {"audio-capture": None, "geolocation": None})
    assert manager.check(app.origin, "audio-capture") is A
    manager.set(app.origin, "geolocation", A)
    same = parse_manifest(
        json.dumps(make_manifest({"audio-capture": None, "geolocation": None})).encode()
    )
    manager.update_registered_app(
        AppRecord(app.id, app.name, app.origin, AppClass.PWA, same.to_dict()), same
    )
    assert manager.check(app.origin, "audio-capture") is P  # as for a fresh PWA
    assert manager.check(app.origin, "geolocation") is A  # the user's answer stays
