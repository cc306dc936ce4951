"""Many processes, one store: no lost write, no lock error, caches invalidated across processes.

Eight processes run 2,000 random operations each on one home (one SQLite
database, one shared change counter). "No lost write" is checkable because
every write is attributable:

- each worker owns some apps: only it writes their explicit permissions, and it
  keeps the answer it last gave (and whether a one-time grant was used since); at
  the end the store must hold exactly that for every owned permission;
- every worker writes the permissions of the shared apps; every successful
  ``set`` carries a unique actor (``w3#1207``), so the audit log must hold one
  ``set:*`` entry per successful set, no more, no fewer, and for every shared
  permission the stored answer must be the one of its last ``set:*`` entry.

Any exception in a worker (a "database is locked" reaching the caller, a wrong
answer from ``check``, a refusal other than the one expected) fails the test:
the worker sends its traceback back and exits 1.

A second test plays ping-pong between two processes: one caches an answer,
the other changes it, and the first must see the change with its very next
``check``, which only the shared generation word can tell it.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing as mp
import queue
import random
import sqlite3
import sys
import time
import traceback
import uuid
from collections import Counter
from contextlib import closing
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

from kaisec.errors import ImplicitPermissionError, NotRequestedError, UnknownPermissionError
from kaisec.home import Home
from kaisec.manager import PermissionManager
from kaisec.manifest import parse_manifest
from kaisec.registry import AppRecord
from kaisec.types import Action, AppClass, Expiry, Source

WORKERS = 8
OPS_PER_WORKER = 2_000
APPS_PER_WORKER = 2
SHARED_APPS = 2
#: Whole run, start to verdict.
TIME_LIMIT = 240.0
LONG = 10_000_000.0  # seconds: a time-limited answer that cannot expire during the run

REQUESTS: dict[str, dict[str, str]] = {
    # explicit (prompt) for signed apps: the user's to decide
    "geolocation": {"description": "d"},
    "camera": {"description": "d"},
    "audio-capture": {"description": "d"},
    "video-capture": {"description": "d"},
    "desktop-notification": {"description": "d"},  # prompt, installed as allow
    "device-storage:pictures": {"description": "d", "access": "readwrite"},
    "device-storage:music": {"description": "d", "access": "readcreate"},
    # implicit for signed apps
    "contacts": {"description": "d", "access": "readonly"},  # allow
    "sms": {"description": "d"},  # deny
}
EXPLICIT = (
    "geolocation",
    "camera",
    "audio-capture",
    "video-capture",
    "desktop-notification",
    "device-storage:pictures:read",
    "device-storage:pictures:create",
    "device-storage:pictures:write",
    "device-storage:music:read",
    "device-storage:music:create",
)
#: What check must answer for these, whatever anybody does.
FIXED = {
    "contacts:read": Action.ALLOW,
    "sms": Action.DENY,
    "vibration": Action.ALLOW,  # a default permission
    "contacts:write": Action.DENY,  # not requested
    "settings:read": Action.DENY,  # not requested (and not for signed apps)
    "not-a-permission": Action.DENY,
}
#: set() on these must be refused with exactly this error.
REFUSED = {
    "contacts:read": ImplicitPermissionError,
    "sms": ImplicitPermissionError,
    "push": ImplicitPermissionError,
    "not-a-permission": UnknownPermissionError,
    "device-storage:sdcard:read": NotRequestedError,  # explicit for signed, not requested
}

Key = tuple[str, str]


def own_origins(wid: int) -> list[str]:
    return [f"http://w{wid}a{j}.localhost" for j in range(APPS_PER_WORKER)]


def shared_origins() -> list[str]:
    return [f"http://shared{j}.localhost" for j in range(SHARED_APPS)]


def register(mgr: PermissionManager, origin: str) -> AppRecord:
    man = parse_manifest(
        json.dumps({"name": "App", "b2g_features": {"permissions": REQUESTS}}).encode()
    )
    rec = AppRecord(
        id=str(uuid.uuid4()),
        name=origin.removeprefix("http://").removesuffix(".localhost"),
        origin=origin,
        app_class=AppClass.SIGNED,
        manifest=man.to_dict(),
        signer="ab" * 32,
    )
    mgr.register_app(rec, man)
    return rec


def random_answer(rng: random.Random) -> tuple[Action, Expiry, float | None]:
    action = rng.choice(list(Action))
    choices = [Expiry.NEVER, Expiry.NEVER, Expiry.SESSION, Expiry.UNTIL]
    if action is Action.ALLOW:
        choices.append(Expiry.ONCE)
    expiry = rng.choice(choices)
    return action, expiry, (LONG if expiry is Expiry.UNTIL else None)


# --- the 8 x 2,000 run ------------------------------------------------------------------


def _worker(home: str, wid: int, seed: int, ops: int, results: Any) -> None:
    """One process: random sets and checks; sends its record (or its traceback) back."""
    try:
        record = _work(Path(home), wid, seed, ops)
    except BaseException:
        results.put({"wid": wid, "error": traceback.format_exc()})
        sys.exit(1)
    results.put(record)


def _work(home: Path, wid: int, seed: int, ops: int) -> dict[str, Any]:
    rng = random.Random(seed)
    mgr = PermissionManager.open(Home(home))
    own = [(o, p) for o in own_origins(wid) for p in EXPLICIT]
    shared = [(o, p) for o in shared_origins() for p in EXPLICIT]
    others = [(o, p) for w in range(WORKERS) if w != wid for o in own_origins(w) for p in EXPLICIT]
    # nobody else writes what this worker owns: what is stored now is the start
    expected: dict[Key, tuple[Action, Expiry, Source]] = {}
    for origin, perm in own:
        row = mgr.store.get_permission(origin, perm)
        assert row is not None
        expected[(origin, perm)] = (row.action, row.expiry, row.source)
    writes: list[tuple[str, str, str, str, str]] = []
    counts: Counter[str] = Counter()

    def do_set(key: Key, i: int) -> None:
        action, expiry, duration = random_answer(rng)
        actor = f"w{wid}#{i}"
        mgr.set(*key, action, expiry=expiry, duration=duration, actor=actor)
        writes.append((actor, key[0], key[1], action.value, expiry.value))
        if key in expected:
            expected[key] = (action, expiry, Source.USER)
            # read your own write, at once
            got = mgr.check(*key, use=False)
            assert got is action, f"{key}: set {action}, check says {got}"

    for i in range(ops):
        r = rng.random()
        if r < 0.30:
            do_set(rng.choice(own), i)
            counts["set own"] += 1
        elif r < 0.55:
            do_set(rng.choice(shared), i)
            counts["set shared"] += 1
        elif r < 0.70:
            key = rng.choice(own)
            got = mgr.check(*key, use=False)
            assert got is expected[key][0], f"{key}: expected {expected[key]}, check says {got}"
            counts["check own"] += 1
        elif r < 0.75:
            # a use: consumes a one-time grant, and only the owner ever uses its own keys
            key = rng.choice(own)
            action, expiry, _ = expected[key]
            got = mgr.check(*key)
            assert got is action, f"{key}: expected {expected[key]}, check says {got}"
            if action is Action.ALLOW and expiry is Expiry.ONCE:
                expected[key] = (Action.PROMPT, Expiry.NEVER, Source.TABLE)
                counts["once used"] += 1
        elif r < 0.90:
            key = rng.choice(shared + others)
            assert mgr.check(*key, use=False) in Action
            counts["check other"] += 1
        elif r < 0.95:
            origin = rng.choice(own_origins(wid) + shared_origins())
            perm = rng.choice(list(FIXED))
            got = mgr.check(origin, perm, use=False)
            assert got is FIXED[perm], f"{origin} {perm}: check says {got}"
            assert mgr.check("http://nobody.localhost", perm) is Action.DENY
            counts["check fixed"] += 1
        else:
            perm, error = rng.choice(list(REFUSED.items()))
            origin = rng.choice(own_origins(wid) + shared_origins())
            with pytest.raises(error):
                mgr.set(origin, perm, Action.ALLOW, actor=f"w{wid}#{i}-refused")
            counts["refused"] += 1
    mgr.close()
    return {
        "wid": wid,
        "expected": {
            f"{o} {p}": [a.value, e.value, s.value] for (o, p), (a, e, s) in expected.items()
        },
        "writes": writes,
        "counts": dict(counts),
    }


def _collect(procs: list[Any], results: Any, deadline: float) -> dict[int, dict[str, Any]]:
    """Every worker's message; fails fast if one dies without a word."""
    got: dict[int, dict[str, Any]] = {}
    while len(got) < len(procs):
        try:
            msg = results.get(timeout=1.0)
        except queue.Empty:
            silent = [
                (i, p.exitcode)
                for i, p in enumerate(procs)
                if p.exitcode is not None and i not in got
            ]
            if silent:
                # a message may still be in the pipe: one last short wait
                try:
                    msg = results.get(timeout=5.0)
                except queue.Empty:
                    pytest.fail(f"workers died without reporting: {silent}")
            elif time.monotonic() > deadline:
                pytest.fail(f"workers did not finish in time; reported: {sorted(got)}")
            else:
                continue
        got[msg["wid"]] = msg
    return got


