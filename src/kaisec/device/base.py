"""The device layer's interface: configuration, records, events and backend Protocols.

What the "Gonk" layer looks like to the API gateway, whichever backend sits
behind it. The simulated backends in this package implement these Protocols;
a backend for real hardware (a modem daemon, a sensor HAL) implements the same
ones and is handed to :class:`kaisec.device.Device` in their place.

The device knows nothing of permissions, trust classes or users: it does what
it is asked. Where data belongs to an app, the caller passes ``owner`` (the
app's origin) and the backend keeps that app's data apart from every other's.

Every record is a frozen dataclass with ``to_dict()`` giving its JSON form.
Every refusal is a :class:`kaisec.errors.DeviceError` whose ``reason`` names
it (docs/device.md lists them); ``ValueError`` means the caller misused the
API (e.g. an empty ``owner``).
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "AREAS",
    "CALL_STATES",
    "Alarm",
    "AlarmsBackend",
    "Call",
    "CallState",
    "CameraBackend",
    "Contact",
    "ContactsBackend",
    "DeviceConfig",
    "DeviceEvent",
    "EventCallback",
    "FileInfo",
    "GeolocationBackend",
    "Message",
    "Notification",
    "NotificationsBackend",
    "Position",
    "SettingsBackend",
    "SmsBackend",
    "StorageBackend",
    "SystemTimeBackend",
    "TelephonyBackend",
]

#: The storage areas, as KaiOS's DeviceStorage names them.
AREAS: tuple[str, ...] = ("pictures", "music", "videos", "sdcard", "apps", "crashes")

CallState = Literal["dialing", "alerting", "connected", "disconnected"]
#: A call's states in the order it goes through them.
CALL_STATES: tuple[CallState, ...] = ("dialing", "alerting", "connected", "disconnected")


@dataclass(frozen=True)
class DeviceConfig:
    """How the simulated device is set up, and its limits.

    The first five fields are the simulated hardware; the rest are limits that
    keep one app from filling the device.
    """

    has_sim: bool = True
    emergency_numbers: tuple[str, ...] = ("112", "911")
    premium_prefixes: tuple[str, ...] = ("900", "910")
    #: Latitude, longitude (degrees), accuracy (metres).
    position: tuple[float, float, float] = (48.8566, 2.3522, 25.0)
    max_file_size: int = 16 * 1024 * 1024
    #: Bytes of storage one owner may hold across every area.
    storage_quota: int = 256 * 1024 * 1024
    #: Files, notifications and alarms one owner may hold (each).
    max_items: int = 1000
    #: Seconds between a call's simulated states (dialing -> alerting -> connected).
    call_step: float = 0.05

    def __post_init__(self) -> None:
        lat, lon, acc = self.position
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            raise ValueError(
                f"position: expected lat in [-90, 90], lon in [-180, 180], got {lat}, {lon}"
            )
        if not (math.isfinite(acc) and acc >= 0):
            raise ValueError(f"position: expected an accuracy >= 0, got {acc}")
        for name in ("max_file_size", "storage_quota", "max_items"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        if not (math.isfinite(self.call_step) and 0 <= self.call_step <= 10):
            raise ValueError(f"call_step: expected 0..10 seconds, got {self.call_step}")
        for number in (*self.emergency_numbers, *self.premium_prefixes):
            if not number or not number.isascii() or not number.isdigit():
                raise ValueError(
                    f"expected digits for an emergency number or prefix, got {number!r}"
                )


# --- records -------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One voice call, placed by ``owner``."""

    id: str
    number: str
    state: CallState
    emergency: bool
    owner: str
    started: float

    def __post_init__(self) -> None:
        if self.state not in CALL_STATES:
            raise ValueError(f"expected a call state, got {self.state!r}")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "id": self.id,
            "number": self.number,
            "state": self.state,
            "emergency": self.emergency,
            "owner": self.owner,
            "started": self.started,
        }


@dataclass(frozen=True)
class Message:
    """One SMS, sent (by ``owner``) or received (``owner`` is None)."""

    id: str
    direction: Literal["sent", "received"]
    #: The other party: the receiver of a sent message, the sender of a received one.
    number: str
    body: str
    timestamp: float
    owner: str | None = None

    def __post_init__(self) -> None:
        if self.direction not in ("sent", "received"):
            raise ValueError(f"expected 'sent' or 'received', got {self.direction!r}")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "id": self.id,
            "direction": self.direction,
            "number": self.number,
            "body": self.body,
            "timestamp": self.timestamp,
            "owner": self.owner,
        }


@dataclass(frozen=True)
class Contact:
    """One address-book entry (the address book is the device's, not an app's)."""

    id: str
    name: str
    numbers: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    #: A device-storage reference, ``"pictures:<name>"``, or None.
    photo: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "id": self.id,
            "name": self.name,
            "numbers": list(self.numbers),
            "emails": list(self.emails),
            "photo": self.photo,
        }


