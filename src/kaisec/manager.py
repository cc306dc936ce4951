"""The Permission Manager: the gateway's one question, and every change to the answers.

It sits above the strict store and the table and decides what is normal:

- Install writes, for every expanded permission the manifest requests, the
  table's action for the app's class (plus the default permissions, also for a
  manifest without ``permissions``). Update keeps the user's answers and every
  deny, drops what is no longer requested and writes new requests from the
  table, a new prompt permission asking again. Uninstall removes the origin.
- :meth:`PermissionManager.check` answers allow, deny or prompt. Least
  privilege: no stored row (not requested, not installed) is DENY. An expired
  grant answers PROMPT; a one-time grant is consumed by its use. The OEM/operator
  policy (restricted permissions, overrides) applies on top of what is stored.
- Users change explicit permissions only (IMPLICIT_PERMISSION otherwise), and
  once a PIN is set, turning one to allow needs it.

The decision cache in front of the store is dropped whenever the shared
change counter moves (any process's commit), and never holds a one-time grant.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kaisec.errors import (
    AppNotFoundError,
    ImplicitPermissionError,
    NotRequestedError,
    UnknownPermissionError,
)
from kaisec.home import Home
from kaisec.manifest import AppManifest
from kaisec.permissions import PermissionTable, default_table
from kaisec.pin import PinStore
from kaisec.policy import Policy
from kaisec.registry import AppRecord, add_app, find_app, remove_app, update_app
from kaisec.store import PermissionRow, Store, Txn
from kaisec.types import Action, AppClass, Expiry, Source

__all__ = ["Change", "PermissionManager", "PermissionState"]

log = logging.getLogger(__name__)
_BOOT_KEY = "session.boot"
_CACHE_LIMIT = 1_000_000


@dataclass(frozen=True)
class Change:
    """A change notification: ``origin``/``permission`` None means "anything may have changed"."""

    origin: str | None
    permission: str | None
    action: Action | None


@dataclass(frozen=True)
class PermissionState:
    """One permission of an app as a person (or ``perms --json``) sees it."""

    permission: str
    action: Action
    stored: Action
    source: Source
    effective_source: Source
    expiry: Expiry
    expires_at: float | None
    explicit: bool
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action.value,
            "stored": self.stored.value,
            "source": self.effective_source.value,
            "expiry": self.expiry.value,
            "expires_at": self.expires_at,
            "explicit": self.explicit,
            "why": self.why,
        }


class PermissionManager:
    """Grants, checks and changes permissions over one :class:`Store`."""

    def __init__(
        self,
        store: Store,
        *,
        table: PermissionTable | None = None,
        policy: Policy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.table = table or default_table()
        self.policy = policy or Policy(restricted=self.table.restricted)
        self.pins = PinStore(store, clock=clock)
        self._clock = clock
        self._gen = (
            store.generation._view
        )  # the shared change word (see kaisec._internal.generation)
        self._gen_seen = -1
        self._cache: dict[tuple[str, str], Any] = {}
        self._apps: dict[str, tuple[AppClass, str | None] | None] = {}
        self._boot: str | None = None
        self._subscribers: list[Callable[[Change], None]] = []

    @classmethod
    def open(cls, home: Home, *, clock: Callable[[], float] = time.time) -> PermissionManager:
        """The manager of a home: its database and its ``policy.toml``.

        Raises:
            ConfigError: the policy file is malformed.
        """
        home.ensure()
        table = default_table()
        policy = Policy.load(home.policy_path, default_restricted=table.restricted)
        return cls(Store(home.db_path, clock=clock), table=table, policy=policy, clock=clock)

    def close(self) -> None:
        self.store.close()

    # -- the hot path ---------------------------------------------------------------

    def check(self, origin: str, permission: str, *, use: bool = True) -> Action:
        """What ``origin`` may do with ``permission`` now: allow, deny or prompt.

        ``use=False`` inspects without consuming a one-time grant.
        """
        if self._gen[0] != self._gen_seen:
            self._invalidate()
        hit = self._cache.get((origin, permission))
        if hit is not None:
            if hit.__class__ is not tuple:
                return hit  # type: ignore[no-any-return]
            if self._clock() < hit[1]:
                return hit[0]  # type: ignore[no-any-return]
        return self._decide(origin, permission, use)

    def _invalidate(self) -> None:
        self._gen_seen = int(self._gen[0])
        self._cache.clear()
        self._apps.clear()
        self._boot = None

    def _app_info(self, origin: str) -> tuple[AppClass, str | None] | None:
        if origin in self._apps:
            return self._apps[origin]
        rows = self.store.read("SELECT class, signer FROM apps WHERE origin = ?", (origin,))
        info = (AppClass(rows[0][0]), rows[0][1]) if rows else None
        self._apps[origin] = info
        return info

    def requested(self, origin: str) -> frozenset[str]:
        """The expanded permissions the installed manifest of ``origin`` requests now.

        A stored row is not proof of a request: an update keeps a deny the user
        gave to a permission the new version no longer asks for.
        """
        rows = self.store.read("SELECT manifest FROM apps WHERE origin = ?", (origin,))
        if not rows:
            return frozenset()
        doc = json.loads(rows[0][0])
        features = doc.get("b2g_features") if isinstance(doc, dict) else None
        perms = features.get("permissions") if isinstance(features, dict) else None
        out: set[str] = set()
        if isinstance(perms, dict):
            for name, req in perms.items():
                row = self.table.rows.get(name)
                access = req.get("access") if isinstance(req, dict) else None
                if row is None:
                    continue
                try:
                    out.update(row.expand(access if isinstance(access, str) else None))
                except ValueError:
                    continue
        return frozenset(out)

    def _current_boot(self) -> str:
        if self._boot is None:
            self._boot = self.store.get_setting(_BOOT_KEY) or ""
        return self._boot

    def _stored_action(self, row: PermissionRow, now: float) -> tuple[Action, float | None]:
        """The stored action with expiry applied, and until when it holds (None: no limit)."""
        if row.expiry is Expiry.SESSION and row.session != self._current_boot():
            return Action.PROMPT, None
        if row.expiry is Expiry.UNTIL:
            if row.expires_at is None or now >= row.expires_at:
                return Action.PROMPT, None
            return row.action, row.expires_at
        return row.action, None

    def _decide(self, origin: str, permission: str, use: bool) -> Action:
        key = (origin, permission)
        app = self._app_info(origin)
        row = self.store.get_permission(origin, permission) if app is not None else None
        if app is None or row is None:
            self._remember(key, Action.DENY)  # least privilege: not installed or not requested
            return Action.DENY
        if row.expiry is Expiry.ONCE and row.action is Action.ALLOW:
            action, _ = self.policy.adjust(origin, app[1], permission, Action.ALLOW, row.source)
            if not use or action is not Action.ALLOW:
                return action
            if self._consume_once(origin, permission):
                return Action.ALLOW
            return self._decide(origin, permission, use)  # another process used it first
        action, until = self._stored_action(row, self._clock())
        action, _ = self.policy.adjust(origin, app[1], permission, action, row.source)
        self._remember(key, (action, until) if until is not None else action)
        return action

    def _remember(self, key: tuple[str, str], value: Any) -> None:
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = value

    def _consume_once(self, origin: str, permission: str) -> bool:
        with self.store.transaction() as txn:
            cur = txn.execute(
                "UPDATE permissions SET action = 'prompt', expiry = 'never', expires_at = NULL,"
                " source = 'table', modified = ? WHERE origin = ? AND permission = ?"
                " AND expiry = 'once' AND action = 'allow'",
                (txn.now, origin, permission),
            )
            used = cur.rowcount == 1
            if used:
                txn.audit(origin, permission, "allow", actor="once", detail="one-time grant used")
        if used:
            self._notify(Change(origin, permission, Action.PROMPT))
        return used

    # -- what a person sees ---------------------------------------------------------------

    def app(self, key: str) -> AppRecord:
        """The installed app whose id, name or origin is ``key``.

        Raises:
            AppNotFoundError: no such app.
        """
        return find_app(self.store, key)

    def permissions(self, origin: str) -> list[PermissionState]:
        """Every stored permission of ``origin`` with its effective action (nothing consumed).

        Raises:
            AppNotFoundError: ``origin`` is not installed.
        """
        app = self._app_info(origin)
        if app is None:
            raise AppNotFoundError(f"no installed app has origin {origin!r}", app=origin)
        app_class, signer = app
        now = self._clock()
        out = []
        for row in self.store.permissions(origin):
            action, _ = self._stored_action(row, now)
            action, changed = self.policy.adjust(origin, signer, row.permission, action, row.source)
            explicit = self.table.is_explicit(row.permission, app_class)
            why = self.table.explain(row.permission, app_class)
            if changed is Source.OVERRIDE:
                why = "set by the device's OEM/operator policy"
            elif row.source is Source.USER:
                why = "your choice" + (
                    f" ({row.expiry.value})" if row.expiry is not Expiry.NEVER else ""
                )
            out.append(
                PermissionState(
                    permission=row.permission,
                    action=action,
                    stored=row.action,
                    source=row.source,
                    effective_source=changed or row.source,
                    expiry=row.expiry,
                    expires_at=row.expires_at,
                    explicit=explicit,
                    why=why,
                )
            )
        return out

    def is_explicit(self, origin: str, permission: str) -> bool:
        """Whether the user may change ``permission`` for ``origin``."""
        app = self._app_info(origin)
        return app is not None and self.table.is_explicit(permission, app[0])

    # -- user changes -----------------------------------------------------------------------

    def set(
        self,
        origin: str,
        permission: str,
        action: Action,
        *,
        expiry: Expiry = Expiry.NEVER,
        duration: float | None = None,
        pin: str | None = None,
        actor: str = "user",
    ) -> None:
        """The user's answer for an explicit permission.

        Args:
            expiry: NEVER (until changed), SESSION (until the runtime restarts),
                UNTIL (for ``duration`` seconds), ONCE (one use; allow only).
            pin: the device PIN, needed to turn a permission to allow once one is set.

        Raises:
            AppNotFoundError: ``origin`` is not installed.
            UnknownPermissionError: not a permission of the table.
            NotRequestedError: the manifest does not request it.
            ImplicitPermissionError: the table decides it for this class; nobody may change it.
            PinRequiredError, PinLockedError: a PIN is needed and missing, wrong or locked.
            ValueError: an inconsistent expiry (ONCE with deny, UNTIL without a duration).
        """
        action = Action(action)
        expiry = Expiry(expiry)
        self._check_change(origin, permission, action, expiry, duration)
        if action is Action.ALLOW:
            self.pins.verify(pin, actor=actor)
        self._store_answer(origin, permission, action, expiry, duration, actor)

    def answer_prompt(
        self,
        origin: str,
        permission: str,
        action: Action,
        *,
        expiry: Expiry = Expiry.NEVER,
        duration: float | None = None,
        actor: str = "prompt",
    ) -> None:
        """Persist the user's answer to a runtime prompt ("remember my choice").

        The same rules as :meth:`set` (explicit and requested permissions only),
        but no PIN: the user is answering the app's request on the device's
        own prompt screen, not changing a setting.

        Raises:
            AppNotFoundError, UnknownPermissionError, NotRequestedError,
            ImplicitPermissionError, ValueError: as :meth:`set`.
        """
        action, expiry = Action(action), Expiry(expiry)
        self._check_change(origin, permission, action, expiry, duration)
        self._store_answer(origin, permission, action, expiry, duration, actor)

    def _check_change(
        self,
        origin: str,
        permission: str,
        action: Action,
        expiry: Expiry,
        duration: float | None,
    ) -> None:
        if expiry is Expiry.ONCE and action is not Action.ALLOW:
            raise ValueError("a one-time answer can only allow")
        if expiry is Expiry.UNTIL and (duration is None or duration <= 0):
            raise ValueError("a time-limited answer needs a positive duration")
        app = self._app_info(origin)
        if app is None:
            raise AppNotFoundError(f"no installed app has origin {origin!r}", app=origin)
        if not self.table.is_known(permission):
            raise UnknownPermissionError(
                f"unknown permission {permission!r}", permission=permission
            )
        if not self.table.is_explicit(permission, app[0]):
            raise ImplicitPermissionError(
                f"{permission} is implicit for {app[0].value} apps "
                f"({self.table.explain(permission, app[0])}); it cannot be changed",
                permission=permission,
            )

    def _store_answer(
        self,
        origin: str,
        permission: str,
        action: Action,
        expiry: Expiry,
        duration: float | None,
        actor: str,
    ) -> None:
        with self.store.transaction() as txn:
            if txn.get_permission(origin, permission) is None or permission not in self.requested(
                origin
            ):
                raise NotRequestedError(
                    f"{origin} does not request {permission} in its manifest",
                    permission=permission,
                )
            expires_at = txn.now + duration if expiry is Expiry.UNTIL and duration else None
            session = self._current_boot() if expiry is Expiry.SESSION else None
            txn.put_permission(
                origin,
                permission,
                action,
                source=Source.USER,
                expiry=expiry,
                expires_at=expires_at,
                session=session,
            )
            detail = expiry.value if expiry is not Expiry.NEVER else None
            txn.audit(origin, permission, f"set:{action.value}", actor=actor, detail=detail)
        self._notify(Change(origin, permission, action))

    def start_session(self) -> str:
        """Begin a runtime session (the daemon's start): session grants of earlier ones lapse."""
        boot = secrets.token_hex(8)
        with self.store.transaction() as txn:
            txn.set_setting(_BOOT_KEY, boot)
            # session answers lapse: back to the table's PROMPT (only explicit rows have them)
            txn.execute(
                "UPDATE permissions SET action = 'prompt', expiry = 'never', session = NULL,"
                " source = 'table', modified = ? WHERE expiry = 'session'",
                (txn.now,),
            )
        self._notify(Change(None, None, None))
        return boot

    # -- app lifecycle ---------------------------------------------------------------------

    def register_app(
        self, rec: AppRecord, manifest: AppManifest, *, actor: str = "install"
    ) -> None:
        """Add ``rec`` to the registry and write its permissions, in one transaction."""
        with self.store.transaction() as txn:
            add_app(txn, rec)
            self.grant_install(txn, rec, manifest, actor=actor)
        self._notify(Change(rec.origin, None, None))

    def update_registered_app(
        self, rec: AppRecord, manifest: AppManifest, *, actor: str = "update"
    ) -> None:
        """Replace ``rec``'s registry row and re-derive its permissions, in one transaction."""
        with self.store.transaction() as txn:
            update_app(txn, rec)
            self.grant_update(txn, rec, manifest, actor=actor)
        self._notify(Change(rec.origin, None, None))

    def unregister_app(self, rec: AppRecord, *, actor: str = "uninstall") -> None:
        """Remove ``rec``'s registry row and every permission of its origin."""
        with self.store.transaction() as txn:
            remove_app(txn, rec.id)
            self.revoke_all(txn, rec.origin, actor=actor)
        self._notify(Change(rec.origin, None, None))

    def _expanded_requests(self, manifest: AppManifest) -> dict[str, str]:
        """expanded name -> row name, for every request the table knows."""
        out: dict[str, str] = {}
        for base, names in manifest.expanded_permissions().items():
            for name in names:
                out[name] = base
        return out

    def grant_install(
        self, txn: Txn, rec: AppRecord, manifest: AppManifest, *, actor: str = "install"
    ) -> None:
        """Write an app's permissions at install (inside the installer's transaction)."""
        cls = rec.app_class
        for name in self.table.default_permissions:
            txn.put_permission(rec.origin, name, Action.ALLOW, source=Source.TABLE)
        for name, base in self._expanded_requests(manifest).items():
            row = self.table.rows[base]
            existing = txn.get_permission(rec.origin, name)
            if existing is not None and row.action_for(cls) is Action.PROMPT:
                continue  # the user's earlier answer stands (KaiOS: boot re-install)
            txn.put_permission(rec.origin, name, row.initial_action(cls), source=Source.TABLE)
        txn.audit(rec.origin, "*", "install", actor=actor, detail=f"class={cls.value}")

    def grant_update(
        self, txn: Txn, rec: AppRecord, manifest: AppManifest, *, actor: str = "update"
    ) -> None:
        """Re-derive an app's permissions for a new manifest (inside the installer's transaction).

        Kept: every DENY and every answer the user gave. Dropped: what the new
        manifest no longer requests (but a deny stays). New requests come from
        the table, prompt-class ones as PROMPT: nothing becomes allow silently.
        """
        cls = rec.app_class
        wanted = self._expanded_requests(manifest)
        for row in txn.permissions(rec.origin):
            if row.permission in self.table.default_permissions:
                continue
            if row.permission not in wanted and row.action is not Action.DENY:
                txn.delete_permission(rec.origin, row.permission)
        for name in self.table.default_permissions:
            txn.put_permission(rec.origin, name, Action.ALLOW, source=Source.TABLE)
        for name, base in wanted.items():
            table_row = self.table.rows[base]
            table_action = table_row.action_for(cls)
            existing = txn.get_permission(rec.origin, name)
            if existing is not None:
                if existing.action is Action.DENY:
                    continue  # every deny is kept
                if existing.source is Source.USER and table_action is Action.PROMPT:
                    continue  # the user's answer, still the user's to give for this class
                if (
                    existing.source is not Source.USER
                    and table_action is Action.PROMPT
                    and existing.action is table_row.initial_action(cls)
                ):
                    continue  # unanswered, or a default prompt action of this same class
            # new requests, and rows the class no longer explains (a class change): the table
            txn.put_permission(rec.origin, name, table_action, source=Source.TABLE)
        txn.audit(rec.origin, "*", "update", actor=actor, detail=f"class={cls.value}")

    def revoke_all(self, txn: Txn, origin: str, *, actor: str = "uninstall") -> None:
        """Remove every permission of ``origin`` (inside the caller's transaction)."""
        txn.delete_origin(origin)
        txn.audit(origin, "*", "uninstall", actor=actor)

    # -- notifications -----------------------------------------------------------------------

    def subscribe(self, callback: Callable[[Change], None]) -> Callable[[], None]:
        """Call ``callback(change)`` on every change this process makes, and on
        :meth:`refresh` when another process changed something. Returns an unsubscriber."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def refresh(self) -> bool:
        """Notice changes made by other processes; True (and subscribers told) if any."""
        if self._gen[0] == self._gen_seen:
            return False
        self._invalidate()
        self._notify(Change(None, None, None))
        return True

    def _notify(self, change: Change) -> None:
        self._invalidate()
        for cb in list(self._subscribers):
            try:
                cb(change)
            except Exception:  # a subscriber's bug must not undo a committed change
                log.exception("permission change subscriber failed")
