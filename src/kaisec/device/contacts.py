"""The device's address book.

State: the ``contacts`` table of ``device.db``, at most :data:`MAX_CONTACTS`
entries. There is one address book on the device, not one per app.

Fields a caller may set (``add`` needs ``name``; ``update`` changes only the
fields it is given): ``name`` (1..256 characters), ``numbers`` (up to 20 phone
numbers as written, e.g. ``"+33 6 12-34-56-78"``), ``emails`` (up to 20),
``photo`` (``"pictures:<file name>"``, a device-storage reference, or None).
Any other key, a wrong type or a bad value: ``DeviceError(reason="BAD_FIELD")``.

``find(number=...)`` matches when the digits of the query equal the digits of
one of a contact's numbers (spaces and punctuation ignored); national and
international forms of one number are not reconciled. ``find(name=...)`` is a
case-insensitive substring match.

Events: ``contacts``/``change`` (device-wide) with ``{"id", "reason"}``,
reason ``create``, ``update`` or ``remove``, as mozContacts' oncontactchange.
"""

from __future__ import annotations

import builtins
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from kaisec.device._db import DeviceDB
from kaisec.device._runtime import EventBus, check_limit, check_text, new_id
from kaisec.device.base import Contact, DeviceEvent
from kaisec.device.storage import check_name
from kaisec.errors import DeviceError

__all__ = ["FIELDS", "MAX_CONTACTS", "SimContacts"]

#: The fields a contact has (besides its id).
FIELDS = frozenset({"name", "numbers", "emails", "photo"})
MAX_CONTACTS = 10_000
_MAX_ENTRIES = 20
_PHONE = re.compile(r"(?=.{1,40}\Z)\+?[0-9*#() .-]+\Z", re.ASCII)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\Z")
_COLS = "id, name, numbers, emails, photo"


def _bad(field: str, message: str) -> DeviceError:
    return DeviceError(f"{field}: {message}", reason="BAD_FIELD", field=field)


def _digits(number: str) -> str:
    return "".join(ch for ch in number if ch.isdigit())


def _check_list(
    value: object, field: str, pattern: re.Pattern[str], max_len: int
) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise _bad(field, f"expected a list of strings, got {type(value).__name__}")
    if len(value) > _MAX_ENTRIES:
        raise _bad(field, f"at most {_MAX_ENTRIES} entries, got {len(value)}")
    out = []
    for item in value:
        text = check_text(item, field=field, max_len=max_len, min_len=1)
        if not pattern.match(text):
            raise _bad(field, f"malformed entry {text!r}")
        out.append(text)
    return tuple(out)


def _check_fields(fields: object, *, new: bool) -> dict[str, Any]:
    if not isinstance(fields, Mapping):
        raise _bad("fields", f"expected an object, got {type(fields).__name__}")
    unknown = sorted(str(k) for k in fields if k not in FIELDS)
    if unknown:
        raise _bad(unknown[0], f"unknown field (known: {', '.join(sorted(FIELDS))})")
    out: dict[str, Any] = {}
    if new and "name" not in fields:
        raise _bad("name", "a contact needs a name")
    if "name" in fields:
        out["name"] = check_text(fields["name"], field="name", max_len=256, min_len=1)
        if not out["name"].strip():
            raise _bad("name", "blank")
    if "numbers" in fields:
        numbers = _check_list(fields["numbers"], "numbers", _PHONE, 40)
        if any(not _digits(n) for n in numbers):
            raise _bad("numbers", "a number without digits")
        out["numbers"] = numbers
    if "emails" in fields:
        out["emails"] = _check_list(fields["emails"], "emails", _EMAIL, 254)
    if "photo" in fields:
        photo = fields["photo"]
        if photo is not None:
            text = check_text(photo, field="photo", max_len=300)
            area, sep, name = text.partition(":")
            if area != "pictures" or not sep:
                raise _bad("photo", f"expected 'pictures:<file name>' or null, got {text!r}")
            try:
                check_name(name)
            except DeviceError as exc:
                raise _bad("photo", exc.message) from exc
        out["photo"] = photo
    return out


def _contact(r: tuple[Any, ...]) -> Contact:
    return Contact(
        id=r[0],
        name=r[1],
        numbers=tuple(json.loads(r[2])),
        emails=tuple(json.loads(r[3])),
        photo=r[4],
    )