def test_many_processes_one_store(tmp_path: Path) -> None:
    started = time.monotonic()
    home = tmp_path / "home"
    with closing(PermissionManager.open(Home(home))) as mgr:
        for origin in shared_origins() + [o for w in range(WORKERS) for o in own_origins(w)]:
            register(mgr, origin)

    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    procs = [
        ctx.Process(
            target=_worker,
            args=(str(home), wid, 1000 + wid, OPS_PER_WORKER, results),
            name=f"kaisec-worker-{wid}",
        )
        for wid in range(WORKERS)
    ]
    for p in procs:
        p.start()
    try:
        reports = _collect(procs, results, started + TIME_LIMIT)
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
                p.join()
    errors = {wid: r["error"] for wid, r in reports.items() if "error" in r}
    assert not errors, "\n\n".join(f"worker {w}:\n{tb}" for w, tb in sorted(errors.items()))
    assert [p.exitcode for p in procs] == [0] * WORKERS

    writes = {w[0]: w for r in reports.values() for w in r["writes"]}
    assert len(writes) == sum(len(r["writes"]) for r in reports.values())  # actors unique
    with closing(sqlite3.connect(home / "kaisec.db")) as db:
        audit = db.execute(
            "SELECT actor, origin, permission, decision, detail FROM audit"
            " WHERE decision LIKE 'set:%' ORDER BY id"
        ).fetchall()
        stored = {
            (o, p): (a, e, s)
            for o, p, a, e, s in db.execute(
                "SELECT origin, permission, action, expiry, source FROM permissions"
            )
        }
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    # one audit entry per successful set: none lost, none doubled, none from a refusal
    assert len(audit) == len(writes)
    assert sorted(a[0] for a in audit) == sorted(writes)
    for actor, origin, perm, decision, detail in audit:
        _, w_origin, w_perm, w_action, w_expiry = writes[actor]
        assert (origin, perm, decision) == (w_origin, w_perm, f"set:{w_action}")
        assert (detail or "never") == w_expiry
    # the workers really ran at the same time: every one's commits are interleaved with
    # others' (SQLite hands the write lock out in bursts, so not finely)
    runs = Counter(b[0].split("#")[0] for a, b in itertools.pairwise(audit) if a[0][:3] != b[0][:3])
    assert all(runs[f"w{w}"] >= 3 for w in range(WORKERS)), f"commit runs per worker: {runs}"

    # owned permissions: exactly the owner's last word
    for r in reports.values():
        for key, want in r["expected"].items():
            origin, perm = key.split(" ")
            assert list(stored[(origin, perm)]) == want, f"lost write on {key}"
    # shared permissions: the last committed set wins
    last: dict[Key, tuple[str, str]] = {}
    for actor, origin, perm, _, _ in audit:
        if origin in shared_origins():
            last[(origin, perm)] = (writes[actor][3], writes[actor][4])
    assert len(last) == SHARED_APPS * len(EXPLICIT)
    for key, (action, expiry) in last.items():
        assert stored[key] == (action, expiry, "user"), f"lost write on shared {key}"

    # a process that starts now sees the same answers
    with closing(PermissionManager.open(Home(home))) as fresh:
        for (origin, perm), (action, _, _) in stored.items():
            assert fresh.check(origin, perm, use=False).value == action
    counts: Counter[str] = Counter()
    for r in reports.values():
        counts.update(r["counts"])
    assert counts["refused"] > 0 and counts["once used"] > 0


