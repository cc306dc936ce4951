"""Property tests of the permission policy (the issue's acceptance list).

1. ``check`` never answers allow for what the manifest does not request (the
   four default permissions aside), whatever the user does and however the app
   is updated;
2. no sequence of user changes alters an implicit permission;
3. after uninstall nothing of the origin remains (registry and permission rows;
   the audit log keeps its history), and a reinstall starts from the table;
4. an update (same class) never turns a deny or a user's answer into something
   else, for what both versions request;
5. an update to any class never grants more than a fresh install of the new
   version would, the user's answers to what is still theirs aside.

Each property runs over random manifests (subsets of the table's rows with
valid access modes, plus names the table does not know), random trust
classes, random sequences of user changes (any name: requested, implicit,
default, unknown, no longer requested; any action and expiry), runtime events
(uses, time, new sessions) and random updates. Every example gets a fresh
home in its own temporary directory (on tmpfs when there is one) and a fake
clock, so time-limited answers expire when the test says so.

The oracles are computed here from the table's data (rows, access lists,
class actions), not through the manager's own helpers.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from kaisec.errors import (
    AppNotFoundError,
    ImplicitPermissionError,
    NotRequestedError,
    UnknownPermissionError,
)
from kaisec.home import Home
from kaisec.manager import PermissionManager
from kaisec.manifest import AppManifest, parse_manifest
from kaisec.permissions import PermissionRow, default_table
from kaisec.registry import AppRecord
from kaisec.store import PermissionRow as StoredRow
from kaisec.types import Action, AppClass, Expiry, Source

PROPERTY_SETTINGS = settings(
    max_examples=80,
    deadline=None,
    database=None,  # keep the shared tree free of .hypothesis/ files
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    # a failure is shrunk once (its first cause), and not "explained": both cost minutes
    report_multiple_bugs=False,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)

TABLE = default_table()
#: Granted to every installed app whatever its manifest says (not table rows).
DEFAULTS = frozenset({"vibration", "networkstats-perm", "lock-orientation", "push"})
ROWS: tuple[PermissionRow, ...] = tuple(sorted(TABLE.rows.values(), key=lambda r: r.name))
_MODE_SUFFIXES = {
    "readonly": ("read",),
    "createonly": ("create",),
    "readcreate": ("read", "create"),
    "readwrite": ("read", "create", "write"),
}
#: Expanded name -> its row, built from the rows' data.
REVERSE: dict[str, PermissionRow] = {}
for _row in ROWS:
    for _name in [_row.name] if _row.access is None else [f"{_row.name}:{s}" for s in _row.access]:
        REVERSE[_name] = _row
#: Names that are not permissions: base names of access rows, wrong suffixes, junk.
UNKNOWN_NAMES = (
    "contacts",
    "device-storage:pictures",
    "settings:create",
    "geolocation:read",
    "not-a-permission",
    "Camera",
    "",
)
ALL_NAMES: tuple[str, ...] = tuple(sorted(REVERSE)) + tuple(sorted(DEFAULTS)) + UNKNOWN_NAMES


def _class_action(row: PermissionRow, cls: AppClass) -> Action:
    """The table's action for a class; core falls back to signed when the row has none."""
    if cls is AppClass.CORE:
        return row.core if row.core is not None else row.signed
    return row.signed if cls is AppClass.SIGNED else row.pwa


#: Rows whose action is PROMPT for some class: the ones users can change.
PROMPT_ROWS = tuple(r for r in ROWS if any(_class_action(r, c) is Action.PROMPT for c in AppClass))
#: Manifest entries the table does not know: warned about, never granted.
UNKNOWN_REQUESTS = ("x-unknown-api", "camera2", "telephony-admin")


def _is_explicit(name: str, cls: AppClass) -> bool:
    row = REVERSE.get(name)
    return row is not None and _class_action(row, cls) is Action.PROMPT


#: Expanded names the user may change, per class.
EXPLICIT: dict[AppClass, frozenset[str]] = {
    c: frozenset(n for n in REVERSE if _is_explicit(n, c)) for c in AppClass
}


