"""The permissions store: one SQLite database for registry, permissions, audit, settings.

The strict layer under :class:`kaisec.manager.PermissionManager`: it stores
and fetches, always raises on failure, and decides nothing.

Invariants:
- WAL mode, ``synchronous=FULL``, foreign keys on. Every write happens inside
  :meth:`Store.transaction` (``BEGIN IMMEDIATE``): a change is all there or
  not at all, also across a crash. Lock contention is retried inside the
  store and never reaches the caller as "database is locked".
- The audit log is append-only: triggers refuse UPDATE and DELETE on it.
- After each commit that changed anything, the shared change counter
  (``kaisec.db-gen``) gets a new value and in-process subscribers are told,
  so every decision cache in every process drops what it holds.
- The schema carries its version in ``PRAGMA user_version``; :data:`MIGRATIONS`
  takes any older database forward in one transaction.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kaisec._internal.generation import Generation
from kaisec._internal.sqlite import migrate, retry
from kaisec.types import Action, Expiry, Source

__all__ = ["SCHEMA_VERSION", "AuditEntry", "PermissionRow", "Store", "Txn"]

log = logging.getLogger(__name__)

_V1 = """
CREATE TABLE apps (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    origin TEXT NOT NULL UNIQUE,
    class TEXT NOT NULL CHECK (class IN ('pwa', 'signed', 'core')),
    version TEXT,
    manifest TEXT NOT NULL,
    manifest_url TEXT,
    signer TEXT,
    signer_subject TEXT,
    source TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'installed',
    removable INTEGER NOT NULL DEFAULT 1,
    package_digest TEXT,
    installed_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE permissions (
    origin TEXT NOT NULL,
    permission TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('allow', 'deny', 'prompt')),
    expiry TEXT NOT NULL DEFAULT 'never' CHECK (expiry IN ('never', 'session', 'until', 'once')),
    expires_at REAL,
    session TEXT,
    source TEXT NOT NULL CHECK (source IN ('table', 'override', 'user', 'system')),
    modified REAL NOT NULL,
    PRIMARY KEY (origin, permission)
) WITHOUT ROWID;
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    origin TEXT NOT NULL,
    permission TEXT NOT NULL,
    decision TEXT NOT NULL,
    actor TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX audit_origin ON audit (origin, permission);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""

#: Index i takes a database from user_version i to i + 1.
MIGRATIONS: tuple[str, ...] = (_V1,)
SCHEMA_VERSION = len(MIGRATIONS)
_RETRY_SECONDS = 60.0


