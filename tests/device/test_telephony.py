"""Simulated voice calls: numbers, SIM, state changes and their events."""

from __future__ import annotations

import time
from typing import Any

import pytest

from kaisec.device import Device, DeviceConfig, open_device
from kaisec.errors import DeviceError
from kaisec.home import Home

A = "http://a.localhost"
B = "http://b.localhost"


def wait_state(dev: Device, call_id: str, state: str, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(c.id == call_id and c.state == state for c in dev.telephony.calls()):
            return
        time.sleep(0.005)
    raise AssertionError(f"call {call_id} never reached {state}")


def test_dial_goes_dialing_alerting_connected_in_order(dev: Device, events: Any) -> None:
    call = dev.telephony.dial("+33612345678", owner=A)
    assert (call.state, call.number, call.owner, call.emergency) == (
        "dialing",
        "+33612345678",
        A,
        False,
    )
    states = [events.next() for _ in range(3)]
    assert [(e.service, e.name, e.owner) for e in states] == [
        ("telephony", "callstatechange", A)
    ] * 3
    assert [e.data["call"]["state"] for e in states] == ["dialing", "alerting", "connected"]
    assert all(e.data["call"]["id"] == call.id for e in states)

    ended = dev.telephony.hang_up(call.id, owner=A)
    assert ended.state == "disconnected"
    last = events.next()
    assert last.data["call"] == ended.to_dict()
    assert dev.telephony.calls() == [ended]


def test_hang_up_while_dialing_stops_the_progression(dev: Device, events: Any) -> None:
    call = dev.telephony.dial("123", owner=A)
    dev.telephony.hang_up(call.id, owner=A)
    time.sleep(0.1)  # several call steps
    got = [e.data["call"]["state"] for e in events.drain()]
    assert got[0] == "dialing" and got[-1] == "disconnected"
    assert "connected" not in got[got.index("disconnected") :]
    assert dev.telephony.calls()[0].state == "disconnected"


def test_hang_up_twice_returns_the_ended_call(dev: Device) -> None:
    call = dev.telephony.dial("123", owner=A)
    first = dev.telephony.hang_up(call.id, owner=A)
    assert dev.telephony.hang_up(call.id, owner=A) == first


@pytest.mark.parametrize(
    "number",
    ["", "+", "12a", "+33 6 12", "1" * 33, "++1", "1+2", "١٢٣", "12\n", None, 112],
    ids=repr,
)
def test_bad_number(shared_dev: Device, number: Any) -> None:
    with pytest.raises(DeviceError) as exc:
        shared_dev.telephony.dial(number, owner=A)
    assert exc.value.details["reason"] == "BAD_NUMBER"
    assert exc.value.to_dict()["code"] == "DEVICE_ERROR"


@pytest.mark.parametrize("number", ["1", "*#06#", "+" + "1" * 31, "1" * 32])
def test_good_numbers(dev: Device, number: str) -> None:
    assert dev.telephony.dial(number, owner=A).number == number


def test_no_sim_refuses_but_emergency_goes_through(dev: Device, events: Any) -> None:
    dev.telephony.set_sim(False)
    assert not dev.telephony.has_sim
    assert events.next().to_dict() == {
        "service": "telephony",
        "name": "simchange",
        "data": {"has_sim": False},
        "owner": None,
    }
    with pytest.raises(DeviceError) as exc:
        dev.telephony.dial("0612345678", owner=A)
    assert exc.value.details["reason"] == "NO_SIM"
    call = dev.telephony.dial("112", owner=A)
    assert call.emergency
    wait_state(dev, call.id, "connected")


def test_no_sim_from_config(home: Home) -> None:
    with open_device(home, config=DeviceConfig(has_sim=False)) as dev:
        assert not dev.telephony.has_sim
        with pytest.raises(DeviceError, match="no SIM"):
            dev.telephony.dial("123", owner=A)
        assert dev.telephony.dial("911", owner=A).emergency


def test_emergency_and_premium(dev: Device) -> None:
    t = dev.telephony
    assert t.is_emergency("112") and t.is_emergency("911")
    assert not t.is_emergency("1120") and not t.is_emergency("+112")
    assert t.is_premium("900123") and t.is_premium("9101")
    assert not t.is_premium("0900") and not t.is_premium("+900")


def test_busy_after_max_active_calls_except_emergency(dev: Device) -> None:
    from kaisec.device.telephony import MAX_ACTIVE_CALLS

    for _ in range(MAX_ACTIVE_CALLS):
        dev.telephony.dial("123", owner=A)
    with pytest.raises(DeviceError) as exc:
        dev.telephony.dial("123", owner=B)
    assert exc.value.details["reason"] == "BUSY"
    assert dev.telephony.dial("112", owner=B).emergency


def test_calls_are_per_owner_for_hang_up(dev: Device) -> None:
    call = dev.telephony.dial("123", owner=A)
    with pytest.raises(DeviceError) as exc:
        dev.telephony.hang_up(call.id, owner=B)
    assert exc.value.details["reason"] == "NOT_FOUND"
    with pytest.raises(DeviceError) as exc:
        dev.telephony.hang_up("nope", owner=A)
    assert exc.value.details["reason"] == "NOT_FOUND"
    assert dev.telephony.calls(owner=B) == []
    assert [c.id for c in dev.telephony.calls(owner=A)] == [call.id]


def test_owner_is_required(dev: Device) -> None:
    with pytest.raises(ValueError):
        dev.telephony.dial("123", owner="")


def test_call_log_survives_reopen_and_live_calls_end(dev: Device, reopen: Any) -> None:
    done = dev.telephony.dial("123", owner=A)
    dev.telephony.hang_up(done.id, owner=A)
    live = dev.telephony.dial("456", owner=A)
    wait_state(dev, live.id, "connected")
    dev2 = reopen(dev)
    calls = {c.id: c for c in dev2.telephony.calls()}
    assert set(calls) == {done.id, live.id}
    assert calls[live.id].state == "disconnected"  # the device that placed it closed
    assert calls[live.id].started == live.started


def test_calls_left_active_by_a_crash_are_ended_on_open(home: Home) -> None:
    import sqlite3

    with open_device(home) as dev:
        call = dev.telephony.dial("123", owner=A)
    # Simulate a crash: the row says the call is still up.
    con = sqlite3.connect(home.storage_dir / "device.db")
    con.execute("UPDATE calls SET state = 'connected'")
    con.commit()
    con.close()
    with open_device(home) as dev:
        assert dev.telephony.calls()[0].state == "disconnected"
        assert dev.telephony.calls()[0].id == call.id


def test_a_second_open_device_does_not_end_live_calls(home: Home) -> None:
    with open_device(home) as first:
        call = first.telephony.dial("123", owner=A)
        wait_state(first, call.id, "connected")
        with open_device(home) as second:
            assert second.telephony.calls()[0].state == "connected"


def test_call_to_dict_is_json() -> None:
    import json

    from kaisec.device import Call

    call = Call("x", "1", "dialing", False, A, 1.5)
    assert json.loads(json.dumps(call.to_dict())) == call.to_dict()
    with pytest.raises(ValueError):
        Call("x", "1", "ringing", False, A, 1.5)  # type: ignore[arg-type]
