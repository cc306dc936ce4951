"""Simulated text messages."""

from __future__ import annotations

from typing import Any

import pytest

from kaisec.device import Device
from kaisec.device.sms import MAX_BODY
from kaisec.errors import DeviceError

A = "http://a.localhost"


def test_send_and_list(dev: Device, events: Any) -> None:
    m = dev.sms.send("+33612345678", "hello\nworld", owner=A)
    assert (m.direction, m.number, m.body, m.owner) == ("sent", "+33612345678", "hello\nworld", A)
    assert dev.sms.list() == [m]
    e = events.next()
    assert (e.service, e.name, e.owner, e.data) == ("sms", "sent", A, {"message": m.to_dict()})


def test_receive_emits_a_broadcast_event(dev: Device, events: Any) -> None:
    m = dev.sms.receive("BANK", "your code is 1234")
    assert (m.direction, m.number, m.owner) == ("received", "BANK", None)
    e = events.next()
    assert e.to_dict() == {
        "service": "sms",
        "name": "received",
        "data": {"message": m.to_dict()},
        "owner": None,
    }


def test_list_is_newest_first_and_limited(dev: Device) -> None:
    sent = [dev.sms.send("123", f"m{i}", owner=A) for i in range(5)]
    assert dev.sms.list(limit=2) == [sent[4], sent[3]]
    assert dev.sms.list() == sent[::-1]


@pytest.mark.parametrize("limit", [0, -1, 1001, True, "5", None])
def test_bad_limit(shared_dev: Device, limit: Any) -> None:
    with pytest.raises(DeviceError) as exc:
        shared_dev.sms.list(limit=limit)
    assert exc.value.details["reason"] == "BAD_LIMIT"


@pytest.mark.parametrize(
    ("to", "body", "reason"),
    [
        ("12a", "x", "BAD_NUMBER"),
        ("", "x", "BAD_NUMBER"),
        ("123", "", "BAD_FIELD"),
        ("123", "bell\x07", "BAD_FIELD"),
        ("123", 5, "BAD_FIELD"),
        ("123", "\ud800", "BAD_FIELD"),
        ("123", "x" * (MAX_BODY + 1), "TOO_LARGE"),
    ],
)
def test_send_refusals(shared_dev: Device, to: Any, body: Any, reason: str) -> None:
    with pytest.raises(DeviceError) as exc:
        shared_dev.sms.send(to, body, owner=A)
    assert exc.value.details["reason"] == reason
    assert shared_dev.sms.list() == []


def test_max_body_is_accepted(dev: Device) -> None:
    assert len(dev.sms.send("123", "x" * MAX_BODY, owner=A).body) == MAX_BODY


def test_no_sim(dev: Device) -> None:
    dev.telephony.set_sim(False)
    with pytest.raises(DeviceError) as exc:
        dev.sms.send("112", "help", owner=A)
    assert exc.value.details["reason"] == "NO_SIM"
    dev.sms.receive("123", "still arrives")  # the simulation hook is not the modem


@pytest.mark.parametrize("sender", ["", "a/b", "x" * 33, "evil\n", None])
def test_receive_bad_sender(shared_dev: Device, sender: Any) -> None:
    with pytest.raises(DeviceError) as exc:
        shared_dev.sms.receive(sender, "x")
    assert exc.value.details["reason"] == "BAD_NUMBER"


def test_persistence(dev: Device, reopen: Any) -> None:
    sent = dev.sms.send("123", "a", owner=A)
    got = dev.sms.receive("456", "b")
    assert reopen(dev).sms.list() == [got, sent]
