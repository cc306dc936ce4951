"""Every gateway decision lands in the audit log, written in batches.

Writing one SQLite transaction (with its fsync) per API call would cap the
gateway at a few hundred calls a second; instead decisions are queued and
written together at most ``flush_interval`` apart, in one transaction. A
crash can lose at most that window of log lines, never a permission change
(those are written by the permission manager in their own transactions).

A batch is written by a worker thread with multi-row ``INSERT`` statements
(``_CHUNK`` lines each), not ``executemany``: sqlite3 releases the GIL for
every statement step, and one step per line made the worker and the event
loop hand the GIL back and forth hundreds of times per batch (a thread switch
on every socket write of the loop), which cost the gateway more than the
writes themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time

from kaisec.store import Store

__all__ = ["AuditWriter"]

log = logging.getLogger(__name__)

_Line = tuple[float, str, str, str, str, str | None]
#: lines per INSERT: 6 variables a line, under SQLite's historical limit of 999
_CHUNK = 128


def _insert(rows: int) -> str:
    values = ", ".join(["(?, ?, ?, ?, ?, ?)"] * rows)
    return f"INSERT INTO audit (time, origin, permission, decision, actor, detail) VALUES {values}"


_INSERT_CHUNK = _insert(_CHUNK)


class AuditWriter:
    """A queue of audit lines and the task that writes them."""

    def __init__(self, store: Store, *, flush_interval: float) -> None:
        self.store = store
        self.flush_interval = flush_interval
        self._lines: list[_Line] = []
        self._lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None
        self.written = 0

    def record(
        self, origin: str, permission: str, decision: str, *, actor: str, detail: str | None = None
    ) -> None:
        """Queue one line (cheap; safe from any thread)."""
        with self._lock:
            self._lines.append((time.time(), origin, permission, decision, actor, detail))

    def flush(self) -> int:
        """Write what is queued now; returns how many lines."""
        with self._lock:
            lines, self._lines = self._lines, []
        if not lines:
            return 0
        with self.store.transaction() as txn:
            for start in range(0, len(lines), _CHUNK):
                chunk = lines[start : start + _CHUNK]
                sql = _INSERT_CHUNK if len(chunk) == _CHUNK else _insert(len(chunk))
                txn.conn.execute(sql, [value for line in chunk for value in line])
        self.written += len(lines)
        return len(lines)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            try:
                await asyncio.to_thread(self.flush)
            except Exception:  # keep logging decisions even if one batch failed
                log.exception("audit batch failed")

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.to_thread(self.flush)
