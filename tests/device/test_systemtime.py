"""The device clock and time zone."""

from __future__ import annotations

import time
from typing import Any

import pytest

from kaisec.device import Device
from kaisec.errors import DeviceError


def test_defaults(dev: Device) -> None:
    got = dev.system_time.get()
    assert got["timezone"] == "UTC"
    assert abs(got["time"] - time.time()) < 5


def test_set_time_and_zone(dev: Device, events: Any) -> None:
    dev.system_time.set(time=1_700_000_000.0)
    got = dev.system_time.get()
    assert 1_700_000_000.0 <= got["time"] < 1_700_000_005.0
    dev.system_time.set(timezone="Europe/Paris")
    assert dev.system_time.get()["timezone"] == "Europe/Paris"
    assert dev.system_time.get()["time"] < 1_700_000_005.0  # the zone change kept the time
    dev.system_time.set(time=2_000_000_000, timezone="America/Argentina/Buenos_Aires")
    assert dev.system_time.get()["timezone"] == "America/Argentina/Buenos_Aires"
    got_events = events.drain()
    assert [(e.service, e.name, e.owner) for e in got_events] == [
        ("system_time", "change", None)
    ] * 3
    assert got_events[1].data["timezone"] == "Europe/Paris"
    dev.system_time.set()  # nothing to change: no event
    assert events.drain() == []


def test_timestamps_follow_the_device_clock(dev: Device) -> None:
    dev.system_time.set(time=1_000_000.0)
    m = dev.sms.send("123", "x", owner="http://a.localhost")
    assert 1_000_000.0 <= m.timestamp < 1_000_005.0


@pytest.mark.parametrize(
    "zone",
    [
        "",
        "Mars/Olympus",
        "../../etc/passwd",
        "/etc/localtime",
        "Europe",
        "Europe/Paris\x00",
        "utc ",
        5,
    ],
    ids=repr,
)
def test_bad_timezone(shared_dev: Device, zone: Any) -> None:
    with pytest.raises(DeviceError) as exc:
        shared_dev.system_time.set(timezone=zone)
    assert exc.value.details["reason"] == "BAD_TIMEZONE"
    assert shared_dev.system_time.get()["timezone"] == "UTC"


@pytest.mark.parametrize("t", [-1, float("nan"), float("-inf"), 2.0**34, "now", [1], True])
def test_bad_time(shared_dev: Device, t: Any) -> None:
    with pytest.raises(DeviceError) as exc:
        shared_dev.system_time.set(time=t)
    assert exc.value.details["reason"] == "BAD_TIME"


def test_a_bad_half_changes_nothing(dev: Device) -> None:
    with pytest.raises(DeviceError):
        dev.system_time.set(time=1_000_000.0, timezone="Nowhere/Land")
    assert abs(dev.system_time.get()["time"] - time.time()) < 5


def test_persistence(dev: Device, reopen: Any) -> None:
    dev.system_time.set(time=1_500_000_000.0, timezone="Asia/Tokyo")
    got = reopen(dev).system_time.get()
    assert got["timezone"] == "Asia/Tokyo"
    assert 1_500_000_000.0 <= got["time"] < 1_500_000_010.0
