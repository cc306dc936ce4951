"""OEM/operator policy: overrides for named apps and restricted permissions.

The seed: "not all certified apps can access [telephony]" and "an operator
might provide a systems management application [with] the ability to phone
the operator". The policy file (``policy.toml`` in the home) says so::

    # granted, even to core apps, only to apps an [[app]] entry names
    # (the default: telephony, and the system app's permissions and webapps-manage)
    restricted = ["telephony", "permissions", "webapps-manage"]

    [[app]]
    origin = "http://dialer.localhost"
    signer = "3f9a...e1"               # SHA-256 of the signer certificate (hex, colons allowed)
    grant = ["telephony"]              # base names or expanded ones ("contacts:write")
    deny = ["geolocation"]

An entry applies only when BOTH the app's origin and its signer fingerprint
match: a look-alike app from another key gets nothing. Overrides lift or
lower what the table gives a *requested* permission; they never add one the
manifest did not request (least privilege holds for operators too).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kaisec.errors import ConfigError
from kaisec.types import Action, Source

__all__ = ["AppOverride", "Policy", "normalize_fingerprint"]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def normalize_fingerprint(value: str) -> str:
    """A SHA-256 fingerprint as 64 lower-case hex digits (colons and spaces dropped).

    Raises:
        ValueError: not 32 bytes of hex.
    """
    text = value.replace(":", "").replace(" ", "").lower()
    if not _HEX64.match(text):
        raise ValueError(f"expected a SHA-256 fingerprint (64 hex digits), got {value!r}")
    return text


def _base(name: str) -> str:
    # "device-storage:pictures:read" -> "device-storage:pictures"; "contacts:read" -> "contacts"
    head, sep, tail = name.rpartition(":")
    return head if sep and tail in ("read", "write", "create") else name


def _matches(names: frozenset[str], expanded: str) -> bool:
    return expanded in names or _base(expanded) in names


@dataclass(frozen=True)
class AppOverride:
    """Extra grants or denials for one app, identified by origin AND signer."""

    origin: str
    signer: str
    grant: frozenset[str] = frozenset()
    deny: frozenset[str] = frozenset()

    def applies_to(self, origin: str, signer: str | None) -> bool:
        return signer is not None and self.origin == origin and self.signer == signer


@dataclass(frozen=True)
class Policy:
    """Restricted permissions and per-app overrides."""

    restricted: frozenset[str] = frozenset({"telephony", "permissions", "webapps-manage"})
    overrides: tuple[AppOverride, ...] = field(default_factory=tuple)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, default_restricted: Iterable[str]) -> Policy:
        """Build a policy from its TOML/JSON form.

        Raises:
            ConfigError: a field is missing or malformed.
        """
        restricted = data.get("restricted", list(default_restricted))
        if not isinstance(restricted, list) or not all(isinstance(x, str) for x in restricted):
            raise ConfigError("policy: restricted must be a list of permission names")
        overrides = []
        apps = data.get("app", [])
        if not isinstance(apps, list):
            raise ConfigError("policy: [[app]] must be an array of tables")
        for i, entry in enumerate(apps):
            where = f"policy: app[{i}]"
            if not isinstance(entry, dict):
                raise ConfigError(f"{where}: must be a table")
            origin = entry.get("origin")
            signer = entry.get("signer")
            if not isinstance(origin, str) or not origin.startswith(("http://", "https://")):
                raise ConfigError(f"{where}.origin: expected an http(s) origin, got {origin!r}")
            try:
                fp = normalize_fingerprint(str(signer))
            except ValueError as exc:
                raise ConfigError(f"{where}.signer: {exc}") from exc
            lists = {}
            for key in ("grant", "deny"):
                value = entry.get(key, [])
                if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
                    raise ConfigError(f"{where}.{key}: must be a list of permission names")
                lists[key] = frozenset(value)
            unknown = set(entry) - {"origin", "signer", "grant", "deny"}
            if unknown:
                raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
            overrides.append(AppOverride(origin.rstrip("/"), fp, lists["grant"], lists["deny"]))
        return cls(restricted=frozenset(restricted), overrides=tuple(overrides))

    @classmethod
    def load(cls, path: Path, *, default_restricted: Iterable[str]) -> Policy:
        """Read ``policy.toml``; a missing file gives the default policy.

        Raises:
            ConfigError: the file is not valid TOML or not a valid policy.
        """
        try:
            text = path.read_bytes()
        except FileNotFoundError:
            return cls(restricted=frozenset(default_restricted))
        try:
            data = tomllib.loads(text.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        return cls.from_dict(data, default_restricted=default_restricted)

    def adjust(
        self, origin: str, signer: str | None, expanded: str, action: Action, source: Source
    ) -> tuple[Action, Source | None]:
        """Apply the policy to a stored action; returns the action and OVERRIDE if it changed.

        An override's grant never undoes the user's own answer (a user-set row).
        """
        for ov in self.overrides:
            if ov.applies_to(origin, signer):
                if _matches(ov.deny, expanded):
                    return Action.DENY, Source.OVERRIDE
                if _matches(ov.grant, expanded) and source is not Source.USER:
                    return Action.ALLOW, Source.OVERRIDE
        if action is Action.ALLOW and _matches(self.restricted, expanded):
            return Action.DENY, Source.OVERRIDE
        return action, None
