"""The simulated modem's voice calls.

State: the ``calls`` table of ``device.db`` (the call log, newest
:data:`MAX_CALLS` kept) and the SIM flag (from :class:`DeviceConfig`, changed
in memory by :meth:`SimTelephony.set_sim`).

A call goes ``dialing`` -> ``alerting`` -> ``connected`` on the device's
timer thread, ``config.call_step`` seconds apart (``dial`` returns it while
``dialing``); ``hang_up`` moves it to ``disconnected`` from any state. Each
change is stored first, then reported as a ``telephony``/``callstatechange``
event whose owner is the caller that dialed; a hung-up call never moves on.
Calls live in the device that dialed them: a device opening while no other
device on the home is alive marks calls left active by a dead one
``disconnected`` (no event).

Emergency numbers are dialed even without a SIM and past the active-call
limit. Whether a number is premium is only reported (``is_premium``): it is
for the gateway to decide what to do about it.
"""

from __future__ import annotations

import builtins
import re
import threading
from collections.abc import Callable
from typing import Any

from kaisec.device._db import DeviceDB
from kaisec.device._runtime import EventBus, Scheduler, check_owner, check_text, new_id
from kaisec.device.base import Call, CallState, DeviceConfig, DeviceEvent
from kaisec.errors import DeviceError

__all__ = ["MAX_ACTIVE_CALLS", "MAX_CALLS", "SimTelephony", "check_number"]

#: Calls kept in the log; older disconnected ones are dropped.
MAX_CALLS = 1000
#: Non-emergency calls that may be active at once.
MAX_ACTIVE_CALLS = 4

# Digits, '*' and '#', after an optional leading '+'; 1..32 characters in all.
_NUMBER = re.compile(r"(?=.{1,32}\Z)\+?[0-9*#]+\Z", re.ASCII)
_COLS = "id, number, state, emergency, owner, started"
_NEXT: dict[str, CallState] = {"dialing": "alerting", "alerting": "connected"}


def check_number(number: object, *, field: str = "number") -> str:
    """``number`` if it is a dialable number, else DeviceError(BAD_NUMBER)."""
    if not isinstance(number, str) or not _NUMBER.match(number):
        raise DeviceError(
            f"{field}: expected digits, '*' or '#' after an optional '+' (1..32), got {number!r}",
            reason="BAD_NUMBER",
            field=field,
        )
    return number


def _call(r: tuple[Any, ...]) -> Call:
    return Call(id=r[0], number=r[1], state=r[2], emergency=bool(r[3]), owner=r[4], started=r[5])


