"""Device settings."""

from __future__ import annotations

import math
from typing import Any

import pytest

from kaisec.device import Device
from kaisec.device.settings import DEFAULTS, MAX_VALUE_BYTES
from kaisec.errors import DeviceError


def reason(exc: pytest.ExceptionInfo[DeviceError]) -> str:
    return str(exc.value.details["reason"])


def test_defaults(dev: Device) -> None:
    assert dev.settings.get("language.current") == "en-US"
    assert dev.settings.get("audio.volume.content") == 8
    assert dev.settings.get("theme.selected") == "default"
    assert dev.settings.list() == dict(sorted(DEFAULTS.items()))


def test_set_get_list_and_event(dev: Device, events: Any) -> None:
    dev.settings.set("language.current", "fr-FR")
    dev.settings.set("my-app_x.y", {"a": [1, 2.5, None, True]})
    dev.settings.set("nothing", None)
    assert dev.settings.get("language.current") == "fr-FR"
    assert dev.settings.get("my-app_x.y") == {"a": [1, 2.5, None, True]}
    assert dev.settings.get("nothing") is None
    listed = dev.settings.list()
    assert listed["language.current"] == "fr-FR" and listed["theme.selected"] == "default"
    assert list(listed) == sorted(listed)
    got = [(e.service, e.name, e.owner, e.data) for e in events.drain()]
    assert got[0] == ("settings", "change", None, {"name": "language.current", "value": "fr-FR"})
    assert len(got) == 3


def test_returned_values_are_copies(dev: Device) -> None:
    dev.settings.set("x", [1])
    dev.settings.get("x").append(2)
    assert dev.settings.get("x") == [1]
    DEFAULTS_BEFORE = dict(DEFAULTS)
    dev.settings.list()["language.current"] = "xx"
    assert DEFAULTS == DEFAULTS_BEFORE


@pytest.mark.parametrize(
    "name", ["", "Upper", "has space", "slash/", "x" * 129, "é", None, 1], ids=repr
)
def test_bad_names(shared_dev: Device, name: Any) -> None:
    for call in (lambda: shared_dev.settings.get(name), lambda: shared_dev.settings.set(name, 1)):
        with pytest.raises(DeviceError) as exc:
            call()
        assert reason(exc) == "BAD_NAME"


def test_unknown_name(dev: Device) -> None:
    with pytest.raises(DeviceError) as exc:
        dev.settings.get("never.set")
    assert reason(exc) == "NOT_FOUND"


@pytest.mark.parametrize(
    "value",
    [math.nan, math.inf, b"bytes", {1, 2}, object()],
    ids=["nan", "inf", "bytes", "set", "object"],
)
def test_bad_values(shared_dev: Device, value: Any) -> None:
    with pytest.raises(DeviceError) as exc:
        shared_dev.settings.set("x", value)
    assert reason(exc) == "BAD_VALUE"


def test_deeply_nested_value(dev: Device) -> None:
    value: Any = []
    for _ in range(100_000):
        value = [value]
    with pytest.raises(DeviceError) as exc:
        dev.settings.set("x", value)
    assert reason(exc) == "BAD_VALUE"


def test_too_large_and_quota(dev: Device, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DeviceError) as exc:
        dev.settings.set("x", "a" * MAX_VALUE_BYTES)
    assert reason(exc) == "TOO_LARGE"
    monkeypatch.setattr("kaisec.device.settings.MAX_SETTINGS", 2)
    dev.settings.set("a", 1)
    dev.settings.set("b", 1)
    dev.settings.set("a", 2)  # replacing is not adding
    with pytest.raises(DeviceError) as exc:
        dev.settings.set("c", 1)
    assert reason(exc) == "QUOTA"


def test_persistence(dev: Device, reopen: Any) -> None:
    dev.settings.set("audio.volume.content", 3)
    assert reopen(dev).settings.get("audio.volume.content") == 3
