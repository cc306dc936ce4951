"""The access-control list: the permission table, access expansion, explicit rules.

The table is data (``kaisec/data/permissions.json``, every row of KaiOS 3's
``PermissionsTable``): for each permission the action per class
(pwa/signed/core, core falling back to signed where the row has no core
value), the access modes a manifest may ask for, and default prompt actions.
This module answers pure questions about it; nothing here touches the store.

Invariants:
- A name is expanded only through :meth:`PermissionTable.expand`; an access
  mode the row does not list never yields a name (KaiOS: ``expandPermissions``).
- ``explicit`` (user-changeable) means: the table's action for the app's class
  is PROMPT. Default permissions and unknown names are never explicit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from kaisec.errors import UnknownPermissionError
from kaisec.types import Action, AppClass

__all__ = [
    "ACCESS_MODES",
    "PermissionRow",
    "PermissionTable",
    "default_table",
]

#: Manifest ``access`` values and the suffixes each asks for, in output order.
ACCESS_MODES: Mapping[str, tuple[str, ...]] = {
    "readonly": ("read",),
    "createonly": ("create",),
    "readcreate": ("read", "create"),
    "readwrite": ("read", "create", "write"),
}
_SUFFIX_ORDER = ("read", "create", "write")


@dataclass(frozen=True)
class PermissionRow:
    """One row of the table."""

    name: str
    pwa: Action
    signed: Action
    core: Action | None = None
    access: tuple[str, ...] | None = None
    default_prompt_action: Mapping[AppClass, Action] = field(default_factory=dict)

    def action_for(self, app_class: AppClass) -> Action:
        """The table's action for a class; core falls back to signed when the row has none."""
        if app_class is AppClass.CORE:
            return self.core if self.core is not None else self.signed
        if app_class is AppClass.SIGNED:
            return self.signed
        return self.pwa

    def initial_action(self, app_class: AppClass) -> Action:
        """What install writes when nothing is stored (a default prompt action may apply)."""
        action = self.action_for(app_class)
        if action is Action.PROMPT:
            return self.default_prompt_action.get(app_class, Action.PROMPT)
        return action

    @property
    def expanded_names(self) -> tuple[str, ...]:
        """Every name this row can expand to (KaiOS: its part of AllPossiblePermissions)."""
        if self.access is None:
            return (self.name,)
        return tuple(f"{self.name}:{s}" for s in _SUFFIX_ORDER if s in self.access)

    def expand(self, access: str | None) -> tuple[str, ...]:
        """The names a manifest request with this ``access`` asks for.

        Raises:
            ValueError: ``access`` is given where the row has no access list, is
                missing where it has one, or is not one of :data:`ACCESS_MODES`.
        """
        if self.access is None:
            if access is not None:
                raise ValueError(f"{self.name} takes no access mode, got {access!r}")
            return (self.name,)
        if access is None:
            raise ValueError(
                f"{self.name} needs an access mode: one of {', '.join(self.access_modes)}"
            )
        suffixes = ACCESS_MODES.get(access)
        if suffixes is None:
            raise ValueError(f"must be one of {', '.join(ACCESS_MODES)}, got {access!r}")
        names = tuple(f"{self.name}:{s}" for s in suffixes if s in self.access)
        if not names:
            raise ValueError(
                f"access {access!r} grants nothing for {self.name} "
                f"(it has {', '.join(self.access)})"
            )
        return names

    @property
    def access_modes(self) -> tuple[str, ...]:
        """The manifest access values that yield at least one name for this row."""
        if self.access is None:
            return ()
        return tuple(m for m, sfx in ACCESS_MODES.items() if any(s in self.access for s in sfx))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "pwa": self.pwa.value,
            "signed": self.signed.value,
            "core": self.core.value if self.core is not None else None,
            "core_effective": self.action_for(AppClass.CORE).value,
            "access": list(self.access) if self.access is not None else None,
            "expanded": list(self.expanded_names),
        }
        if self.default_prompt_action:
            out["default_prompt_action"] = {
                k.value: v.value for k, v in self.default_prompt_action.items()
            }
        return out


