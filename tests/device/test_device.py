"""The facade: opening, closing, events, the backend Protocols."""

from __future__ import annotations

import json
import sqlite3
import threading
from typing import Any

import pytest

from kaisec.device import (
    AlarmsBackend,
    CameraBackend,
    ContactsBackend,
    Device,
    DeviceEvent,
    GeolocationBackend,
    NotificationsBackend,
    SettingsBackend,
    SmsBackend,
    StorageBackend,
    SystemTimeBackend,
    TelephonyBackend,
    open_device,
)
from kaisec.errors import DeviceError
from kaisec.home import Home

A = "http://a.localhost"


def test_open_creates_storage_and_database(tmp_path: Any) -> None:
    home = Home(tmp_path / "fresh")  # not even the home exists yet
    with open_device(home) as dev:
        assert (home.storage_dir / "device.db").is_file()
        assert home.storage_dir.stat().st_mode & 0o777 == 0o700
        con = sqlite3.connect(home.storage_dir / "device.db")
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        con.close()
        assert dev.settings.get("language.current") == "en-US"


def test_backends_satisfy_the_protocols(dev: Device) -> None:
    for backend, proto in [
        (dev.telephony, TelephonyBackend),
        (dev.sms, SmsBackend),
        (dev.contacts, ContactsBackend),
        (dev.storage, StorageBackend),
        (dev.settings, SettingsBackend),
        (dev.geolocation, GeolocationBackend),
        (dev.camera, CameraBackend),
        (dev.notifications, NotificationsBackend),
        (dev.alarms, AlarmsBackend),
        (dev.system_time, SystemTimeBackend),
    ]:
        assert isinstance(backend, proto), proto


def test_close_is_idempotent_and_final(home: Home) -> None:
    dev = open_device(home)
    dev.close()
    dev.close()
    with pytest.raises(sqlite3.ProgrammingError):
        dev.settings.list()
    with pytest.raises(RuntimeError):
        dev.subscribe(lambda e: None)


def test_close_stops_the_device_threads(home: Home) -> None:
    before = set(threading.enumerate())
    with open_device(home) as dev:
        dev.subscribe(lambda e: None)
        dev.telephony.dial("123", owner=A)
        dev.sms.receive("1", "x")
        started = {t.name for t in set(threading.enumerate()) - before}
        assert {"kaisec-device-events", "kaisec-device-timers"} <= started
    assert not [
        t for t in set(threading.enumerate()) - before if t.name.startswith("kaisec-device")
    ]


def test_events_from_every_backend_arrive_in_order(dev: Device, events: Any) -> None:
    dev.settings.set("a", 1)
    dev.sms.receive("123", "x")
    dev.contacts.add({"name": "C"})
    dev.storage.add("sdcard", "f", b"", owner=A)
    dev.notifications.show("t", "", owner=A)
    dev.system_time.set(timezone="Europe/Paris")
    got = [(e.service, e.name) for e in events.drain()]
    assert got == [
        ("settings", "change"),
        ("sms", "received"),
        ("contacts", "change"),
        ("storage", "change"),
        ("notifications", "show"),
        ("system_time", "change"),
    ]


def test_events_are_json_and_come_from_the_event_thread(dev: Device) -> None:
    seen: list[tuple[DeviceEvent, str]] = []
    dev.subscribe(lambda e: seen.append((e, threading.current_thread().name)))
    dev.sms.send("123", "x", owner=A)
    assert dev.flush_events()
    [(event, thread)] = seen
    assert thread == "kaisec-device-events"
    assert json.loads(json.dumps(event.to_dict())) == event.to_dict()


def test_a_failing_subscriber_breaks_nothing(dev: Device, caplog: pytest.LogCaptureFixture) -> None:
    got: list[DeviceEvent] = []

    def bad(event: DeviceEvent) -> None:
        raise RuntimeError("subscriber bug")

    dev.subscribe(bad)
    dev.subscribe(got.append)
    dev.sms.receive("1", "a")
    dev.sms.receive("1", "b")
    assert dev.flush_events()
    assert [e.data["message"]["body"] for e in got] == ["a", "b"]
    assert "subscriber failed" in caplog.text


def test_a_subscriber_may_call_back_into_the_device(dev: Device) -> None:
    got: list[Any] = []

    def on_event(event: DeviceEvent) -> None:
        if event.service == "sms":
            got.append(dev.sms.list(limit=1)[0].body)
            dev.settings.set("last.sms", event.data["message"]["body"])
            got.append(dev.flush_events(timeout=30))  # would wait on itself: refuses at once

    dev.subscribe(on_event)
    dev.sms.receive("1", "reentrant")
    assert dev.flush_events()
    assert dev.flush_events()
    assert got == ["reentrant", False]
    assert dev.settings.get("last.sms") == "reentrant"


