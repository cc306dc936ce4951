"""Commands for the policy core: perms, check, table, pin, audit."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from kaisec._cli._common import console, print_json, state
from kaisec.errors import UnknownPermissionError
from kaisec.types import Action, AppClass, Expiry

if TYPE_CHECKING:
    from kaisec.manager import PermissionManager

_ACTION_STYLE = {"allow": "green", "deny": "red", "prompt": "yellow"}


@contextmanager
def _manager() -> Iterator[PermissionManager]:
    from kaisec.manager import PermissionManager

    mgr = PermissionManager.open(state().home)
    try:
        yield mgr
    finally:
        mgr.close()


def _pin_value(given: str | None, *, needed: bool, prompt: str = "Device PIN") -> str | None:
    """The PIN from --pin, else $KAISEC_PIN, else asked on a terminal when needed."""
    if given:
        return given
    env = os.environ.get("KAISEC_PIN")
    if env:
        return env
    if needed and sys.stdin.isatty():
        return str(click.prompt(prompt, hide_input=True))
    return None


def _styled(action: str) -> str:
    return f"[{_ACTION_STYLE.get(action, 'white')}]{action}[/]"


def _when(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@click.command("perms", context_settings={"ignore_unknown_options": False})
@click.argument("args", nargs=-1, required=True, metavar="APP | set APP PERMISSION ACTION")
@click.option("--json", "json_", is_flag=True, help="Machine-readable output.")
@click.option("--pin", default=None, help="Device PIN (else $KAISEC_PIN, else asked).")
@click.option("--once", is_flag=True, help="set: allow for one use only.")
@click.option("--session", "session_", is_flag=True, help="set: until the runtime restarts.")
@click.option("--for", "for_", type=click.IntRange(min=1), default=None, metavar="SECONDS",
              help="set: for this many seconds, then ask again.")  # fmt: skip
def perms_cmd(
    args: tuple[str, ...],
    json_: bool,
    pin: str | None,
    once: bool,
    session_: bool,
    for_: int | None,
) -> None:
    """Show an app's permissions, or change an explicit one.

    \b
      kaisec perms APP                          every expanded permission and its action
      kaisec perms set APP PERMISSION allow|deny|prompt [--once|--session|--for S]
    """
    st = state(json_)
    if args[0] == "set" and len(args) > 1:
        if len(args) != 4:
            raise click.UsageError("usage: kaisec perms set APP PERMISSION allow|deny|prompt")
        _, app_key, permission, action_text = args
        if action_text not in ("allow", "deny", "prompt"):
            raise click.BadParameter(f"expected allow, deny or prompt, got {action_text!r}")
        if sum([once, session_, for_ is not None]) > 1:
            raise click.UsageError("choose one of --once, --session, --for")
        expiry = Expiry.NEVER
        if once:
            expiry = Expiry.ONCE
        elif session_:
            expiry = Expiry.SESSION
        elif for_ is not None:
            expiry = Expiry.UNTIL
        action = Action(action_text)
        with _manager() as mgr:
            app = mgr.app(app_key)
            needs_pin = action is Action.ALLOW and mgr.pins.is_set()
            mgr.set(
                app.origin,
                permission,
                action,
                expiry=expiry,
                duration=float(for_) if for_ else None,
                pin=_pin_value(pin, needed=needs_pin),
                actor="cli",
            )
            now = mgr.check(app.origin, permission, use=False)
        if json_:
            print_json({"app": app.name, "permission": permission, "action": now.value})
        else:
            console().print(f"{app.name}: {permission} -> {_styled(now.value)}")
        return
    if len(args) != 1:
        raise click.UsageError("usage: kaisec perms APP  |  kaisec perms set APP PERMISSION ACTION")
    with _manager() as mgr:
        app = mgr.app(args[0])
        states = mgr.permissions(app.origin)
    if json_:
        print_json(
            {
                "app": app.name,
                "origin": app.origin,
                "class": app.app_class.value,
                "permissions": {s.permission: s.action.value for s in states},
                "details": {s.permission: s.to_dict() for s in states},
            }
        )
        return
    from rich.table import Table

    table = Table(title=f"{app.name}  {app.origin}  [{app.app_class.value}]", title_justify="left")
    table.add_column("permission")
    table.add_column("action")
    table.add_column("changeable")
    table.add_column("why")
    for s in states:
        why = s.why + (f", until {_when(s.expires_at)}" if s.expires_at else "")
        table.add_row(s.permission, _styled(s.action.value), "yes" if s.explicit else "no", why)
    console().print(table)
    _ = st


@click.command("check")
@click.argument("app")
@click.argument("permission")
@click.option("--json", "json_", is_flag=True, help="Machine-readable output.")
def check_cmd(app: str, permission: str, json_: bool) -> None:
    """Print allow, deny or prompt for APP and PERMISSION (an inspection: nothing is used up)."""
    state(json_)
    with _manager() as mgr:
        rec = mgr.app(app)
        if not mgr.table.is_known(permission):
            raise UnknownPermissionError(
                f"unknown permission {permission!r} (see `kaisec table`)", permission=permission
            )
        action = mgr.check(rec.origin, permission, use=False)
    if json_:
        print_json({"app": rec.name, "permission": permission, "action": action.value})
    else:
        click.echo(action.value)


@click.command("table")
@click.argument("permission", required=False)
@click.option("--json", "json_", is_flag=True, help="Machine-readable output.")
def table_cmd(permission: str | None, json_: bool) -> None:
    """Show the permission table (one row, or all)."""
    state(json_)
    from kaisec.permissions import default_table

    tbl = default_table()
    rows = [tbl.row(permission)] if permission else list(tbl.rows.values())
    if json_:
        out: dict[str, object] = {"rows": [r.to_dict() for r in rows]}
        if not permission:
            out["default_permissions"] = list(tbl.default_permissions)
            out["restricted"] = sorted(tbl.restricted)
        print_json(out)
        return
    from rich.table import Table

    table = Table()
    table.add_column("permission")
    for cls in AppClass:
        table.add_column(cls.value)
    table.add_column("access")
    table.add_column("expands to")
    for r in rows:
        core = r.action_for(AppClass.CORE).value + ("" if r.core is not None else " (as signed)")
        table.add_row(
            r.name + (" [dim](restricted)[/]" if r.name in tbl.restricted else ""),
            _styled(r.pwa.value),
            _styled(r.signed.value),
            _styled(r.action_for(AppClass.CORE).value).replace(
                r.action_for(AppClass.CORE).value + "[/]", core + "[/]"
            ),
            ", ".join(r.access or ()),
            ", ".join(r.expanded_names),
        )
    console().print(table)
    if not permission:
        console().print(f"Granted to every installed app: {', '.join(tbl.default_permissions)}")


@click.group("pin")
def pin_group() -> None:
    """Set or change the device PIN (needed to allow permissions once set)."""


@pin_group.command("set")
@click.option("--new", "new", default=None, help="The new PIN (else asked, or $KAISEC_NEW_PIN).")
def pin_set(new: str | None) -> None:
    """Set the PIN when none is set."""
    _pin_change(current=None, new=new, require_unset=True)


@pin_group.command("change")
@click.option("--old", "old", default=None, help="The PIN in force (else $KAISEC_PIN, or asked).")
@click.option("--new", "new", default=None, help="The new PIN (else asked, or $KAISEC_NEW_PIN).")
def pin_change(old: str | None, new: str | None) -> None:
    """Change the PIN (needs the current one)."""
    _pin_change(current=_pin_value(old, needed=True, prompt="Current PIN"), new=new)


def _pin_change(*, current: str | None, new: str | None, require_unset: bool = False) -> None:
    new = new or os.environ.get("KAISEC_NEW_PIN")
    if not new:
        if not sys.stdin.isatty():
            raise click.UsageError("give --new PIN (or $KAISEC_NEW_PIN) when not on a terminal")
        new = str(click.prompt("New PIN", hide_input=True, confirmation_prompt=True))
    with _manager() as mgr:
        if require_unset and mgr.pins.is_set():
            raise click.UsageError("a PIN is already set: use `kaisec pin change`")
        try:
            mgr.pins.set(new, current=current)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--new") from exc
    click.echo("PIN set.")


@click.command("audit")
@click.option("--app", "app", default=None, help="Only this app (id, name or origin).")
@click.option("--permission", default=None, help="Only this permission.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--json", "json_", is_flag=True, help="Machine-readable output.")
def audit_cmd(app: str | None, permission: str | None, limit: int, json_: bool) -> None:
    """Show the audit log of decisions and changes, newest last."""
    state(json_)
    with _manager() as mgr:
        origin = mgr.app(app).origin if app else None
        entries = mgr.store.audit_log(origin=origin, permission=permission, limit=limit)
    if json_:
        print_json({"entries": [e.to_dict() for e in entries]})
        return
    from rich.table import Table

    table = Table()
    for col in ("time", "origin", "permission", "decision", "by", "detail"):
        table.add_column(col)
    for e in entries:
        table.add_row(_when(e.time), e.origin, e.permission, e.decision, e.actor, e.detail or "")
    console().print(table)


def register(group: click.Group) -> None:
    """Add this module's commands to the ``kaisec`` group."""
    for cmd in (perms_cmd, check_cmd, table_cmd, pin_group, audit_cmd):
        group.add_command(cmd)