# --- ping-pong: a change in one process, seen by check in the other right after ----------


ROUNDS = 300


def _pingpong(home: str, me: int, conn: Connection, results: Any) -> None:
    try:
        _play(Path(home), me, conn)
    except BaseException:
        tb = traceback.format_exc()
        results.put({"wid": me, "error": tb})
        conn.send(("error", tb))  # the other side stops waiting at once
        sys.exit(1)
    results.put({"wid": me})


def _recv(conn: Connection, tag: str) -> Any:
    if not conn.poll(60):
        raise AssertionError(f"no {tag!r} from the other process within 60 s")
    got, value = conn.recv()
    if got == "error":
        raise AssertionError(f"the other process failed:\n{value}")
    assert got == tag, f"expected {tag!r}, got {got!r}"
    return value


def _play(home: Path, me: int, conn: Connection) -> None:
    """Rounds alternate: the reader warms its cache, the writer changes the answer,
    the reader must see the new one with its next check."""
    rng = random.Random(me)
    mgr = PermissionManager.open(Home(home))
    origin, perm = shared_origins()[0], "geolocation"
    for rnd in range(ROUNDS):
        writer = rnd % 2
        newcomer = f"http://new{rnd}.localhost"
        if me == writer:
            before = _recv(conn, "cached")
            if rnd % 10 == 5:  # an install the reader had cached as "not installed"
                register(mgr, newcomer)
                conn.send(("changed", Action.ALLOW.value))
                continue
            after = rng.choice([a for a in Action if a.value != before])
            mgr.set(origin, perm, after, actor=f"p{me}#{rnd}")
            conn.send(("changed", after.value))
        else:
            key = (newcomer, "contacts:read") if rnd % 10 == 5 else (origin, perm)
            before = mgr.check(*key, use=False)
            again = mgr.check(*key, use=False)
            # white box: the answer now sits in the decision cache, so only the shared
            # generation word can make the next check look at the store again
            assert key in mgr._cache and again is before
            conn.send(("cached", before.value))
            value = _recv(conn, "changed")
            got = mgr.check(*key, use=False)
            assert got.value == value, f"round {rnd}: {key} still {got} after the change"
    mgr.close()


def test_change_in_one_process_is_seen_by_check_in_another(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with closing(PermissionManager.open(Home(home))) as mgr:
        register(mgr, shared_origins()[0])
    ctx = mp.get_context("spawn")
    ends = ctx.Pipe()
    results = ctx.Queue()
    procs = [ctx.Process(target=_pingpong, args=(str(home), i, ends[i], results)) for i in (0, 1)]
    for p in procs:
        p.start()
    try:
        reports = _collect(procs, results, time.monotonic() + 120)
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
                p.join()
    errors = [r["error"] for _, r in sorted(reports.items()) if "error" in r]
    assert not errors, "\n\n".join(errors)
    assert [p.exitcode for p in procs] == [0, 0]
    with closing(PermissionManager.open(Home(home))) as mgr:
        sets = [e for e in mgr.store.audit_log(limit=10_000) if e.decision.startswith("set:")]
        assert len(sets) == ROUNDS - ROUNDS // 10