def is_explicit(name: str, cls: AppClass) -> bool:
    return name in EXPLICIT[cls]


def valid_modes(row: PermissionRow) -> list[str]:
    assert row.access is not None
    return [m for m, sfx in _MODE_SUFFIXES.items() if any(s in row.access for s in sfx)]


def requested_names(perms: dict[str, dict[str, str]]) -> frozenset[str]:
    """Every expanded name a manifest's ``permissions`` asks for (unknown names ask nothing)."""
    out: set[str] = set()
    for name, entry in perms.items():
        row = TABLE.rows.get(name)
        if row is None:
            continue
        if row.access is None:
            out.add(name)
        else:
            out.update(f"{name}:{s}" for s in _MODE_SUFFIXES[entry["access"]] if s in row.access)
    return frozenset(out)


def install_oracle(perms: dict[str, dict[str, str]], cls: AppClass) -> dict[str, Action]:
    """What a fresh install stores: defaults ALLOW, each request its table action
    (a prompt row's default prompt action where it has one)."""
    out = dict.fromkeys(DEFAULTS, Action.ALLOW)
    for name in requested_names(perms):
        row = REVERSE[name]
        action = _class_action(row, cls)
        if action is Action.PROMPT:
            action = row.default_prompt_action.get(cls, Action.PROMPT)
        out[name] = action
    return out


# --- strategies ---------------------------------------------------------------------


