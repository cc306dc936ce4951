"""Commands for installed apps: install, update, uninstall, apps, doctor, resolve, config."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from kaisec._cli._common import console, print_json, state
from kaisec.errors import KaisecError

if TYPE_CHECKING:
    from kaisec.installer import Installer


@contextmanager
def _installer() -> Iterator[Installer]:
    from kaisec.installer import Installer

    inst = Installer(state().home)
    try:
        yield inst
    finally:
        inst.close()


def _progress(enabled: bool):  # type: ignore[no-untyped-def]
    """A callback printing stages on stderr (people only)."""
    if not enabled or not sys.stderr.isatty():
        return None

    def report(stage: str, fraction: float) -> None:
        click.echo(f"  {stage:<18} {int(fraction * 100):3d}%", err=True)

    return report


def _install_output(result_app: object, json_: bool, verb: str) -> None:
    from kaisec.registry import AppRecord

    assert isinstance(result_app, AppRecord)
    if json_:
        print_json({"installed": True, "app": _app_json(result_app), "error": None})
    else:
        console().print(
            f"{verb} [bold]{result_app.display_name}[/] {result_app.version or ''} "
            f"as [bold]{result_app.app_class.value}[/] at {result_app.origin} "
            f"(id {result_app.id})"
        )


def _app_json(rec: object) -> dict[str, object]:
    from kaisec.registry import AppRecord

    assert isinstance(rec, AppRecord)
    return {
        "id": rec.id,
        "name": rec.display_name,
        "origin": rec.origin,
        "class": rec.app_class.value,
        "version": rec.version,
    }


@click.command("install")
@click.argument("source", metavar="PKG|MANIFEST_URL")
@click.option("--json", "json_", is_flag=True, help="Machine-readable output.")
def install_cmd(source: str, json_: bool) -> int:
    """Install a signed package, a hosted app (manifest URL) or a store update manifest URL.

    Exit 0 installed, 1 refused (nothing is left behind).
    """
    state(json_)
    try:
        with _installer() as inst:
            result = inst.install(source, progress=_progress(not json_))
    except KaisecError as exc:
        if json_:
            print_json({"installed": False, "app": None, "error": exc.to_dict()})
            return 1
        raise
    _install_output(result.app, json_, "installed")
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    return 0


@click.command("update")
@click.argument("app")
@click.argument("source", metavar="PKG|URL")
@click.option(
    "--rotation",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A rotation record signed by the installed signer, naming the update's signer.",
)
@click.option("--json", "json_", is_flag=True, help="Machine-readable output.")
def update_cmd(app: str, source: str, rotation: Path | None, json_: bool) -> int:
    """Update APP from a package or URL: same signer (or a rotation record), higher version."""
    state(json_)
    try:
        with _installer() as inst:
            result = inst.update(
                app,
                source,
                rotation=rotation.read_bytes() if rotation else None,
                progress=_progress(not json_),
            )
    except KaisecError as exc:
        if json_:
            print_json({"installed": False, "app": None, "error": exc.to_dict()})
            return 1
        raise
    _install_output(result.app, json_, "updated")
    return 0


@click.command("uninstall")
@click.argument("app")
@click.option("--json", "json_", is_flag=True, help="Machine-readable output.")
def uninstall_cmd(app: str, json_: bool) -> None:
    """Remove APP: its package, its permissions and its private data."""
    state(json_)
    with _installer() as inst:
        rec = inst.uninstall(app)
    if json_:
        print_json({"uninstalled": True, "app": _app_json(rec), "error": None})
    else:
        click.echo(f"uninstalled {rec.display_name} ({rec.origin})")


@click.command("apps")
@click.option("--json", "json_", is_flag=True, help="Machine-readable output.")
def apps_cmd(json_: bool) -> None:
    """List installed apps: class, version, origin, signer."""
    state(json_)
    from kaisec.registry import list_apps
    from kaisec.store import Store

    store = Store(state().home.db_path)
    try:
        apps = list_apps(store)
    finally:
        store.close()
    if json_:
        print_json({"apps": [a.to_dict() | {"name": a.display_name} for a in apps]})
        return
    from rich.table import Table

    table = Table()
    for col in ("name", "class", "version", "origin", "signer", "id"):
        table.add_column(col)
    badge = {"core": "magenta", "signed": "green", "pwa": "cyan"}
    for a in apps:
        cls = a.app_class.value
        table.add_row(
            a.display_name,
            f"[{badge[cls]}]{cls}[/]",
            a.version or "",
            a.origin,
            (a.signer_subject or a.signer or "unsigned")[:48],
            a.id,
        )
    console().print(table)


@click.command("doctor")
@click.option("--json", "json_", is_flag=True, help="Machine-readable output.")
def doctor_cmd(json_: bool) -> int:
    """Re-verify installed packages and check the database; exit 1 when anything is wrong."""
    state(json_)
    from kaisec.doctor import run_doctor

    with _installer() as inst:
        report = run_doctor(inst)
    if json_:
        print_json(report.to_dict())
    else:
        for item in report.recovered:
            click.echo(f"recovered: removed {item} (left by an interrupted operation)")
        for p in report.problems:
            click.echo(f"problem: {p.what}: {p.code}: {p.message}")
        click.echo(
            f"{report.apps} apps, {report.checked_packages} packages checked: "
            + ("all good" if report.ok else f"{len(report.problems)} problem(s)")
        )
    return 0 if report.ok else 1


@click.command("resolve")
@click.argument("url", metavar="app://UUID/PATH")
@click.option("--json", "json_", is_flag=True, help="Machine-readable output.")
def resolve_cmd(url: str, json_: bool) -> None:
    """Print what an app:// URL names inside that app's package."""
    state(json_)
    from kaisec.appurl import resolve_app_url
    from kaisec.store import Store

    home = state().home
    store = Store(home.db_path)
    try:
        res = resolve_app_url(store, home.apps_dir, url)
    finally:
        store.close()
    if json_:
        print_json(res.to_dict())
    else:
        click.echo(f"{res.app.name}:{res.entry} ({res.size} bytes) in {res.package}")


