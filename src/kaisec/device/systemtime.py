"""The device clock and time zone.

State: an offset from the host clock and an IANA time zone name, in the
``state`` table of ``device.db`` (keys ``time.offset``, ``time.timezone``),
loaded when the device opens. Setting the time stores a new offset; the host
clock is never touched. Every timestamp the device hands out (calls,
messages, files, positions) and every alarm uses this clock.

Events: ``system_time``/``change`` (device-wide) with ``{"time", "timezone"}``
after a ``set`` that changed something, as moztimechange.
"""

from __future__ import annotations

import math
import re
import threading
import time as _time
import zoneinfo
from collections.abc import Callable
from functools import cache
from typing import Any

from kaisec.device._db import DeviceDB
from kaisec.device._runtime import EventBus
from kaisec.device.base import DeviceEvent
from kaisec.errors import DeviceError

__all__ = ["DEFAULT_TIMEZONE", "MAX_TIME", "SimSystemTime", "check_time", "check_timezone"]

DEFAULT_TIMEZONE = "UTC"
#: The latest time accepted (2242-03-16), far past any alarm a phone needs.
MAX_TIME = float(2**33)
_ZONE = re.compile(r"[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+){0,2}\Z", re.ASCII)


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


def check_time(value: object, *, field: str = "time") -> float:
    """``value`` as seconds since the epoch, in 0..MAX_TIME, else DeviceError(BAD_TIME)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DeviceError(
            f"{field}: expected seconds since the epoch, got {type(value).__name__}",
            reason="BAD_TIME",
        )
    t = float(value)
    if not math.isfinite(t) or not 0.0 <= t <= MAX_TIME:
        raise DeviceError(f"{field}: expected 0..{MAX_TIME:.0f}, got {value!r}", reason="BAD_TIME")
    return t


def check_timezone(name: object) -> str:
    """``name`` if it is a known IANA time zone, else DeviceError(BAD_TIMEZONE)."""
    # Checked against the list of zones before zoneinfo ever sees it: the key
    # becomes a path under TZPATH, and only names from that list may do so.
    if not isinstance(name, str) or len(name) > 64 or not _ZONE.match(name) or name not in _zones():
        raise DeviceError(f"timezone: unknown time zone {name!r}", reason="BAD_TIMEZONE")
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise DeviceError(f"timezone: unusable time zone {name!r}", reason="BAD_TIMEZONE") from exc
    return name


class SimSystemTime:
    """A settable clock: the host's time plus a stored offset."""

    def __init__(
        self, db: DeviceDB, bus: EventBus, *, host_clock: Callable[[], float] = _time.time
    ) -> None:
        self._db = db
        self._bus = bus
        self._host_clock = host_clock
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []
        state = dict(self._db.read("SELECT key, value FROM state WHERE key LIKE 'time.%'"))
        self._offset = float(state.get("time.offset", 0.0))
        self._timezone = str(state.get("time.timezone", DEFAULT_TIMEZONE))

    def now(self) -> float:
        """The device's current time, seconds since the epoch."""
        return self._host_clock() + self._offset

    def get(self) -> dict[str, Any]:
        """``{"time": seconds since the epoch, "timezone": IANA name}``."""
        with self._lock:
            return {"time": self.now(), "timezone": self._timezone}

    def set(self, *, time: float | None = None, timezone: str | None = None) -> None:
        """Set the device time, the time zone, or both (None leaves one as it is).

        Raises:
            DeviceError: ``BAD_TIME`` (not a number in 0..MAX_TIME);
                ``BAD_TIMEZONE`` (not a known IANA zone).
        """
        new_time = None if time is None else check_time(time)
        new_zone = None if timezone is None else check_timezone(timezone)
        if new_time is None and new_zone is None:
            return
        with self._lock, self._db.lock:
            offset = self._offset if new_time is None else new_time - self._host_clock()
            zone = self._timezone if new_zone is None else new_zone
            with self._db.transaction() as conn:
                conn.executemany(
                    "INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)",
                    [("time.offset", repr(offset)), ("time.timezone", zone)],
                )
            self._offset, self._timezone = offset, zone
            self._bus.emit(
                DeviceEvent("system_time", "change", {"time": self.now(), "timezone": zone}, None)
            )
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every change (the alarms reschedule on it)."""
        self._listeners.append(listener)
