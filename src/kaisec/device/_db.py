"""The simulated device's SQLite database, ``<home>/storage/device.db``.

Kept apart from ``kaisec.db`` on purpose: the device layer knows nothing of
apps, permissions or users, and a real device backend would keep this state
in its own daemons, not in the runtime's database.

Invariants:
- WAL mode, ``synchronous=FULL``, ``busy_timeout``. Every write goes through
  :meth:`DeviceDB.transaction` (``BEGIN IMMEDIATE``): all or nothing, also
  across a crash. Lock contention with another process is retried here and
  never reaches a backend as "database is locked".
- One connection per :class:`DeviceDB`, guarded by a re-entrant lock, so every
  backend may be called from any thread.
- The schema carries its version in ``PRAGMA user_version``; :data:`MIGRATIONS`
  takes an older database forward in one transaction.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from kaisec._internal.sqlite import migrate, retry

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "DeviceDB"]

_T = TypeVar("_T")

_V1 = """
CREATE TABLE calls (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('dialing', 'alerting', 'connected', 'disconnected')),
    emergency INTEGER NOT NULL,
    owner TEXT NOT NULL,
    started REAL NOT NULL,
    seq INTEGER NOT NULL
);
CREATE INDEX calls_owner ON calls (owner, seq);
CREATE TABLE messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    direction TEXT NOT NULL CHECK (direction IN ('sent', 'received')),
    number TEXT NOT NULL,
    body TEXT NOT NULL,
    owner TEXT,
    timestamp REAL NOT NULL
);
CREATE TABLE contacts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    folded TEXT NOT NULL,
    numbers TEXT NOT NULL,
    digits TEXT NOT NULL,
    emails TEXT NOT NULL,
    photo TEXT,
    updated REAL NOT NULL
);
CREATE TABLE files (
    owner TEXT NOT NULL,
    area TEXT NOT NULL,
    name TEXT NOT NULL,
    blob TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mime TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (owner, area, name)
) WITHOUT ROWID;
CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE notifications (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    timestamp REAL NOT NULL
);
CREATE INDEX notifications_owner ON notifications (owner, seq);
CREATE TABLE alarms (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL,
    at REAL NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX alarms_owner ON alarms (owner, at);
CREATE INDEX alarms_at ON alarms (at);
CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""

#: Index i takes a database from user_version i to i + 1.
MIGRATIONS: tuple[str, ...] = (_V1,)
SCHEMA_VERSION = len(MIGRATIONS)
_RETRY_SECONDS = 30.0


class DeviceDB:
    """The device database: one connection, one lock, retried transactions."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        new = not path.exists()
        self._conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self._closed = False
        try:
            if new:
                with contextlib.suppress(OSError):
                    path.chmod(0o600)
            self._conn.execute("PRAGMA busy_timeout = 30000")
            self._retry(lambda: self._conn.execute("PRAGMA journal_mode = WAL"))
            self._conn.execute("PRAGMA synchronous = FULL")
            self._migrate()
        except BaseException:
            self.close()
            raise

    def _retry(self, fn: Callable[[], _T]) -> _T:
        return retry(fn, seconds=_RETRY_SECONDS)

    def _migrate(self) -> None:
        with self.lock:
            migrate(self._conn, self.path, MIGRATIONS, seconds=_RETRY_SECONDS)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``): commit on success, roll back on error."""
        with self.lock:
            self._retry(lambda: self._conn.execute("BEGIN IMMEDIATE"))
            try:
                yield self._conn
                self._retry(lambda: self._conn.execute("COMMIT"))
            except BaseException:
                # Also after a failed COMMIT: never leave the connection inside
                # a transaction (SQLite may have rolled back already).
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run a read-only query (retried on contention)."""
        with self.lock:
            return self._retry(lambda: self._conn.execute(sql, params).fetchall())

    def close(self) -> None:
        """Close the connection; later calls fail with ``sqlite3.ProgrammingError``."""
        with self.lock:
            if not self._closed:
                self._closed = True
                self._conn.close()
