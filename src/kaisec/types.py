"""Closed sets shared across kaisec: trust classes, actions, expiries, sources."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Action", "AppClass", "Expiry", "Source"]


class AppClass(StrEnum):
    """The seed's trust classes, lowest to highest."""

    PWA = "pwa"
    SIGNED = "signed"
    CORE = "core"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def from_legacy(cls, value: str) -> AppClass:
        """Map a Firefox OS / KaiOS 2.5 ``type`` (web, privileged, certified) to a class.

        Raises:
            ValueError: the value is neither a legacy type nor a class name.
        """
        try:
            return _LEGACY[value]
        except KeyError:
            return cls(value)


_RANK = {AppClass.PWA: 0, AppClass.SIGNED: 1, AppClass.CORE: 2}
_LEGACY = {"web": AppClass.PWA, "privileged": AppClass.SIGNED, "certified": AppClass.CORE}


class Action(StrEnum):
    """What the permission system answers for one app and one permission."""

    ALLOW = "allow"
    DENY = "deny"
    PROMPT = "prompt"


class Expiry(StrEnum):
    """How long a stored action holds."""

    NEVER = "never"  # until changed
    SESSION = "session"  # until the runtime session (the daemon's boot) ends
    UNTIL = "until"  # until a point in time, then prompt again
    ONCE = "once"  # one use, then prompt again


class Source(StrEnum):
    """Who set a stored action."""

    TABLE = "table"
    OVERRIDE = "override"
    USER = "user"
    SYSTEM = "system"
