"""The simulated modem's text messages.

State: the ``messages`` table of ``device.db``, one log of sent and received
messages (newest :data:`MAX_MESSAGES` kept). The log is the device's, as on a
phone: ``list`` returns every message, the gateway decides who may read it.

Events: ``sms``/``sent`` (owner: the sender app) after ``send``, and
``sms``/``received`` (device-wide, owner None) after ``receive``, which
stands in for the network delivering a message.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable
from typing import Any

from kaisec.device._db import DeviceDB
from kaisec.device._runtime import EventBus, check_limit, check_owner, check_text, new_id
from kaisec.device.base import DeviceEvent, Message
from kaisec.device.telephony import SimTelephony, check_number
from kaisec.errors import DeviceError

__all__ = ["MAX_BODY", "MAX_MESSAGES", "SimSms"]

#: Characters of one message: ten concatenated 160-character parts.
MAX_BODY = 1600
#: Messages kept in the log; older ones are dropped.
MAX_MESSAGES = 10_000
# A received message's sender: a number, or an alphanumeric sender id ("BANK").
_SENDER = re.compile(r"(?=.{1,32}\Z)\+?[0-9A-Za-z*# ._-]+\Z", re.ASCII)
_COLS = "id, direction, number, body, timestamp, owner"


def _message(r: tuple[Any, ...]) -> Message:
    return Message(id=r[0], direction=r[1], number=r[2], body=r[3], timestamp=r[4], owner=r[5])


def _check_body(body: object) -> str:
    text = check_text(body, field="body", max_len=10 * MAX_BODY, min_len=1, multiline=True)
    if len(text) > MAX_BODY:
        raise DeviceError(
            f"body: {len(text)} characters, at most {MAX_BODY} allowed",
            reason="TOO_LARGE",
            field="body",
        )
    return text


class SimSms:
    """Text messages on a simulated modem."""

    def __init__(
        self,
        db: DeviceDB,
        bus: EventBus,
        telephony: SimTelephony,
        *,
        clock: Callable[[], float],
    ) -> None:
        self._db = db
        self._bus = bus
        self._telephony = telephony
        self._clock = clock

    def send(self, to: str, body: str, *, owner: str) -> Message:
        """Send ``body`` to ``to``; the message is logged and returned.

        Raises:
            DeviceError: ``BAD_NUMBER``; ``BAD_FIELD`` (empty body, control
                characters); ``TOO_LARGE`` (over :data:`MAX_BODY` characters);
                ``NO_SIM``.
        """
        owner = check_owner(owner)
        to = check_number(to, field="to")
        body = _check_body(body)
        if not self._telephony.has_sim:
            raise DeviceError(f"cannot send to {to}: no SIM card", reason="NO_SIM")
        with self._db.lock:  # events leave in log order
            message = self._store(Message(new_id(), "sent", to, body, self._clock(), owner))
            self._bus.emit(DeviceEvent("sms", "sent", {"message": message.to_dict()}, owner))
        return message

    def receive(self, sender: str, body: str) -> Message:
        """Simulate the network delivering a message; emits ``sms``/``received``.

        Raises:
            DeviceError: ``BAD_NUMBER`` (sender), ``BAD_FIELD``, ``TOO_LARGE``.
        """
        if not isinstance(sender, str) or not _SENDER.match(sender):
            raise DeviceError(
                f"sender: expected a number or sender id, got {sender!r}", reason="BAD_NUMBER"
            )
        body = _check_body(body)
        with self._db.lock:
            message = self._store(Message(new_id(), "received", sender, body, self._clock(), None))
            self._bus.emit(DeviceEvent("sms", "received", {"message": message.to_dict()}, None))
        return message

    def list(self, *, limit: int = 100) -> builtins.list[Message]:
        """The newest ``limit`` messages (sent and received), newest first.

        Raises:
            DeviceError: ``BAD_LIMIT`` unless 1 <= limit <= 1000.
        """
        limit = check_limit(limit)
        rows = self._db.read(f"SELECT {_COLS} FROM messages ORDER BY seq DESC LIMIT ?", (limit,))
        return [_message(r) for r in rows]

    def _store(self, m: Message) -> Message:
        with self._db.transaction() as conn:
            cur = conn.execute(
                f"INSERT INTO messages ({_COLS}) VALUES (?, ?, ?, ?, ?, ?)",
                (m.id, m.direction, m.number, m.body, m.timestamp, m.owner),
            )
            seq = cur.lastrowid or 0
            conn.execute("DELETE FROM messages WHERE seq <= ?", (seq - MAX_MESSAGES,))
        return m