class PermissionTable:
    """The whole access-control list: rows, default permissions, restricted names."""

    def __init__(
        self,
        rows: Iterable[PermissionRow],
        *,
        default_permissions: Iterable[str],
        restricted: Iterable[str] = (),
    ) -> None:
        self.rows: dict[str, PermissionRow] = {}
        for row in rows:
            if row.name in self.rows:
                raise ValueError(f"duplicate table row {row.name!r}")
            self.rows[row.name] = row
        self.default_permissions: tuple[str, ...] = tuple(default_permissions)
        self.restricted: frozenset[str] = frozenset(restricted)
        self._reverse: dict[str, PermissionRow] = {}
        for row in self.rows.values():
            for name in row.expanded_names:
                self._reverse[name] = row
        for name in self.default_permissions:
            if name in self._reverse:
                raise ValueError(f"default permission {name!r} is also a table row")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PermissionTable:
        """Build a table from its JSON form (the package's data file format).

        Raises:
            ValueError: the data is malformed.
        """
        rows = []
        for raw in data["rows"]:
            dpa = raw.get("default_prompt_action") or {}
            rows.append(
                PermissionRow(
                    name=str(raw["name"]),
                    pwa=Action(raw["pwa"]),
                    signed=Action(raw["signed"]),
                    core=Action(raw["core"]) if raw.get("core") is not None else None,
                    access=tuple(raw["access"]) if raw.get("access") else None,
                    default_prompt_action={AppClass(k): Action(v) for k, v in dpa.items()},
                )
            )
        return cls(
            rows,
            default_permissions=data.get("default_permissions", ()),
            restricted=data.get("restricted", ()),
        )

    def row(self, name: str) -> PermissionRow:
        """The row of a base name (``contacts``) or an expanded one (``contacts:read``).

        Raises:
            UnknownPermissionError: no such row.
        """
        row = self.rows.get(name) or self._reverse.get(name)
        if row is None:
            raise UnknownPermissionError(f"unknown permission {name!r}", permission=name)
        return row

    def find(self, name: str) -> PermissionRow | None:
        """Like :meth:`row`, but None for an unknown name."""
        return self.rows.get(name) or self._reverse.get(name)

    def is_known(self, expanded: str) -> bool:
        """Whether ``expanded`` is an expanded name of a row or a default permission."""
        return expanded in self._reverse or expanded in self.default_permissions

    def is_explicit(self, expanded: str, app_class: AppClass) -> bool:
        """Whether the user may change ``expanded`` for an app of this class."""
        row = self._reverse.get(expanded)
        return row is not None and row.action_for(app_class) is Action.PROMPT

    def action_for(self, expanded: str, app_class: AppClass) -> Action:
        """The table's action for an expanded name; DENY for names it does not know."""
        row = self._reverse.get(expanded)
        if row is None:
            return Action.ALLOW if expanded in self.default_permissions else Action.DENY
        return row.action_for(app_class)

    def all_possible(self) -> tuple[str, ...]:
        """Every expanded name of every row (KaiOS: AllPossiblePermissions)."""
        return tuple(self._reverse)

    def explain(self, expanded: str, app_class: AppClass) -> str:
        """A sentence saying why ``expanded`` has its table action for this class."""
        if expanded in self.default_permissions:
            return "granted to every installed app"
        row = self._reverse.get(expanded)
        if row is None:
            return "not a permission of the table"
        action = row.action_for(app_class)
        if action is Action.PROMPT:
            return "asked at first use; the user decides"
        fallback = (
            " (as signed: the row has no core value)"
            if (app_class is AppClass.CORE and row.core is None)
            else ""
        )
        one = "PWA" if app_class is AppClass.PWA else f"{app_class.value} app"
        if action is Action.ALLOW:
            return f"granted to every {one}{fallback}"
        return f"not available to {one}s{fallback}"


@cache
def default_table() -> PermissionTable:
    """The KaiOS 3 table shipped with kaisec (loaded once)."""
    text = resources.files("kaisec").joinpath("data/permissions.json").read_text("utf-8")
    return PermissionTable.from_dict(json.loads(text))