class SimTelephony:
    """Voice calls on a simulated modem."""

    def __init__(
        self,
        db: DeviceDB,
        bus: EventBus,
        scheduler: Scheduler,
        config: DeviceConfig,
        *,
        clock: Callable[[], float],
        alone: bool,
    ) -> None:
        self._db = db
        self._bus = bus
        self._scheduler = scheduler
        self._config = config
        self._clock = clock
        self._has_sim = config.has_sim
        self._live: set[str] = set()  # calls this device placed and has not ended
        # Held across each state change and its event so events leave in state order.
        self._lock = threading.Lock()
        if alone:
            with db.transaction() as conn:
                conn.execute(
                    "UPDATE calls SET state = 'disconnected' WHERE state != 'disconnected'"
                )

    @property
    def has_sim(self) -> bool:
        """Whether a SIM card is present."""
        return self._has_sim

    def set_sim(self, present: bool) -> None:
        """Insert or remove the simulated SIM (for tests); emits ``simchange``."""
        with self._lock:
            changed = self._has_sim != bool(present)
            self._has_sim = bool(present)
            if changed:
                self._bus.emit(
                    DeviceEvent("telephony", "simchange", {"has_sim": self._has_sim}, None)
                )

    def is_emergency(self, number: str) -> bool:
        """Whether ``number`` is one of the configured emergency numbers (exact match)."""
        return number in self._config.emergency_numbers

    def is_premium(self, number: str) -> bool:
        """Whether ``number`` starts with a premium-rate prefix (national form only)."""
        return isinstance(number, str) and number.startswith(self._config.premium_prefixes)

    def dial(self, number: str, *, owner: str) -> Call:
        """Place a call; returns it in state ``dialing``.

        Raises:
            DeviceError: ``BAD_NUMBER``; ``NO_SIM`` (no SIM and not an emergency
                number); ``BUSY`` (already :data:`MAX_ACTIVE_CALLS` active calls).
        """
        owner = check_owner(owner)
        number = check_number(number)
        emergency = self.is_emergency(number)
        if not emergency and not self._has_sim:
            raise DeviceError(f"cannot call {number}: no SIM card", reason="NO_SIM")
        with self._lock:
            call = Call(
                id=new_id(),
                number=number,
                state="dialing",
                emergency=emergency,
                owner=owner,
                started=self._clock(),
            )
            with self._db.transaction() as conn:
                if not emergency:
                    active = conn.execute(
                        "SELECT count(*) FROM calls WHERE state != 'disconnected'"
                    ).fetchone()[0]
                    if active >= MAX_ACTIVE_CALLS:
                        raise DeviceError(
                            f"cannot call {number}: {active} calls already active", reason="BUSY"
                        )
                seq = conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM calls").fetchone()[0]
                conn.execute(
                    f"INSERT INTO calls ({_COLS}, seq) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (call.id, number, call.state, int(emergency), owner, call.started, seq),
                )
                conn.execute(
                    "DELETE FROM calls WHERE state = 'disconnected' AND seq <= ?",
                    (seq - MAX_CALLS,),
                )
            self._live.add(call.id)
            self._emit(call)
        self._scheduler.call_later(self._config.call_step, lambda: self._advance(call.id))
        return call

    def _advance(self, call_id: str) -> None:
        with self._lock:
            rows = self._db.read(f"SELECT {_COLS} FROM calls WHERE id = ?", (call_id,))
            if not rows or rows[0][2] not in _NEXT:
                return  # hung up (or gone) meanwhile
            state = _NEXT[rows[0][2]]
            with self._db.transaction() as conn:
                conn.execute("UPDATE calls SET state = ? WHERE id = ?", (state, call_id))
            call = _call((*rows[0][:2], state, *rows[0][3:]))
            self._emit(call)
        if state != "connected":
            self._scheduler.call_later(self._config.call_step, lambda: self._advance(call_id))

    def hang_up(self, call_id: str, *, owner: str) -> Call:
        """End a call of ``owner``; a call already ended is returned as it is.

        Raises:
            DeviceError: ``NOT_FOUND`` when ``owner`` placed no call with that id.
        """
        owner = check_owner(owner)
        call_id = check_text(call_id, field="call_id", reason="NOT_FOUND", max_len=64)
        with self._lock:
            rows = self._db.read(
                f"SELECT {_COLS} FROM calls WHERE id = ? AND owner = ?", (call_id, owner)
            )
            if not rows:
                raise DeviceError(f"no call {call_id!r}", reason="NOT_FOUND")
            call = _call(rows[0])
            if call.state == "disconnected":
                return call
            with self._db.transaction() as conn:
                conn.execute("UPDATE calls SET state = 'disconnected' WHERE id = ?", (call_id,))
            call = _call((*rows[0][:2], "disconnected", *rows[0][3:]))
            self._live.discard(call_id)
            self._emit(call)
            return call

    def close(self) -> None:
        """End every call this device placed (the device is going away)."""
        with self._lock:
            for call_id in sorted(self._live):
                rows = self._db.read(f"SELECT {_COLS} FROM calls WHERE id = ?", (call_id,))
                if rows and rows[0][2] != "disconnected":
                    with self._db.transaction() as conn:
                        conn.execute(
                            "UPDATE calls SET state = 'disconnected' WHERE id = ?", (call_id,)
                        )
                    self._emit(_call((*rows[0][:2], "disconnected", *rows[0][3:])))
            self._live.clear()

    def calls(self, *, owner: str | None = None) -> builtins.list[Call]:
        """The call log, oldest first; only ``owner``'s calls when given."""
        if owner is None:
            rows = self._db.read(f"SELECT {_COLS} FROM calls ORDER BY seq")
        else:
            rows = self._db.read(
                f"SELECT {_COLS} FROM calls WHERE owner = ? ORDER BY seq", (check_owner(owner),)
            )
        return [_call(r) for r in rows]

    def _emit(self, call: Call) -> None:
        self._bus.emit(
            DeviceEvent("telephony", "callstatechange", {"call": call.to_dict()}, call.owner)
        )
