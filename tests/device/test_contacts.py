"""The address book."""

from __future__ import annotations

from typing import Any

import pytest

from kaisec.device import Contact, Device
from kaisec.errors import DeviceError


def reason(exc: pytest.ExceptionInfo[DeviceError]) -> str:
    return str(exc.value.details["reason"])


def test_add_get_update_remove(dev: Device, events: Any) -> None:
    c = dev.contacts.add(
        {"name": "Ada Lovelace", "numbers": ["+44 20 7946 0000"], "emails": ["ada@example.org"]}
    )
    assert c == Contact(c.id, "Ada Lovelace", ("+44 20 7946 0000",), ("ada@example.org",), None)
    assert dev.contacts.get(c.id) == c
    u = dev.contacts.update(c.id, {"photo": "pictures:ada.png", "numbers": []})
    assert u == Contact(c.id, "Ada Lovelace", (), ("ada@example.org",), "pictures:ada.png")
    assert dev.contacts.get(c.id) == u
    assert dev.contacts.update(c.id, {"photo": None}).photo is None
    dev.contacts.remove(c.id)
    with pytest.raises(DeviceError) as exc:
        dev.contacts.get(c.id)
    assert reason(exc) == "NOT_FOUND"
    got = [(e.service, e.name, e.owner, e.data["reason"], e.data["id"]) for e in events.drain()]
    assert got == [
        ("contacts", "change", None, "create", c.id),
        ("contacts", "change", None, "update", c.id),
        ("contacts", "change", None, "update", c.id),
        ("contacts", "change", None, "remove", c.id),
    ]


def test_find(dev: Device) -> None:
    ada = dev.contacts.add({"name": "Ada", "numbers": ["+33 6 12-34-56-78", "*100#"]})
    bob = dev.contacts.add({"name": "Bob Adams", "numbers": ["0612345678"]})
    zoe = dev.contacts.add({"name": "Zoë", "numbers": []})
    assert dev.contacts.find() == [ada, bob, zoe]
    assert dev.contacts.find(name="ada") == [ada, bob]
    assert dev.contacts.find(name="ZOË") == [zoe]
    assert dev.contacts.find(number="+33612345678") == [ada]
    assert dev.contacts.find(number="06 12 34 56 78") == [bob]
    assert dev.contacts.find(number="100") == [ada]
    assert dev.contacts.find(number="1234") == []  # whole numbers, not fragments
    assert dev.contacts.find(name="bob", number="0612345678") == [bob]
    assert dev.contacts.find(name="ada", number="0612345678") == [bob]
    assert dev.contacts.find(name="zz") == []
    assert dev.contacts.find(limit=1) == [ada]
    assert dev.contacts.find(name="%") == []  # not a LIKE pattern


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"numbers": ["1"]},
        {"name": ""},
        {"name": "   "},
        {"name": 5},
        {"name": "x" * 257},
        {"name": "a\x00b"},
        {"name": "A", "nickname": "x"},
        {"name": "A", "id": "forced"},
        {"name": "A", "numbers": "123"},
        {"name": "A", "numbers": [123]},
        {"name": "A", "numbers": ["abc"]},
        {"name": "A", "numbers": ["()"]},
        {"name": "A", "numbers": ["1"] * 21},
        {"name": "A", "emails": ["not-an-email"]},
        {"name": "A", "emails": ["a b@c"]},
        {"name": "A", "emails": {"a@b": 1}},
        {"name": "A", "photo": "music:a.mp3"},
        {"name": "A", "photo": "pictures:../x"},
        {"name": "A", "photo": "pictures:"},
        {"name": "A", "photo": "/etc/passwd"},
        {"name": "A", "photo": 1},
        ["name", "A"],
        None,
    ],
    ids=repr,
)
def test_bad_fields(shared_dev: Device, fields: Any) -> None:
    with pytest.raises(DeviceError) as exc:
        shared_dev.contacts.add(fields)
    assert reason(exc) == "BAD_FIELD"
    assert shared_dev.contacts.find() == []


def test_update_refusals(dev: Device) -> None:
    c = dev.contacts.add({"name": "A"})
    with pytest.raises(DeviceError) as exc:
        dev.contacts.update(c.id, {"colour": "red"})
    assert reason(exc) == "BAD_FIELD"
    with pytest.raises(DeviceError) as exc:
        dev.contacts.update(c.id, {"name": ""})
    assert reason(exc) == "BAD_FIELD"
    assert dev.contacts.get(c.id) == c
    for call in (
        lambda: dev.contacts.update("missing", {"name": "B"}),
        lambda: dev.contacts.remove("missing"),
        lambda: dev.contacts.get(None),  # type: ignore[arg-type]
    ):
        with pytest.raises(DeviceError) as exc:
            call()
        assert reason(exc) == "NOT_FOUND"


def test_find_refusals(dev: Device) -> None:
    with pytest.raises(DeviceError) as exc:
        dev.contacts.find(number="abc")
    assert reason(exc) == "BAD_NUMBER"
    with pytest.raises(DeviceError) as exc:
        dev.contacts.find(name=3)  # type: ignore[arg-type]
    assert reason(exc) == "BAD_FIELD"
    with pytest.raises(DeviceError) as exc:
        dev.contacts.find(limit=0)
    assert reason(exc) == "BAD_LIMIT"


def test_quota(dev: Device, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("kaisec.device.contacts.MAX_CONTACTS", 2)
    dev.contacts.add({"name": "A"})
    dev.contacts.add({"name": "B"})
    with pytest.raises(DeviceError) as exc:
        dev.contacts.add({"name": "C"})
    assert reason(exc) == "QUOTA"


def test_persistence(dev: Device, reopen: Any) -> None:
    c = dev.contacts.add({"name": "Kept", "numbers": ["123"], "emails": ["k@x.org"]})
    dev2 = reopen(dev)
    assert dev2.contacts.get(c.id) == c
    assert dev2.contacts.find(number="123") == [c]