@dataclass(frozen=True)
class FileInfo:
    """One file of one owner's storage area; never a host path."""

    area: str
    name: str
    size: int
    mime: str
    sha256: str
    created: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "area": self.area,
            "name": self.name,
            "size": self.size,
            "mime": self.mime,
            "sha256": self.sha256,
            "created": self.created,
        }


@dataclass(frozen=True)
class Position:
    """A geolocation fix: degrees, metres, device time."""

    lat: float
    lon: float
    accuracy: float
    timestamp: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "lat": self.lat,
            "lon": self.lon,
            "accuracy": self.accuracy,
            "timestamp": self.timestamp,
        }


@dataclass(frozen=True)
class Notification:
    """One desktop notification shown by ``owner``."""

    id: str
    title: str
    body: str
    owner: str
    timestamp: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "id": self.id,
            "title": self.title,
            "body": self.body,
            "owner": self.owner,
            "timestamp": self.timestamp,
        }


@dataclass(frozen=True)
class Alarm:
    """One alarm of ``owner``, due at device time ``at``; ``data`` is the app's JSON."""

    id: str
    at: float
    owner: str
    data: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"id": self.id, "at": self.at, "owner": self.owner, "data": dict(self.data)}


@dataclass(frozen=True)
class DeviceEvent:
    """Something the device reports: a call changed state, an SMS arrived...

    ``owner`` is the app the event belongs to, or None for a device-wide event;
    the gateway decides who may see it.
    """

    service: str
    name: str
    data: dict[str, Any]
    owner: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"service": self.service, "name": self.name, "data": self.data, "owner": self.owner}


EventCallback = Callable[[DeviceEvent], None]


# --- backend interfaces ------------------------------------------------------------------
# Every method is synchronous, thread-safe and quick; refusals raise DeviceError.


@runtime_checkable
class TelephonyBackend(Protocol):
    """The modem: voice calls."""

    @property
    def has_sim(self) -> bool: ...
    def set_sim(self, present: bool) -> None: ...
    def is_emergency(self, number: str) -> bool: ...
    def is_premium(self, number: str) -> bool: ...
    def dial(self, number: str, *, owner: str) -> Call: ...
    def hang_up(self, call_id: str, *, owner: str) -> Call: ...
    def calls(self, *, owner: str | None = None) -> builtins.list[Call]: ...


@runtime_checkable
class SmsBackend(Protocol):
    """The modem: text messages."""

    def send(self, to: str, body: str, *, owner: str) -> Message: ...
    def list(self, *, limit: int = 100) -> builtins.list[Message]: ...
    def receive(self, sender: str, body: str) -> Message: ...


@runtime_checkable
class ContactsBackend(Protocol):
    """The device's address book."""

    def find(
        self, *, name: str | None = None, number: str | None = None, limit: int = 100
    ) -> builtins.list[Contact]: ...
    def get(self, id: str) -> Contact: ...
    def add(self, fields: Mapping[str, Any]) -> Contact: ...
    def update(self, id: str, fields: Mapping[str, Any]) -> Contact: ...
    def remove(self, id: str) -> None: ...


@runtime_checkable
class StorageBackend(Protocol):
    """Device storage: files per (owner, area)."""

    AREAS: tuple[str, ...]

    def add(
        self, area: str, name: str, data: bytes, *, owner: str, mime: str | None = None
    ) -> FileInfo: ...
    def get(self, area: str, name: str, *, owner: str) -> tuple[FileInfo, bytes]: ...
    def list(self, area: str, *, owner: str) -> builtins.list[FileInfo]: ...
    def delete(self, area: str, name: str, *, owner: str) -> None: ...
    def remove_owner(self, owner: str) -> None: ...
    def cleanup(self) -> int: ...


@runtime_checkable
class SettingsBackend(Protocol):
    """Device settings (language, volume, theme...)."""

    def get(self, name: str) -> Any: ...
    def set(self, name: str, value: Any) -> None: ...
    def list(self) -> dict[str, Any]: ...


@runtime_checkable
class GeolocationBackend(Protocol):
    """The GPS."""

    def current_position(self) -> Position: ...


@runtime_checkable
class CameraBackend(Protocol):
    """The camera."""

    def take_picture(self, *, width: int = 320, height: int = 240) -> bytes: ...


@runtime_checkable
class NotificationsBackend(Protocol):
    """Desktop notifications, per owner."""

    def show(self, title: str, body: str, *, owner: str) -> Notification: ...
    def list(self, *, owner: str) -> builtins.list[Notification]: ...
    def close(self, id: str, *, owner: str) -> None: ...


@runtime_checkable
class AlarmsBackend(Protocol):
    """Alarms, per owner; each fires once (an ``alarms``/``fired`` event) and is gone."""

    def add(self, at: float, *, owner: str, data: Mapping[str, Any] | None = None) -> Alarm: ...
    def list(self, *, owner: str) -> builtins.list[Alarm]: ...
    def remove(self, id: str, *, owner: str) -> None: ...


@runtime_checkable
class SystemTimeBackend(Protocol):
    """The device clock and time zone."""

    def get(self) -> dict[str, Any]: ...
    def set(self, *, time: float | None = None, timezone: str | None = None) -> None: ...