@functools.cache
def pick(choices: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    """``sampled_from``, built once per tuple (building strategies dominates otherwise)."""
    return st.sampled_from(choices)


def _entry(draw: st.DrawFn, row: PermissionRow) -> dict[str, str]:
    entry = {"description": "why"}
    if row.access is not None:
        entry["access"] = draw(pick(tuple(valid_modes(row))))
    return entry


@st.composite
def permission_requests(
    draw: st.DrawFn, max_rows: int = 8, max_prompt: int = 4
) -> dict[str, dict[str, str]]:
    """A manifest's ``permissions``: table rows (prompt rows favoured) and unknown names."""
    rows = draw(st.lists(st.sampled_from(ROWS), max_size=max_rows, unique_by=lambda r: r.name))
    rows += draw(
        st.lists(st.sampled_from(PROMPT_ROWS), max_size=max_prompt, unique_by=lambda r: r.name)
    )
    perms = {row.name: _entry(draw, row) for row in rows}
    for name in draw(st.lists(st.sampled_from(UNKNOWN_REQUESTS), max_size=2, unique=True)):
        perms[name] = {"description": "why"}
    return perms


@st.composite
def updated_requests(draw: st.DrawFn, old: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """A new version's ``permissions``: keeps some old requests (maybe with another
    access mode), drops others, adds new ones."""
    new: dict[str, dict[str, str]] = {}
    for name, entry in old.items():
        fate = draw(pick(("keep", "drop", "remode")))
        row = TABLE.rows.get(name)
        if fate == "keep" or (fate == "remode" and (row is None or row.access is None)):
            new[name] = dict(entry)
        elif fate == "remode":
            assert row is not None
            new[name] = _entry(draw, row)
    for name, entry in draw(permission_requests(max_rows=2, max_prompt=2)).items():
        new.setdefault(name, entry)
    return new


def build_manifest(perms: dict[str, dict[str, str]] | None, version: str) -> AppManifest:
    doc: dict[str, Any] = {"name": "Prop", "b2g_features": {"version": version}}
    if perms is not None:
        doc["b2g_features"]["permissions"] = perms
    return parse_manifest(json.dumps(doc).encode())


# --- the environment of one example ---------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclasses.dataclass
class World:
    mgr: PermissionManager
    clock: Clock
    home: Path

    @property
    def db_path(self) -> Path:
        return self.home / "kaisec.db"


#: tmpfs when there is one: these properties are about decisions, not durability,
#: and a disk's fsync per commit would dominate the run time.
_TMP_PARENT = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


@contextmanager
def fresh_world() -> Iterator[World]:
    with tempfile.TemporaryDirectory(prefix="kaisec-prop-", dir=_TMP_PARENT) as tmp:
        clock = Clock()
        mgr = PermissionManager.open(Home(Path(tmp)), clock=clock)
        try:
            yield World(mgr, clock, Path(tmp))
        finally:
            mgr.close()


@dataclasses.dataclass
class App:
    rec: AppRecord
    perms: dict[str, dict[str, str]]
    version: int = 1
    requested: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self.requested = requested_names(self.perms)

    @property
    def origin(self) -> str:
        return self.rec.origin

    @property
    def cls(self) -> AppClass:
        return self.rec.app_class


def install(world: World, label: str, cls: AppClass, perms: dict[str, dict[str, str]]) -> App:
    man = build_manifest(perms or None, "1.0")
    rec = AppRecord(
        id=str(uuid.uuid4()),
        name=label,
        origin=f"http://{label}.localhost",
        app_class=cls,
        manifest=man.to_dict(),
        version="1.0",
        signer=None if cls is AppClass.PWA else "ab" * 32,
    )
    world.mgr.register_app(rec, man)
    return App(rec, perms)


def update(world: World, app: App, perms: dict[str, dict[str, str]], cls: AppClass) -> None:
    app.version += 1
    man = build_manifest(perms or None, f"{app.version}.0")
    rec = dataclasses.replace(
        app.rec, app_class=cls, manifest=man.to_dict(), version=f"{app.version}.0"
    )
    world.mgr.update_registered_app(rec, man)
    app.rec, app.perms, app.requested = rec, perms, requested_names(perms)


def user_change(data: st.DataObject, world: World, app: App, names: list[list[str]]) -> str:
    """One random user change (returns the name); the refusals the API promises must
    be exactly those, in its order: a bad expiry, an unknown name, an implicit one,
    one the current manifest does not request."""
    name = draw_name(data, names, "set name")
    action = data.draw(pick((*Action, Action.ALLOW, Action.DENY)), label="set action")
    expiry = data.draw(pick(tuple(Expiry)), label="set expiry")
    duration = None
    if expiry is Expiry.UNTIL:
        duration = data.draw(pick((None, 30.0, 3600.0, 86400.0)), label="duration")
    expected: type[Exception] | None = None
    if (expiry is Expiry.ONCE and action is not Action.ALLOW) or (
        expiry is Expiry.UNTIL and duration is None
    ):
        expected = ValueError
    elif name not in REVERSE and name not in DEFAULTS:
        expected = UnknownPermissionError
    elif not is_explicit(name, app.cls):
        expected = ImplicitPermissionError
    elif name not in app.requested:
        expected = NotRequestedError
    try:
        world.mgr.set(app.origin, name, action, expiry=expiry, duration=duration)
    except (ValueError, UnknownPermissionError, ImplicitPermissionError, NotRequestedError) as exc:
        assert type(exc) is expected, f"set({name}, {action}, {expiry}) raised {exc!r}"
        return name
    assert expected is None, f"set({name}, {action}, {expiry}) succeeded, expected {expected}"
    return name


def runtime_event(
    data: st.DataObject, world: World, app: App, names: list[list[str]]
) -> str | None:
    """Something other than a user change that happens meanwhile: a use (returns the
    name used), time passing, a new runtime session."""
    kind = data.draw(pick(("use", "time", "session")), label="event")
    if kind == "use":
        name = draw_name(data, names, "use name")
        world.mgr.check(app.origin, name)
        return name
    if kind == "time":
        world.clock.now += data.draw(pick((1.0, 29.0, 31.0, 3601.0, 90000.0)), label="seconds")
    else:
        world.mgr.start_session()
    return None


def name_pool(app: App, ever: set[str]) -> list[list[str]]:
    """Names to draw from, in groups (a group listed three times is drawn three times
    as often): what the user may change now, what an earlier version requested
    that is explicit for the class, everything explicit for the class, and every
    name (implicit, default, unknown)."""
    explicit = sorted(EXPLICIT[app.cls])
    changeable = [n for n in explicit if n in app.requested]
    dropped = [n for n in explicit if n in ever and n not in app.requested]
    groups = [*[changeable] * 3, *[dropped] * 3, explicit, list(ALL_NAMES)]
    return [g for g in groups if g]


def draw_name(data: st.DataObject, groups: list[list[str]], label: str) -> str:
    group = data.draw(pick(tuple(tuple(g) for g in groups)), label=f"{label} group")
    return str(data.draw(pick(group), label=label))


def answers(world: World, origin: str) -> dict[str, Action]:
    return {n: world.mgr.check(origin, n, use=False) for n in ALL_NAMES}


def row_state(row: StoredRow | None) -> tuple[Any, ...] | None:
    if row is None:
        return None
    return (row.action, row.expiry, row.expires_at, row.session, row.source, row.modified)


def assert_nothing_unrequested_allowed(
    world: World, app: App, when: str, names: tuple[str, ...] = ALL_NAMES
) -> None:
    for name in names:
        action = world.mgr.check(app.origin, name, use=False)
        if action is Action.ALLOW:
            assert name in app.requested or name in DEFAULTS, (
                f"{when}: check({name}) is allow for a {app.cls.value} app whose manifest "
                f"requests only {sorted(app.requested)}"
            )


# --- the properties ---------------------------------------------------------------------


def test_oracle_matches_the_table() -> None:
    """The test's own reading of the table agrees with the shipped data."""
    assert frozenset(TABLE.default_permissions) == DEFAULTS
    assert set(REVERSE) == set(TABLE.all_possible())
    assert len(PROMPT_ROWS) >= 5
    for name in ALL_NAMES:
        for cls in AppClass:
            assert TABLE.is_explicit(name, cls) == is_explicit(name, cls), (name, cls)


@PROPERTY_SETTINGS
@given(data=st.data(), cls=st.sampled_from(AppClass), perms=permission_requests())
def test_check_never_allows_what_the_manifest_does_not_request(
    data: st.DataObject, cls: AppClass, perms: dict[str, dict[str, str]]
) -> None:
    """Rounds of (user changes and runtime events, then an update, maybe to another
    class), ending with more changes; check is asked after every step."""
    with fresh_world() as world:
        app = install(world, "subject", cls, perms)
        ever = set(app.requested)
        assert_nothing_unrequested_allowed(world, app, "after install")
        rounds = data.draw(st.integers(1, 3), label="updates")
        for rnd in range(rounds + 1):
            steps = data.draw(
                st.lists(pick(("set", "set", "set", "event")), min_size=3, max_size=8),
                label="steps",
            )
            for i, step in enumerate(steps):
                pool = name_pool(app, ever)
                if step == "set":
                    touched = user_change(data, world, app, pool)
                else:
                    touched = runtime_event(data, world, app, pool)
                # a set or a use can only move its own name; time or a new session: all
                names = (touched,) if touched is not None else ALL_NAMES
                assert_nothing_unrequested_allowed(world, app, f"round {rnd} step {i}", names)
            if rnd == rounds:
                break
            new_cls = data.draw(pick((app.cls, app.cls, app.cls, *AppClass)), label="class")
            update(world, app, data.draw(updated_requests(app.perms), label="new"), new_cls)
            ever |= app.requested
            assert_nothing_unrequested_allowed(world, app, f"after update {rnd + 1}")
        # whatever the user does next: try to allow everything explicit for the class
        for name in sorted(EXPLICIT[app.cls]):
            try:
                world.mgr.set(app.origin, name, Action.ALLOW)
            except NotRequestedError:
                assert name not in app.requested
        assert_nothing_unrequested_allowed(world, app, "after the user allowed all they could")


@PROPERTY_SETTINGS
@given(data=st.data(), cls=st.sampled_from(AppClass), perms=permission_requests())
def test_user_changes_never_alter_an_implicit_permission(
    data: st.DataObject, cls: AppClass, perms: dict[str, dict[str, str]]
) -> None:
    with fresh_world() as world:
        app = install(world, "subject", cls, perms)
        implicit = [n for n in ALL_NAMES if not is_explicit(n, cls)]
        before = {n: world.mgr.check(app.origin, n, use=False) for n in implicit}
        rows_before = {
            n: row_state(world.mgr.store.get_permission(app.origin, n)) for n in implicit
        }
        # the implicit names themselves are drawn often: they are what must not move
        pool = [implicit, *name_pool(app, set())]
        steps = data.draw(
            st.lists(st.sampled_from(["set", "set", "set", "event"]), min_size=5, max_size=25),
            label="steps",
        )
        for step in steps:
            if step == "set":
                user_change(data, world, app, pool)
            else:
                runtime_event(data, world, app, pool)
        after = {n: world.mgr.check(app.origin, n, use=False) for n in implicit}
        assert after == before
        rows_after = {n: row_state(world.mgr.store.get_permission(app.origin, n)) for n in implicit}
        assert rows_after == rows_before
        # and a manager that never cached anything (another process) agrees
        with closing(PermissionManager.open(Home(world.home), clock=world.clock)) as other:
            assert {n: other.check(app.origin, n, use=False) for n in implicit} == before


def _db_rows(db: Path, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return conn.execute(sql, params).fetchall()


@PROPERTY_SETTINGS
@given(
    data=st.data(),
    apps=st.lists(
        st.tuples(st.sampled_from(AppClass), permission_requests()), min_size=1, max_size=3
    ),
)
def test_uninstall_leaves_nothing_of_the_origin(
    data: st.DataObject, apps: list[tuple[AppClass, dict[str, dict[str, str]]]]
) -> None:
    with fresh_world() as world:
        installed = [install(world, f"app{i}", cls, perms) for i, (cls, perms) in enumerate(apps)]
        for _ in range(data.draw(st.integers(3, 12), label="changes")):
            app = data.draw(st.sampled_from(installed), label="app")
            if data.draw(st.integers(0, 4), label="update?") == 0:
                update(world, app, data.draw(updated_requests(app.perms), label="new"), app.cls)
            else:
                user_change(data, world, app, name_pool(app, set()))
        gone = data.draw(st.sampled_from(installed), label="uninstalled")
        others = [a for a in installed if a is not gone]
        other_rows = {a.origin: world.mgr.store.permissions(a.origin) for a in others}
        other_answers = {a.origin: answers(world, a.origin) for a in others}
        for name in ALL_NAMES:  # warm the decision cache: uninstall must drop it
            world.mgr.check(gone.origin, name, use=False)

        world.mgr.unregister_app(gone.rec)

        db = world.db_path
        assert _db_rows(db, "SELECT * FROM permissions WHERE origin = ?", (gone.origin,)) == []
        assert (
            _db_rows(
                db,
                "SELECT * FROM apps WHERE id = ? OR name = ? OR origin = ?",
                (gone.rec.id, gone.rec.name, gone.origin),
            )
            == []
        )
        # the audit log keeps the history, and says the app was uninstalled
        decisions = _db_rows(
            db, "SELECT decision FROM audit WHERE origin = ? ORDER BY id", (gone.origin,)
        )
        assert decisions[-1] == ("uninstall",)
        # neither this manager (its cache was warm) nor a new one answers anything but deny
        with closing(PermissionManager.open(Home(world.home), clock=world.clock)) as fresh:
            for mgr in (world.mgr, fresh):
                assert set(answers_of(mgr, gone.origin).values()) == {Action.DENY}
                with pytest.raises(AppNotFoundError):
                    mgr.set(gone.origin, "geolocation", Action.ALLOW)
        # the other apps lost nothing
        assert {a.origin: world.mgr.store.permissions(a.origin) for a in others} == other_rows
        assert {a.origin: answers(world, a.origin) for a in others} == other_answers
        # a reinstall at the same origin starts from the table: no answer survived
        again = install(world, gone.rec.name, gone.cls, gone.perms)
        stored = world.mgr.store.permissions(again.origin)
        assert {r.permission: r.action for r in stored} == install_oracle(gone.perms, gone.cls)
        assert {(r.source, r.expiry) for r in stored} <= {(Source.TABLE, Expiry.NEVER)}


def answers_of(mgr: PermissionManager, origin: str) -> dict[str, Action]:
    return {n: mgr.check(origin, n, use=False) for n in ALL_NAMES}


@PROPERTY_SETTINGS
@given(data=st.data(), cls=st.sampled_from(AppClass), perms=permission_requests())
def test_update_keeps_denies_and_user_answers(
    data: st.DataObject, cls: AppClass, perms: dict[str, dict[str, str]]
) -> None:
    with fresh_world() as world:
        app = install(world, "subject", cls, perms)
        for _ in range(data.draw(st.integers(1, 3), label="updates")):
            for _ in range(data.draw(st.integers(2, 10), label="changes")):
                if data.draw(st.booleans(), label="set?"):
                    # mostly the requested explicit names: those carry user answers
                    explicit = sorted(n for n in app.requested if is_explicit(n, cls))
                    pool = [g for g in (explicit, explicit, list(ALL_NAMES)) if g]
                    user_change(data, world, app, pool)
                else:
                    runtime_event(data, world, app, name_pool(app, set()))
            old_requested = app.requested
            new_perms = data.draw(updated_requests(app.perms), label="new")
            both = old_requested & requested_names(new_perms)
            rows_before = {n: world.mgr.store.get_permission(app.origin, n) for n in both}
            answers_before = {n: world.mgr.check(app.origin, n, use=False) for n in both}

            update(world, app, new_perms, cls)  # same class

            for name in sorted(both):
                row = rows_before[name]
                assert row is not None, f"{name} was requested but nothing was stored"
                after = world.mgr.store.get_permission(app.origin, name)
                now = world.mgr.check(app.origin, name, use=False)
                if answers_before[name] is Action.DENY:
                    assert now is Action.DENY, f"update turned the deny of {name} into {now}"
                if row.action is Action.DENY or row.source is Source.USER:
                    assert row_state(after) == row_state(row), (
                        f"update changed {name}: {row_state(row)} -> {row_state(after)}"
                    )
                    assert now is answers_before[name], (
                        f"update changed the answer for {name}: {answers_before[name]} -> {now}"
                    )


_RANK = {Action.DENY: 0, Action.PROMPT: 1, Action.ALLOW: 2}


@PROPERTY_SETTINGS
@given(data=st.data(), cls=st.sampled_from(AppClass), perms=permission_requests())
def test_update_never_grants_more_than_a_fresh_install(
    data: st.DataObject, cls: AppClass, perms: dict[str, dict[str, str]]
) -> None:
    """After an update (to any class), every permission answers at most what a fresh
    install of the new version would give, except the user's own answers to what is
    still theirs to answer (explicit for the new class)."""
    with fresh_world() as world:
        app = install(world, "subject", cls, perms)
        for rnd in range(data.draw(st.integers(1, 3), label="updates")):
            for _ in range(data.draw(st.integers(0, 6), label="changes")):
                if data.draw(st.booleans(), label="set?"):
                    user_change(data, world, app, name_pool(app, set()))
                else:
                    runtime_event(data, world, app, name_pool(app, set()))
            new_cls = data.draw(pick(tuple(AppClass)), label="class")
            new_perms = data.draw(updated_requests(app.perms), label="new")
            update(world, app, new_perms, new_cls)
            fresh = install_oracle(new_perms, new_cls)
            for row in world.mgr.store.permissions(app.origin):
                if row.source is Source.USER and is_explicit(row.permission, new_cls):
                    continue
                now = world.mgr.check(app.origin, row.permission, use=False)
                limit = fresh.get(row.permission, Action.DENY)  # not requested: deny
                assert _RANK[now] <= _RANK[limit], (
                    f"update {rnd + 1} to a {new_cls.value} app: {row.permission} answers "
                    f"{now.value} ({row.source.value}), a fresh install would give {limit.value}"
                )
