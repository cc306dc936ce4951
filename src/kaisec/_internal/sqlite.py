"""SQLite plumbing shared by the permissions store and the device's database.

Lock contention is retried here (with back-off, up to a deadline) so that
"database is locked" never reaches a caller, and schema migrations run in
one ``BEGIN IMMEDIATE`` transaction, numbered by ``PRAGMA user_version``.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

__all__ = ["is_busy", "migrate", "retry"]

_T = TypeVar("_T")


def is_busy(exc: sqlite3.OperationalError) -> bool:
    """Whether ``exc`` is lock contention (worth retrying) rather than a real error."""
    msg = str(exc).lower()
    return "locked" in msg or "busy" in msg


def retry(fn: Callable[[], _T], *, seconds: float) -> _T:
    """Run ``fn``, retrying on lock contention for up to ``seconds``."""
    deadline = time.monotonic() + seconds
    delay = 0.002
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def migrate(
    conn: sqlite3.Connection, path: Path, migrations: Sequence[str], *, seconds: float
) -> None:
    """Take the database at ``conn`` to ``len(migrations)`` (index i: version i -> i + 1).

    Raises:
        RuntimeError: the database is newer than these migrations.
    """
    target = len(migrations)
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > target:
        raise RuntimeError(
            f"{path}: schema version {version} is newer than this kaisec ({target}); upgrade kaisec"
        )
    if version == target:
        return

    def run() -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = int(conn.execute("PRAGMA user_version").fetchone()[0])
            for i in range(current, target):
                for stmt in migrations[i].split(";\n"):
                    if stmt.strip():
                        conn.execute(stmt)
                conn.execute(f"PRAGMA user_version = {i + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    retry(run, seconds=seconds)