@click.group("config")
def config_group() -> None:
    """Device settings: developer mode."""


@config_group.command("set")
@click.argument("key", type=click.Choice(["developer-mode"]))
@click.argument("value", type=click.Choice(["on", "off"]))
@click.option("--pin", default=None, help="Device PIN (else $KAISEC_PIN, else asked).")
def config_set(key: str, value: str, pin: str | None) -> None:
    """Set a device setting (turning developer mode on needs the PIN once one is set)."""
    from kaisec._cli.policy_cmds import _pin_value

    with _installer() as inst:
        needs = value == "on" and inst.manager.pins.is_set()
        inst.set_developer_mode(value == "on", pin=_pin_value(pin, needed=needs))
    click.echo(f"{key} {value}")


@config_group.command("get")
@click.argument("key", type=click.Choice(["developer-mode"]))
def config_get(key: str) -> None:
    """Print a device setting."""
    with _installer() as inst:
        click.echo("on" if inst.developer_mode() else "off")


@click.group("rotation")
def rotation_group() -> None:
    """Signer rotation records (docs/signing.md, "Key rotation")."""


@rotation_group.command("create")
@click.option(
    "--app", "app_origin", required=True, help="The app's origin, e.g. http://x.localhost"
)
@click.option("--key", "key_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--cert", "cert_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--new-cert", "new_cert_path", required=True,
              type=click.Path(exists=True, dir_okay=False))  # fmt: skip
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--passphrase-env", default=None, help="Env var holding the old key's passphrase.")
def rotation_create(
    app_origin: str,
    key_path: str,
    cert_path: str,
    new_cert_path: str,
    out: Path,
    passphrase_env: str | None,
) -> None:
    """Sign, with the OLD key, a record naming NEW-CERT as the app's next signer."""
    import os

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    from kaisec.errors import InvalidKeyError
    from kaisec.rotation import make_rotation

    password = os.environ.get(passphrase_env, "").encode() if passphrase_env else None
    try:
        key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password or None)
        old = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
        new = x509.load_pem_x509_certificate(Path(new_cert_path).read_bytes())
    except (ValueError, TypeError) as exc:
        raise InvalidKeyError(f"cannot load key or certificate: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise InvalidKeyError("the old key must be RSA or EC")
    try:
        record = make_rotation(app_origin=app_origin, old_key=key, old_cert=old, new_cert=new)
    except ValueError as exc:
        raise InvalidKeyError(str(exc)) from exc
    out.write_bytes(record)
    click.echo(f"wrote {out}")


def register(group: click.Group) -> None:
    """Add this module's commands to the ``kaisec`` group."""
    for cmd in (
        install_cmd,
        update_cmd,
        uninstall_cmd,
        apps_cmd,
        doctor_cmd,
        resolve_cmd,
        config_group,
        rotation_group,
    ):
        group.add_command(cmd)
