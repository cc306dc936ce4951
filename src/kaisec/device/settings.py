"""Device settings: language, volume, theme and the like.

State: the ``settings`` table of ``device.db`` holds every value set, as
JSON; :data:`DEFAULTS` answer for names never set. Names are 1..128
characters of ``[a-z0-9._-]``; values any JSON (at most
:data:`MAX_VALUE_BYTES` once encoded); at most :data:`MAX_SETTINGS` names
stored. A value round-trips through JSON: a tuple comes back as a list.

Events: ``settings``/``change`` (device-wide) with ``{"name", "value"}``
after each ``set``, as mozSettings' onsettingchange.
"""

from __future__ import annotations

import json
import re
from typing import Any

from kaisec.device._db import DeviceDB
from kaisec.device._runtime import EventBus, check_json
from kaisec.device.base import DeviceEvent
from kaisec.errors import DeviceError

__all__ = ["DEFAULTS", "MAX_SETTINGS", "MAX_VALUE_BYTES", "SimSettings", "check_setting_name"]

#: What a fresh device answers.
DEFAULTS: dict[str, Any] = {
    "audio.volume.alarm": 8,
    "audio.volume.content": 8,
    "audio.volume.notification": 8,
    "bluetooth.enabled": False,
    "geolocation.enabled": True,
    "language.current": "en-US",
    "ril.data.enabled": True,
    "screen.brightness": 0.8,
    "screen.timeout": 60,
    "theme.selected": "default",
    "wifi.enabled": True,
}
MAX_VALUE_BYTES = 8192
MAX_SETTINGS = 1000
_NAME = re.compile(r"[a-z0-9._-]{1,128}\Z", re.ASCII)


def check_setting_name(name: object) -> str:
    """``name`` if it is a valid setting name, else DeviceError(BAD_NAME)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise DeviceError(
            f"name: expected 1..128 characters of [a-z0-9._-], got {name!r}", reason="BAD_NAME"
        )
    return name


class SimSettings:
    """Settings in SQLite, over built-in defaults."""

    def __init__(self, db: DeviceDB, bus: EventBus) -> None:
        self._db = db
        self._bus = bus

    def get(self, name: str) -> Any:
        """The value of setting ``name`` (its default when never set).

        Raises:
            DeviceError: ``BAD_NAME``; ``NOT_FOUND`` (never set, no default).
        """
        name = check_setting_name(name)
        rows = self._db.read("SELECT value FROM settings WHERE name = ?", (name,))
        if rows:
            return json.loads(rows[0][0])
        if name in DEFAULTS:
            return json.loads(json.dumps(DEFAULTS[name]))
        raise DeviceError(f"no setting {name!r}", reason="NOT_FOUND")

    def set(self, name: str, value: Any) -> None:
        """Set ``name`` to ``value`` (any JSON value, null included).

        Raises:
            DeviceError: ``BAD_NAME``; ``BAD_VALUE`` (not JSON-serialisable);
                ``TOO_LARGE``; ``QUOTA`` (too many settings).
        """
        name = check_setting_name(name)
        text = check_json(value, field="value", max_bytes=MAX_VALUE_BYTES)
        with self._db.lock:  # events leave in commit order
            with self._db.transaction() as conn:
                if not conn.execute("SELECT 1 FROM settings WHERE name = ?", (name,)).fetchone():
                    count = conn.execute("SELECT count(*) FROM settings").fetchone()[0]
                    if count >= MAX_SETTINGS:
                        raise DeviceError(f"{count} settings stored already", reason="QUOTA")
                conn.execute(
                    "INSERT OR REPLACE INTO settings (name, value) VALUES (?, ?)", (name, text)
                )
            self._bus.emit(
                DeviceEvent("settings", "change", {"name": name, "value": json.loads(text)}, None)
            )

    def list(self) -> dict[str, Any]:
        """Every setting: the defaults, overridden by what was set; sorted by name."""
        out: dict[str, Any] = json.loads(json.dumps(DEFAULTS))
        for name, text in self._db.read("SELECT name, value FROM settings"):
            out[name] = json.loads(text)
        return dict(sorted(out.items()))
