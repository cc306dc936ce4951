"""Desktop notifications and alarms: per owner, persistent, alarms fire."""

from __future__ import annotations

import queue
import time
from typing import Any

import pytest

from kaisec.device import Device, DeviceConfig, open_device
from kaisec.device.notifications import MAX_ALARM_DATA
from kaisec.errors import DeviceError
from kaisec.home import Home

A = "http://a.localhost"
B = "http://b.localhost"


def reason(exc: pytest.ExceptionInfo[DeviceError]) -> str:
    return str(exc.value.details["reason"])


# --- notifications -----------------------------------------------------------------


def test_show_list_close(dev: Device, events: Any) -> None:
    n = dev.notifications.show("Hi", "line 1\nline 2", owner=A)
    assert (n.title, n.body, n.owner) == ("Hi", "line 1\nline 2", A)
    assert dev.notifications.list(owner=A) == [n]
    dev.notifications.close(n.id, owner=A)
    assert dev.notifications.list(owner=A) == []
    got = [(e.service, e.name, e.owner, e.data) for e in events.drain()]
    assert got == [
        ("notifications", "show", A, {"notification": n.to_dict()}),
        ("notifications", "close", A, {"id": n.id}),
    ]


def test_notifications_are_per_owner(dev: Device) -> None:
    n = dev.notifications.show("A's", "", owner=A)
    assert dev.notifications.list(owner=B) == []
    with pytest.raises(DeviceError) as exc:
        dev.notifications.close(n.id, owner=B)
    assert reason(exc) == "NOT_FOUND"
    assert dev.notifications.list(owner=A) == [n]


@pytest.mark.parametrize(
    ("title", "body"),
    [
        ("", "b"),
        ("x" * 257, ""),
        ("t\x1b[31m", ""),
        ("t", "x" * 4097),
        ("t", "\x00"),
        (None, ""),
        ("t", 1),
    ],
)
def test_bad_notification(shared_dev: Device, title: Any, body: Any) -> None:
    with pytest.raises(DeviceError) as exc:
        shared_dev.notifications.show(title, body, owner=A)
    assert reason(exc) == "BAD_FIELD"


def test_notification_quota_and_persistence(home: Home) -> None:
    with open_device(home, config=DeviceConfig(max_items=2)) as dev:
        dev.notifications.show("1", "", owner=A)
        dev.notifications.show("2", "", owner=A)
        with pytest.raises(DeviceError) as exc:
            dev.notifications.show("3", "", owner=A)
        assert reason(exc) == "QUOTA"
        dev.notifications.show("1", "", owner=B)
    with open_device(home) as dev:
        assert [n.title for n in dev.notifications.list(owner=A)] == ["1", "2"]
        with pytest.raises(DeviceError) as exc:
            dev.notifications.close("nope", owner=A)
        assert reason(exc) == "NOT_FOUND"


# --- alarms ---------------------------------------------------------------------------


def test_add_list_remove(dev: Device) -> None:
    now = dev.system_time.get()["time"]
    late = dev.alarms.add(now + 3600, owner=A, data={"k": [1, "two"]})
    soon = dev.alarms.add(now + 60, owner=A)
    assert soon.data == {} and late.data == {"k": [1, "two"]}
    assert dev.alarms.list(owner=A) == [soon, late]
    assert late.to_dict() == {
        "id": late.id,
        "at": now + 3600,
        "owner": A,
        "data": {"k": [1, "two"]},
    }
    dev.alarms.remove(soon.id, owner=A)
    assert dev.alarms.list(owner=A) == [late]


def test_alarms_are_per_owner(dev: Device) -> None:
    a = dev.alarms.add(dev.system_time.get()["time"] + 3600, owner=A)
    assert dev.alarms.list(owner=B) == []
    with pytest.raises(DeviceError) as exc:
        dev.alarms.remove(a.id, owner=B)
    assert reason(exc) == "NOT_FOUND"
    assert dev.alarms.list(owner=A) == [a]


@pytest.mark.parametrize(
    ("at", "data", "why"),
    [
        (-1, None, "BAD_TIME"),
        (float("nan"), None, "BAD_TIME"),
        (float("inf"), None, "BAD_TIME"),
        (2.0**34, None, "BAD_TIME"),
        ("soon", None, "BAD_TIME"),
        (True, None, "BAD_TIME"),
        (10.0, ["not", "a", "mapping"], "BAD_VALUE"),
        (10.0, {"x": object()}, "BAD_VALUE"),
        (10.0, {"x": "y" * MAX_ALARM_DATA}, "TOO_LARGE"),
    ],
)
def test_bad_alarm(shared_dev: Device, at: Any, data: Any, why: str) -> None:
    with pytest.raises(DeviceError) as exc:
        shared_dev.alarms.add(at, owner=A, data=data)
    assert reason(exc) == why
    assert shared_dev.alarms.list(owner=A) == []


def test_alarm_quota(home: Home) -> None:
    with open_device(home, config=DeviceConfig(max_items=1)) as dev:
        dev.alarms.add(4e9, owner=A)
        with pytest.raises(DeviceError) as exc:
            dev.alarms.add(4e9, owner=A)
        assert reason(exc) == "QUOTA"
        dev.alarms.add(4e9, owner=B)


def test_alarm_fires_once_for_its_owner_and_is_gone(dev: Device, events: Any) -> None:
    now = dev.system_time.get()["time"]
    a = dev.alarms.add(now + 0.05, owner=A, data={"wake": True})
    later = dev.alarms.add(now + 3600, owner=B)
    e = events.next()
    assert (e.service, e.name, e.owner, e.data) == ("alarms", "fired", A, {"alarm": a.to_dict()})
    assert dev.alarms.list(owner=A) == []
    assert dev.alarms.list(owner=B) == [later]
    time.sleep(0.05)
    assert events.drain() == []


def test_due_alarms_fire_in_time_order(dev: Device) -> None:
    now = dev.system_time.get()["time"]
    second = dev.alarms.add(now - 1, owner=B)
    first = dev.alarms.add(now - 2, owner=A)
    got: queue.Queue[Any] = queue.Queue()
    dev.subscribe(got.put)  # both are due when the alarms start firing
    assert [got.get(timeout=2).data["alarm"]["id"] for _ in range(2)] == [first.id, second.id]


def test_alarms_wait_for_a_subscriber(dev: Device) -> None:
    a = dev.alarms.add(dev.system_time.get()["time"] - 1, owner=A)
    time.sleep(0.05)
    assert dev.alarms.list(owner=A) == [a]  # nobody listens: not consumed
    got: list[Any] = []
    dev.subscribe(got.append)
    deadline = time.monotonic() + 2
    while not got and time.monotonic() < deadline:
        time.sleep(0.005)
    assert [e.data["alarm"]["id"] for e in got] == [a.id]


def test_setting_the_clock_fires_alarms_now_due(dev: Device, events: Any) -> None:
    now = dev.system_time.get()["time"]
    a = dev.alarms.add(now + 3600, owner=A)
    dev.system_time.set(time=now + 7200)
    fired = [e for e in (events.next(), events.next()) if e.service == "alarms"]
    assert [e.data["alarm"]["id"] for e in fired] == [a.id]


def test_alarms_survive_reopen(dev: Device, reopen: Any) -> None:
    a = dev.alarms.add(dev.system_time.get()["time"] + 3600, owner=A, data={"x": 1})
    assert reopen(dev).alarms.list(owner=A) == [a]