@dataclass(frozen=True)
class PermissionRow:
    """One stored permission of one origin."""

    origin: str
    permission: str
    action: Action
    expiry: Expiry
    expires_at: float | None
    session: str | None
    source: Source
    modified: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action.value,
            "expiry": self.expiry.value,
            "expires_at": self.expires_at,
            "source": self.source.value,
            "modified": self.modified,
        }


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log."""

    id: int
    time: float
    origin: str
    permission: str
    decision: str
    actor: str
    detail: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time,
            "origin": self.origin,
            "permission": self.permission,
            "decision": self.decision,
            "actor": self.actor,
            "detail": self.detail,
        }


def _row(r: tuple[Any, ...]) -> PermissionRow:
    return PermissionRow(
        origin=r[0],
        permission=r[1],
        action=Action(r[2]),
        expiry=Expiry(r[3]),
        expires_at=r[4],
        session=r[5],
        source=Source(r[6]),
        modified=r[7],
    )


_COLS = "origin, permission, action, expiry, expires_at, session, source, modified"


class Txn:
    """Writes inside one open transaction (see :meth:`Store.transaction`)."""

    def __init__(self, conn: sqlite3.Connection, clock: Callable[[], float]) -> None:
        self.conn = conn
        self.now = clock()
        self.changed = False

    def execute(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> sqlite3.Cursor:
        cur = self.conn.execute(sql, params)
        if cur.rowcount and cur.rowcount > 0:
            self.changed = True
        return cur

    def get_permission(self, origin: str, permission: str) -> PermissionRow | None:
        r = self.conn.execute(
            f"SELECT {_COLS} FROM permissions WHERE origin = ? AND permission = ?",
            (origin, permission),
        ).fetchone()
        return _row(r) if r else None

    def permissions(self, origin: str) -> list[PermissionRow]:
        rows = self.conn.execute(
            f"SELECT {_COLS} FROM permissions WHERE origin = ? ORDER BY permission", (origin,)
        ).fetchall()
        return [_row(r) for r in rows]

    def put_permission(
        self,
        origin: str,
        permission: str,
        action: Action,
        *,
        source: Source,
        expiry: Expiry = Expiry.NEVER,
        expires_at: float | None = None,
        session: str | None = None,
    ) -> None:
        self.execute(
            f"INSERT OR REPLACE INTO permissions ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                origin,
                permission,
                action.value,
                expiry.value,
                expires_at,
                session,
                source.value,
                self.now,
            ),
        )

    def delete_permission(self, origin: str, permission: str) -> None:
        self.execute(
            "DELETE FROM permissions WHERE origin = ? AND permission = ?", (origin, permission)
        )

    def delete_origin(self, origin: str) -> None:
        self.execute("DELETE FROM permissions WHERE origin = ?", (origin,))

    def audit(
        self,
        origin: str,
        permission: str,
        decision: str,
        *,
        actor: str,
        detail: str | None = None,
    ) -> None:
        self.conn.execute(
            "INSERT INTO audit (time, origin, permission, decision, actor, detail)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (self.now, origin, permission, decision, actor, detail),
        )

    def get_setting(self, key: str) -> str | None:
        r = self.conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return str(r[0]) if r else None

    def set_setting(self, key: str, value: str | None) -> None:
        if value is None:
            self.execute("DELETE FROM settings WHERE key = ?", (key,))
        else:
            self.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, value))


class Store:
    """The SQLite database of one home.

    Thread-safe: one connection guarded by a lock. Processes coordinate
    through SQLite's own locking (WAL) and the shared change counter.
    """

    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self._conn.execute("PRAGMA busy_timeout = 30000")
        self._retry(lambda: self._conn.execute("PRAGMA journal_mode = WAL"))
        self._conn.execute("PRAGMA synchronous = FULL")
        self._conn.execute("PRAGMA foreign_keys = ON")
        self.generation = Generation(self.path.with_name(self.path.name + "-gen"))
        self._subscribers: list[Callable[[], None]] = []
        self._migrate()

    # -- plumbing ------------------------------------------------------------------

    def _retry(self, fn: Callable[[], Any]) -> Any:
        return retry(fn, seconds=_RETRY_SECONDS)

    def _migrate(self) -> None:
        with self._lock:
            migrate(self._conn, self.path, MIGRATIONS, seconds=_RETRY_SECONDS)

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` after every commit of this process that changed something.

        Returns a function that unsubscribes.
        """
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    @contextmanager
    def transaction(self) -> Iterator[Txn]:
        """A write transaction (``BEGIN IMMEDIATE``): commit on success, roll back on error."""
        with self._lock:
            self._retry(lambda: self._conn.execute("BEGIN IMMEDIATE"))
            txn = Txn(self._conn, self.clock)
            try:
                yield txn
                self._retry(lambda: self._conn.execute("COMMIT"))
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
        if txn.changed:
            self.generation.bump()
            for cb in list(self._subscribers):
                try:
                    cb()
                except Exception:  # a subscriber's bug must not undo a commit
                    log.exception("permission change subscriber failed")

    def read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run a read-only query (retried on contention)."""
        with self._lock:
            rows: list[tuple[Any, ...]] = self._retry(
                lambda: self._conn.execute(sql, params).fetchall()
            )
            return rows

    # -- reads -------------------------------------------------------------------------

    def get_permission(self, origin: str, permission: str) -> PermissionRow | None:
        rows = self.read(
            f"SELECT {_COLS} FROM permissions WHERE origin = ? AND permission = ?",
            (origin, permission),
        )
        return _row(rows[0]) if rows else None

    def permissions(self, origin: str) -> list[PermissionRow]:
        rows = self.read(
            f"SELECT {_COLS} FROM permissions WHERE origin = ? ORDER BY permission", (origin,)
        )
        return [_row(r) for r in rows]

    def get_setting(self, key: str) -> str | None:
        rows = self.read("SELECT value FROM settings WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def audit_log(
        self,
        *,
        origin: str | None = None,
        permission: str | None = None,
        limit: int = 200,
        after_id: int = 0,
    ) -> list[AuditEntry]:
        """Audit entries, newest last, optionally filtered."""
        sql = "SELECT id, time, origin, permission, decision, actor, detail FROM audit WHERE id > ?"
        params: list[Any] = [after_id]
        if origin is not None:
            sql += " AND origin = ?"
            params.append(origin)
        if permission is not None:
            sql += " AND permission = ?"
            params.append(permission)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        rows = self.read(sql, tuple(params))
        return [AuditEntry(*r) for r in reversed(rows)]

    def integrity_check(self) -> list[str]:
        """SQLite's own integrity check; an empty list when the database is sound."""
        rows = self.read("PRAGMA integrity_check")
        return [str(r[0]) for r in rows if r[0] != "ok"]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
        self.generation.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