class SimContacts:
    """The address book, in SQLite."""

    def __init__(self, db: DeviceDB, bus: EventBus, *, clock: Callable[[], float]) -> None:
        self._db = db
        self._bus = bus
        self._clock = clock

    def find(
        self, *, name: str | None = None, number: str | None = None, limit: int = 100
    ) -> builtins.list[Contact]:
        """Contacts matching every filter given (all of them when none), by name.

        Raises:
            DeviceError: ``BAD_FIELD`` (bad filter), ``BAD_NUMBER`` (a number
                without digits), ``BAD_LIMIT``.
        """
        limit = check_limit(limit)
        sql = f"SELECT {_COLS} FROM contacts WHERE 1"
        params: list[Any] = []
        if name is not None:
            sql += " AND instr(folded, ?) > 0"
            params.append(check_text(name, field="name", max_len=256).casefold())
        if number is not None:
            digits = _digits(check_text(number, field="number", max_len=40))
            if not digits:
                raise DeviceError(f"number: no digits in {number!r}", reason="BAD_NUMBER")
            sql += " AND instr(digits, ?) > 0"
            params.append(f"|{digits}|")
        sql += " ORDER BY folded, seq LIMIT ?"
        params.append(limit)
        return [_contact(r) for r in self._db.read(sql, tuple(params))]

    def get(self, id: str) -> Contact:
        """The contact with that id.

        Raises:
            DeviceError: ``NOT_FOUND``.
        """
        rows = self._db.read(f"SELECT {_COLS} FROM contacts WHERE id = ?", (self._id(id),))
        if not rows:
            raise DeviceError(f"no contact {id!r}", reason="NOT_FOUND")
        return _contact(rows[0])

    def add(self, fields: Mapping[str, Any]) -> Contact:
        """Create a contact from ``fields``; returns it with its new id.

        Raises:
            DeviceError: ``BAD_FIELD``; ``QUOTA`` (address book full).
        """
        values = _check_fields(fields, new=True)
        contact = Contact(
            id=new_id(),
            name=values["name"],
            numbers=values.get("numbers", ()),
            emails=values.get("emails", ()),
            photo=values.get("photo"),
        )
        with self._db.lock:  # events leave in commit order
            with self._db.transaction() as conn:
                count = conn.execute("SELECT count(*) FROM contacts").fetchone()[0]
                if count >= MAX_CONTACTS:
                    raise DeviceError(f"the address book is full ({count})", reason="QUOTA")
                conn.execute(
                    "INSERT INTO contacts"
                    " (id, name, folded, numbers, digits, emails, photo, updated)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (contact.id, *self._row(contact)),
                )
            self._emit(contact.id, "create")
        return contact

    def update(self, id: str, fields: Mapping[str, Any]) -> Contact:
        """Change the given fields of a contact; returns the new contact.

        Raises:
            DeviceError: ``NOT_FOUND``; ``BAD_FIELD``.
        """
        values = _check_fields(fields, new=False)
        key = self._id(id)
        with self._db.lock:
            with self._db.transaction() as conn:
                r = conn.execute(f"SELECT {_COLS} FROM contacts WHERE id = ?", (key,)).fetchone()
                if r is None:
                    raise DeviceError(f"no contact {id!r}", reason="NOT_FOUND")
                old = _contact(r)
                contact = Contact(
                    id=old.id,
                    name=values.get("name", old.name),
                    numbers=values.get("numbers", old.numbers),
                    emails=values.get("emails", old.emails),
                    photo=values.get("photo", old.photo),
                )
                conn.execute(
                    "UPDATE contacts SET name = ?, folded = ?, numbers = ?, digits = ?,"
                    " emails = ?, photo = ?, updated = ? WHERE id = ?",
                    (*self._row(contact), contact.id),
                )
            self._emit(contact.id, "update")
        return contact

    def remove(self, id: str) -> None:
        """Delete a contact.

        Raises:
            DeviceError: ``NOT_FOUND``.
        """
        key = self._id(id)
        with self._db.lock:
            with self._db.transaction() as conn:
                cur = conn.execute("DELETE FROM contacts WHERE id = ?", (key,))
                if cur.rowcount != 1:
                    raise DeviceError(f"no contact {id!r}", reason="NOT_FOUND")
            self._emit(key, "remove")

    @staticmethod
    def _id(id: object) -> str:
        return check_text(id, field="id", reason="NOT_FOUND", max_len=64)

    def _row(self, c: Contact) -> tuple[Any, ...]:
        digits = "|" + "|".join(_digits(n) for n in c.numbers) + "|"
        return (
            c.name,
            c.name.casefold(),
            json.dumps(list(c.numbers)),
            digits,
            json.dumps(list(c.emails)),
            c.photo,
            self._clock(),
        )

    def _emit(self, id: str, reason: str) -> None:
        self._bus.emit(DeviceEvent("contacts", "change", {"id": id, "reason": reason}, None))
