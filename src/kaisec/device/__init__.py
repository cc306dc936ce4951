"""The device layer ("Gonk"): simulated hardware behind one facade.

The API gateway (:mod:`kaisec.daemon`) is the only caller. The device knows
nothing of permissions, trust classes or users; it does what it is asked, and
where data belongs to an app the gateway passes the app's origin as
``owner``. :func:`open_device` builds the simulated device of a home, whose
state lives in ``<home>/storage/`` (``device.db`` and ``blobs/``) and so
survives a daemon restart::

    dev = open_device(home)
    unsubscribe = dev.subscribe(on_event)      # called from a device thread
    call = dev.telephony.dial("112", owner="app://dialer.example")
    dev.close()

A backend for real hardware implements the Protocols of
:mod:`kaisec.device.base` and is handed to :class:`Device` in place of the
simulated one (docs/device.md, "Plugging in a real backend").
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from types import TracebackType

from kaisec.device._db import DeviceDB
from kaisec.device._runtime import EventBus, InstanceLock, Scheduler
from kaisec.device.base import (
    AREAS,
    Alarm,
    AlarmsBackend,
    Call,
    CameraBackend,
    Contact,
    ContactsBackend,
    DeviceConfig,
    DeviceEvent,
    EventCallback,
    FileInfo,
    GeolocationBackend,
    Message,
    Notification,
    NotificationsBackend,
    Position,
    SettingsBackend,
    SmsBackend,
    StorageBackend,
    SystemTimeBackend,
    TelephonyBackend,
)
from kaisec.device.contacts import SimContacts
from kaisec.device.notifications import SimAlarms, SimNotifications
from kaisec.device.sensors import SimCamera, SimGeolocation
from kaisec.device.settings import SimSettings
from kaisec.device.sms import SimSms
from kaisec.device.storage import SimStorage
from kaisec.device.systemtime import SimSystemTime
from kaisec.device.telephony import SimTelephony
from kaisec.home import Home

__all__ = [
    "AREAS",
    "Alarm",
    "AlarmsBackend",
    "Call",
    "CameraBackend",
    "Contact",
    "ContactsBackend",
    "Device",
    "DeviceConfig",
    "DeviceEvent",
    "EventBus",
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
    "open_device",
]

log = logging.getLogger(__name__)

#: The database file under ``Home.storage_dir``.
DB_NAME = "device.db"


class Device:
    """Every backend of one device, and its event stream.

    Each attribute is a backend (see :mod:`kaisec.device.base`); every method
    is synchronous, thread-safe and quick. Events from every backend reach
    the subscribers in the order they happened, on the device's event thread.
    """

    def __init__(
        self,
        *,
        config: DeviceConfig,
        events: EventBus,
        telephony: TelephonyBackend,
        sms: SmsBackend,
        contacts: ContactsBackend,
        storage: StorageBackend,
        settings: SettingsBackend,
        geolocation: GeolocationBackend,
        camera: CameraBackend,
        notifications: NotificationsBackend,
        alarms: AlarmsBackend,
        system_time: SystemTimeBackend,
        on_subscribe: Callable[[], None] | None = None,
        closers: Sequence[Callable[[], None]] = (),
    ) -> None:
        """Assemble a device; :func:`open_device` does it for the simulated one.

        Args:
            events: the bus every backend emits on; :meth:`subscribe` reads it.
            on_subscribe: called on each :meth:`subscribe` (the simulated
                alarms start firing on the first).
            closers: called in order by :meth:`close`.
        """
        self.config = config
        self.telephony = telephony
        self.sms = sms
        self.contacts = contacts
        self.storage = storage
        self.settings = settings
        self.geolocation = geolocation
        self.camera = camera
        self.notifications = notifications
        self.alarms = alarms
        self.system_time = system_time
        self._events = events
        self._on_subscribe = on_subscribe
        self._closers = list(closers)
        self._closed = False

    @property
    def events(self) -> EventBus:
        """The bus every backend of this device emits on (for assembling a new device)."""
        return self._events

    def subscribe(self, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback(event)`` for every :class:`DeviceEvent` from now on.

        The callback runs on the device's event thread, never on the caller's
        and never while a backend holds a lock; it should hand the event off
        quickly (e.g. ``loop.call_soon_threadsafe``). An exception in it is
        logged and otherwise ignored.

        Returns:
            A function that unsubscribes (safe to call twice).
        """
        unsubscribe = self._events.subscribe(callback)
        if self._on_subscribe is not None:
            self._on_subscribe()
        return unsubscribe

    def flush_events(self, timeout: float = 5.0) -> bool:
        """Wait until every event emitted so far reached the subscribers; False on timeout."""
        return self._events.flush(timeout)

    def close(self) -> None:
        """Stop the device's threads and close its database (idempotent).

        Events already emitted are delivered first; pending call-state
        changes and alarm timers are dropped (alarms stay stored).
        """
        if self._closed:
            return
        self._closed = True
        for closer in self._closers:
            try:
                closer()
            except Exception:  # close everything else regardless
                log.exception("closing the device failed")

    def __enter__(self) -> Device:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_device(home: Home, *, config: DeviceConfig | None = None) -> Device:
    """Open the simulated device of ``home``, creating ``storage/`` and its database.

    Several devices may be open on one home (the daemon and a command-line
    uninstall, say); they share the database. A device that opens while no
    other is alive also tidies what a crash may have left: calls still
    active are marked disconnected and orphan storage blobs are removed.

    Raises:
        OSError: the storage directory cannot be created.
        sqlite3.Error: the database cannot be opened.
    """
    config = config or DeviceConfig()
    root = home.storage_dir
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    closers: list[Callable[[], None]] = []
    try:
        lock = InstanceLock(root / "device.lock")
        closers.append(lock.close)
        alone = lock.acquire()
        db = DeviceDB(root / DB_NAME)
        closers.insert(0, db.close)
        events = EventBus()
        closers.insert(0, events.close)
        scheduler = Scheduler()
        closers.insert(0, scheduler.close)

        system_time = SimSystemTime(db, events)
        clock = system_time.now
        telephony = SimTelephony(db, events, scheduler, config, clock=clock, alone=alone)
        closers.insert(1, telephony.close)  # after the timers stop, before the events do
        storage = SimStorage(db, events, config, root, clock=clock)
        if alone:
            removed = storage.cleanup(min_age=0.0)
            if removed:
                log.info("removed %d orphan storage blob(s)", removed)
        alarms = SimAlarms(db, events, scheduler, config, clock=clock)
        system_time.on_change(alarms.reschedule)
        return Device(
            config=config,
            events=events,
            telephony=telephony,
            sms=SimSms(db, events, telephony, clock=clock),
            contacts=SimContacts(db, events, clock=clock),
            storage=storage,
            settings=SimSettings(db, events),
            geolocation=SimGeolocation(config.position, clock=clock),
            camera=SimCamera(),
            notifications=SimNotifications(db, events, config, clock=clock),
            alarms=alarms,
            system_time=system_time,
            on_subscribe=alarms.arm,
            closers=closers,
        )
    except BaseException:
        for closer in closers:
            with contextlib.suppress(Exception):
                closer()
        raise
