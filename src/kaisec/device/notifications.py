"""Desktop notifications and alarms, both kept per owner.

State: the ``notifications`` and ``alarms`` tables of ``device.db``. Like
storage, every call takes the ``owner`` and touches only that owner's rows: an
app never lists or closes another app's notification, nor removes its alarm.
``config.max_items`` caps each owner's notifications and alarms.

Alarms fire on the device's timer thread when the device clock
(:mod:`kaisec.device.systemtime`) reaches ``at``: the alarm is deleted and an
``alarms``/``fired`` event carries it to its owner. An alarm already due fires
at once. Alarms fire only in a device that has (or had) an event subscriber,
so a short-lived device (a command-line uninstall) never consumes them; when
two devices on one home both fire, the delete decides which one reports it.

Events: ``notifications``/``show`` (``{"notification"}``) and
``notifications``/``close`` (``{"id"}``), ``alarms``/``fired``
(``{"alarm"}``), each with the owner set.
"""

from __future__ import annotations

import builtins
import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

from kaisec.device._db import DeviceDB
from kaisec.device._runtime import (
    EventBus,
    Scheduler,
    TimerHandle,
    check_json,
    check_owner,
    check_text,
    new_id,
)
from kaisec.device.base import Alarm, DeviceConfig, DeviceEvent, Notification
from kaisec.device.systemtime import check_time
from kaisec.errors import DeviceError

__all__ = ["MAX_ALARM_DATA", "SimAlarms", "SimNotifications"]

#: Bytes of an alarm's JSON data.
MAX_ALARM_DATA = 4096
#: Longest wait before the alarm timer looks again (alarms set by another
#: process, host clock jumps).
_RECHECK = 60.0
_NCOLS = "id, title, body, owner, timestamp"
_ACOLS = "id, at, owner, data"


def _id(id: object) -> str:
    return check_text(id, field="id", reason="NOT_FOUND", max_len=64)


class SimNotifications:
    """Desktop notifications in SQLite."""

    def __init__(
        self, db: DeviceDB, bus: EventBus, config: DeviceConfig, *, clock: Callable[[], float]
    ) -> None:
        self._db = db
        self._bus = bus
        self._config = config
        self._clock = clock

    def show(self, title: str, body: str, *, owner: str) -> Notification:
        """Show a notification of ``owner``.

        Raises:
            DeviceError: ``BAD_FIELD`` (title 1..256 characters, body up to
                4096, no control characters but newline and tab in the body);
                ``QUOTA`` (``owner`` has ``max_items`` notifications).
        """
        owner = check_owner(owner)
        n = Notification(
            id=new_id(),
            title=check_text(title, field="title", max_len=256, min_len=1),
            body=check_text(body, field="body", max_len=4096, multiline=True),
            owner=owner,
            timestamp=self._clock(),
        )
        with self._db.lock:  # events leave in commit order
            with self._db.transaction() as conn:
                count = conn.execute(
                    "SELECT count(*) FROM notifications WHERE owner = ?", (owner,)
                ).fetchone()[0]
                if count >= self._config.max_items:
                    raise DeviceError(f"{count} notifications shown already", reason="QUOTA")
                conn.execute(
                    f"INSERT INTO notifications ({_NCOLS}) VALUES (?, ?, ?, ?, ?)",
                    (n.id, n.title, n.body, n.owner, n.timestamp),
                )
            self._bus.emit(
                DeviceEvent("notifications", "show", {"notification": n.to_dict()}, owner)
            )
        return n

    def list(self, *, owner: str) -> builtins.list[Notification]:
        """``owner``'s notifications, oldest first."""
        rows = self._db.read(
            f"SELECT {_NCOLS} FROM notifications WHERE owner = ? ORDER BY seq",
            (check_owner(owner),),
        )
        return [Notification(*r) for r in rows]

    def close(self, id: str, *, owner: str) -> None:
        """Close ``owner``'s notification ``id``.

        Raises:
            DeviceError: ``NOT_FOUND`` (``owner`` shows no such notification).
        """
        owner = check_owner(owner)
        key = _id(id)
        with self._db.lock:
            with self._db.transaction() as conn:
                cur = conn.execute(
                    "DELETE FROM notifications WHERE id = ? AND owner = ?", (key, owner)
                )
                if cur.rowcount != 1:
                    raise DeviceError(f"no notification {id!r}", reason="NOT_FOUND")
            self._bus.emit(DeviceEvent("notifications", "close", {"id": key}, owner))