def test_unsubscribe(dev: Device) -> None:
    got: list[DeviceEvent] = []
    unsubscribe = dev.subscribe(got.append)
    dev.sms.receive("1", "a")
    assert dev.flush_events()
    unsubscribe()
    unsubscribe()
    dev.sms.receive("1", "b")
    assert dev.flush_events()
    assert len(got) == 1


def test_device_error_shape(dev: Device) -> None:
    with pytest.raises(DeviceError) as exc:
        dev.storage.get("sdcard", "missing", owner=A)
    d = exc.value.to_dict()
    assert d["code"] == "DEVICE_ERROR" and d["reason"] == "NOT_FOUND"
    assert "missing" in d["message"]


def test_newer_schema_is_refused(home: Home) -> None:
    open_device(home).close()
    con = sqlite3.connect(home.storage_dir / "device.db")
    con.execute("PRAGMA user_version = 99")
    con.commit()
    con.close()
    with pytest.raises(RuntimeError, match="newer"):
        open_device(home)
    con = sqlite3.connect(home.storage_dir / "device.db")
    con.execute("PRAGMA user_version = 1")
    con.commit()
    con.close()
    open_device(home).close()  # and the failed open released its lock


def test_two_devices_share_state(home: Home) -> None:
    with open_device(home) as first, open_device(home) as second:
        first.contacts.add({"name": "Shared"})
        assert [c.name for c in second.contacts.find()] == ["Shared"]
        second.storage.add("sdcard", "f", b"x", owner=A)
        assert first.storage.get("sdcard", "f", owner=A)[1] == b"x"


def test_concurrent_use_from_many_threads(dev: Device) -> None:
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(10):
                dev.contacts.add({"name": f"c{n}-{i}"})
                dev.settings.set(f"k{n}", i)
                dev.notifications.show("t", "", owner=f"http://{n}.localhost")
                dev.sms.receive("1", f"{n}-{i}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(dev.contacts.find(limit=1000)) == 60
    assert len(dev.sms.list(limit=1000)) == 60
    assert all(dev.settings.get(f"k{n}") == 9 for n in range(6))


class FakeModem:
    """A stand-in for a real modem backend: what a hardware backend would plug in."""

    def __init__(self, emit: Any) -> None:
        self.emit = emit
        self.placed: list[str] = []
        self.closed = False

    @property
    def has_sim(self) -> bool:
        return True

    def set_sim(self, present: bool) -> None:
        raise NotImplementedError

    def is_emergency(self, number: str) -> bool:
        return number == "112"

    def is_premium(self, number: str) -> bool:
        return False

    def dial(self, number: str, *, owner: str) -> Any:
        from kaisec.device import Call

        call = Call("real-1", number, "connected", False, owner, 0.0)
        self.placed.append(number)
        self.emit(DeviceEvent("telephony", "callstatechange", {"call": call.to_dict()}, owner))
        return call

    def hang_up(self, call_id: str, *, owner: str) -> Any:
        raise DeviceError("no such call", reason="NOT_FOUND")

    def calls(self, *, owner: str | None = None) -> list[Any]:
        return []

    def close(self) -> None:
        self.closed = True


def test_a_real_backend_plugs_in(home: Home) -> None:
    sim = open_device(home)
    modem = FakeModem(sim.events.emit)
    assert isinstance(modem, TelephonyBackend)
    dev = Device(
        config=sim.config,
        events=sim.events,
        telephony=modem,
        sms=sim.sms,
        contacts=sim.contacts,
        storage=sim.storage,
        settings=sim.settings,
        geolocation=sim.geolocation,
        camera=sim.camera,
        notifications=sim.notifications,
        alarms=sim.alarms,
        system_time=sim.system_time,
        on_subscribe=sim.alarms.arm,  # type: ignore[attr-defined]
        closers=[modem.close, sim.close],
    )
    got: list[DeviceEvent] = []
    dev.subscribe(got.append)
    dev.telephony.dial("555", owner=A)
    dev.sms.receive("1", "x")
    assert dev.flush_events()
    assert [(e.service, e.name) for e in got] == [
        ("telephony", "callstatechange"),
        ("sms", "received"),
    ]
    dev.close()
    assert modem.closed
    with pytest.raises(sqlite3.ProgrammingError):
        sim.settings.list()