def _alarm(r: tuple[Any, ...]) -> Alarm:
    return Alarm(id=r[0], at=r[1], owner=r[2], data=json.loads(r[3]))


class SimAlarms:
    """Alarms in SQLite, fired by the device's timer thread."""

    def __init__(
        self,
        db: DeviceDB,
        bus: EventBus,
        scheduler: Scheduler,
        config: DeviceConfig,
        *,
        clock: Callable[[], float],
    ) -> None:
        self._db = db
        self._bus = bus
        self._scheduler = scheduler
        self._config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._armed = False
        self._timer: TimerHandle | None = None

    def add(self, at: float, *, owner: str, data: Mapping[str, Any] | None = None) -> Alarm:
        """Set an alarm of ``owner`` for device time ``at`` (seconds since the epoch).

        Raises:
            DeviceError: ``BAD_TIME``; ``BAD_VALUE`` (``data`` not a JSON
                object); ``TOO_LARGE`` (over :data:`MAX_ALARM_DATA` bytes);
                ``QUOTA`` (``owner`` has ``max_items`` alarms).
        """
        owner = check_owner(owner)
        when = check_time(at, field="at")
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise DeviceError(
                f"data: expected an object, got {type(data).__name__}", reason="BAD_VALUE"
            )
        text = check_json(dict(data), field="data", max_bytes=MAX_ALARM_DATA)
        alarm = Alarm(id=new_id(), at=when, owner=owner, data=json.loads(text))
        with self._db.transaction() as conn:
            count = conn.execute(
                "SELECT count(*) FROM alarms WHERE owner = ?", (owner,)
            ).fetchone()[0]
            if count >= self._config.max_items:
                raise DeviceError(f"{count} alarms set already", reason="QUOTA")
            conn.execute(
                f"INSERT INTO alarms ({_ACOLS}) VALUES (?, ?, ?, ?)", (alarm.id, when, owner, text)
            )
        self.reschedule()
        return alarm

    def list(self, *, owner: str) -> builtins.list[Alarm]:
        """``owner``'s pending alarms, soonest first."""
        rows = self._db.read(
            f"SELECT {_ACOLS} FROM alarms WHERE owner = ? ORDER BY at, seq", (check_owner(owner),)
        )
        return [_alarm(r) for r in rows]

    def remove(self, id: str, *, owner: str) -> None:
        """Remove ``owner``'s alarm ``id``.

        Raises:
            DeviceError: ``NOT_FOUND`` (``owner`` has no such pending alarm).
        """
        owner = check_owner(owner)
        with self._db.transaction() as conn:
            cur = conn.execute("DELETE FROM alarms WHERE id = ? AND owner = ?", (_id(id), owner))
            if cur.rowcount != 1:
                raise DeviceError(f"no alarm {id!r}", reason="NOT_FOUND")
        self.reschedule()

    def arm(self) -> None:
        """Start firing alarms (the device calls this on its first subscriber)."""
        with self._lock:
            self._armed = True
        self.reschedule()

    def reschedule(self) -> None:
        """Set the timer for the soonest alarm (after any change of alarms or clock)."""
        with self._lock:
            if not self._armed:
                return
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            rows = self._db.read("SELECT min(at) FROM alarms")
            if rows[0][0] is None:
                return
            delay = min(float(rows[0][0]) - self._clock(), _RECHECK)
            self._timer = self._scheduler.call_later(delay, self._fire)

    def _fire(self) -> None:
        with self._db.lock:
            now = self._clock()
            rows = self._db.read(
                f"SELECT {_ACOLS} FROM alarms WHERE at <= ? ORDER BY at, seq", (now,)
            )
            for r in rows:
                with self._db.transaction() as conn:
                    claimed = conn.execute("DELETE FROM alarms WHERE id = ?", (r[0],)).rowcount
                if claimed == 1:  # another device on this home may have fired it
                    alarm = _alarm(r)
                    self._bus.emit(
                        DeviceEvent("alarms", "fired", {"alarm": alarm.to_dict()}, alarm.owner)
                    )
        self.reschedule()
