"""Commands for packages and keys: keys init, trust add/list, pack, sign, verify.

Handlers turn arguments into calls of ``kaisec.keys``, ``kaisec.trust`` and
``kaisec.package`` and print. Library modules are imported inside the
handlers: ``kaisec verify`` is run per package by scripts, and its start-up
time is part of its cost (docs/benchmarks.md).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from kaisec._cli._common import print_json, state

_CLASSES = ("signed", "core")


def _read_passphrase_file(path: str | None) -> bytes | None:
    if path is None:
        return None
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path!r}: {exc.strerror}") from exc
    line = data.splitlines()[0] if data else b""
    if not line:
        raise click.BadParameter(f"{path!r} holds an empty passphrase")
    return line


# --- keys -----------------------------------------------------------------------------


@click.group("keys")
def keys_group() -> None:
    """Signing keys."""


@keys_group.command("init")
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for the keys (default: <home>/keys).",
)
@click.option(
    "--key-type",
    type=click.Choice(["ec", "rsa"]),
    default="rsa",
    show_default=True,
    help="RSA 3072 (KaiOS devices, apksigner API 19+) or ECDSA P-256 (Android 5+).",
)
@click.option("--encrypt", is_flag=True, help="Encrypt the private keys; asks for a passphrase.")
@click.option(
    "--passphrase-file",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="Encrypt the private keys with the first line of this file.",
)
@click.option(
    "--trust",
    "add_trust",
    is_flag=True,
    help="Also add the two roots to the home's trust store (store -> signed, OEM -> core).",
)
@click.option("--json", "json_", is_flag=True, help="Machine-readable output.")
def keys_init_cmd(
    out: str | None,
    key_type: str,
    encrypt: bool,
    passphrase_file: str | None,
    add_trust: bool,
    json_: bool,
) -> None:
    """Create a development PKI: a store root and signer, an OEM root and signer.

    Writes store-root.pem, store-signer.key, store-signer.pem, oem-root.pem,
    oem-signer.key, oem-signer.pem (keys PKCS#8 PEM, mode 0600); existing
    files are never overwritten. The roots' private keys are not kept.
    """
    from kaisec.keys import init_dev_pki
    from kaisec.trust import TrustStore
    from kaisec.types import AppClass

    st = state(json_)
    passphrase = _read_passphrase_file(passphrase_file)
    if encrypt and passphrase is None:
        passphrase = click.prompt(
            "Passphrase for the private keys", hide_input=True, confirmation_prompt=True
        ).encode()
    directory = Path(out) if out else st.home.root / "keys"
    try:
        pki = init_dev_pki(directory, passphrase=passphrase, key_type=key_type)  # type: ignore[arg-type]
    except FileExistsError as exc:
        raise click.ClickException(str(exc)) from exc
    trusted: list[dict[str, Any]] = []
    if add_trust:
        store = TrustStore.load(st.home.trust_dir)
        for path, cls in ((pki.store_root, AppClass.SIGNED), (pki.oem_root, AppClass.CORE)):
            trusted.append(store.add(path, cls).to_dict())
    files = {
        "store_root": str(pki.store_root),
        "store_signer_key": str(pki.store_signer_key),
        "store_signer_cert": str(pki.store_signer_cert),
        "oem_root": str(pki.oem_root),
        "oem_signer_key": str(pki.oem_signer_key),
        "oem_signer_cert": str(pki.oem_signer_cert),
    }
    if json_:
        print_json({"directory": str(pki.directory), "files": files, "trusted": trusted})
        return
    click.echo(f"development PKI in {pki.directory}:")
    for file_path in files.values():
        click.echo(f"  {file_path}")
    for root in trusted:
        click.echo(f"trusted {root['class']} root {root['subject']} ({root['fingerprint']})")
    if not add_trust:
        click.echo(
            "next: kaisec trust add --class signed store-root.pem; "
            "kaisec trust add --class core oem-root.pem"
        )


# --- trust ----------------------------------------------------------------------------


@click.group("trust")
def trust_group() -> None:
    """The trust store: roots that prove the signed and core classes."""


@trust_group.command("add")
@click.option(
    "--class", "cls", type=click.Choice(_CLASSES), required=True, help="The class it proves."
)
@click.argument("cert", type=click.Path(dir_okay=False, exists=True))
@click.option("--json", "json_", is_flag=True, help="Machine-readable output.")
def trust_add_cmd(cls: str, cert: str, json_: bool) -> None:
    """Trust a root (CA) certificate for a class: copied into <home>/trust/<class>/."""
    from kaisec.trust import TrustStore
    from kaisec.types import AppClass

    st = state(json_)
    store = TrustStore.load(st.home.trust_dir)
    root = store.add(cert, AppClass(cls))
    if json_:
        print_json(root.to_dict())
        return
    click.echo(f"trusted {root.app_class.value} root {root.subject} ({root.fingerprint})")


@trust_group.command("list")
@click.option("--json", "json_", is_flag=True, help="Machine-readable output.")
def trust_list_cmd(json_: bool) -> None:
    """List the trusted roots."""
    from kaisec.trust import TrustStore

    st = state(json_)
    store = TrustStore.load(st.home.trust_dir)
    roots = [r.to_dict() for r in store.list()]
    if json_:
        print_json({"roots": roots})
        return
    if not roots:
        click.echo("no trusted roots (kaisec trust add --class signed|core ROOT.pem)")
        return
    for r in roots:
        click.echo(f"{r['class']:<7} {r['fingerprint']}  {r['subject']}  (until {r['not_after']})")


# --- pack, sign -------------------------------------------------------------------------


@click.command("pack")
@click.argument("src_dir", type=click.Path(file_okay=False, exists=True))
@click.option("-o", "--out", "out", type=click.Path(dir_okay=False), required=True)
@click.option("--json", "json_", is_flag=True, help="Machine-readable output.")
def pack_cmd(src_dir: str, out: str, json_: bool) -> None:
    """Pack an app folder into a deterministic, unsigned package."""
    from kaisec.package import pack

    state(json_)
    path = pack(src_dir, out)
    if json_:
        print_json({"package": str(path)})
        return
    click.echo(f"packed {path}")


@click.command("sign")
@click.argument("pkg", type=click.Path(dir_okay=False, exists=True))
@click.option("--key", "key_path", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option(
    "--cert",
    "cert_path",
    type=click.Path(dir_okay=False, exists=True),
    required=True,
    help="The signer's certificate (PEM), optionally followed by its chain.",
)
@click.option(
    "--chain",
    "chain_path",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="PEM file of intermediate (and root) certificates to carry.",
)
@click.option("-o", "--out", "out", type=click.Path(dir_okay=False), default=None)
@click.option(
    "--passphrase-file",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="The key's passphrase (first line); else asked when the key is encrypted.",
)
@click.option(
    "--legacy-sha1",
    is_flag=True,
    help="Add SHA-1 digests (KaiOS 2.5 devices; KaiOS 3 checks SHA1-Digest-Manifest).",
)
@click.option(
    "--kaios-layout",
    is_flag=True,
    help="Name the files META-INF/manifest.mf, zigbert.sf, zigbert.rsa (RSA keys only).",
)
@click.option("--json", "json_", is_flag=True, help="Machine-readable output.")
def sign_cmd(
    pkg: str,
    key_path: str,
    cert_path: str,
    chain_path: str | None,
    out: str | None,
    passphrase_file: str | None,
    legacy_sha1: bool,
    kaios_layout: bool,
    json_: bool,
) -> None:
    """Sign a package (JAR signature: MANIFEST.MF, .SF, PKCS#7); replaces an old signature."""
    from kaisec.keys import key_is_encrypted, load_certificates, load_private_key
    from kaisec.package import sign_package

    state(json_)
    passphrase = _read_passphrase_file(passphrase_file)
    if passphrase is None and key_is_encrypted(key_path):
        if not sys.stdin.isatty():
            raise click.UsageError("the key is encrypted: give --passphrase-file")
        passphrase = click.prompt("Key passphrase", hide_input=True).encode()
    key = load_private_key(key_path, passphrase=passphrase)
    chain = load_certificates(cert_path)  # the signer first, maybe its chain after it
    if chain_path:
        chain += load_certificates(chain_path)
    path = sign_package(
        pkg,
        out,
        key=key,
        cert_chain=chain,
        legacy_sha1=legacy_sha1,
        layout="kaios" if kaios_layout else "jar",
    )
    if json_:
        print_json({"package": str(path), "signer": chain[0].subject.rfc4514_string()})
        return
    click.echo(f"signed {path} as {chain[0].subject.rfc4514_string()}")


# --- verify -------------------------------------------------------------------------------


@click.command("verify")
@click.argument("pkg", type=click.Path(dir_okay=False, exists=True))
@click.option(
    "--trust",
    "trust_dir",
    type=click.Path(file_okay=False, exists=True),
    default=None,
    help="Trust directory with signed/ and core/ (default: the home's).",
)
@click.option(
    "--legacy",
    is_flag=True,
    help="Accept SHA-1 digests and RSA keys under 2048 bits (KaiOS 2.5 packages).",
)
@click.option("--json", "json_", is_flag=True, help="Machine-readable output.")
def verify_cmd(pkg: str, trust_dir: str | None, legacy: bool, json_: bool) -> int:
    """Verify a package's signature and print the class it proves.

    Exit 0 valid, 1 invalid, 2 usage error (an unreadable trust store included).
    JSON: {"valid", "class", "signer": {"subject", "fingerprint"} | null, "error"}.
    """
    from kaisec.errors import ConfigError, KaisecError
    from kaisec.home import resolve_home
    from kaisec.package import verify_package

    st = state(json_)
    # No Home.ensure(): verifying writes nothing, not even an empty home.
    trust: str | os.PathLike[str] = trust_dir or resolve_home(st.home_arg).trust_dir
    try:
        result = verify_package(pkg, trust=trust, legacy=legacy)
    except ConfigError as exc:
        _print_verify(
            {"valid": False, "class": None, "signer": None, "error": exc.to_dict()}, json_
        )
        return 2
    except KaisecError as exc:
        _print_verify(
            {"valid": False, "class": None, "signer": None, "error": exc.to_dict()}, json_
        )
        return 1
    out = result.to_dict()
    if json_:
        print_json(out)
    else:
        version = f" {result.manifest.version}" if result.manifest.version else ""
        click.echo(
            f"valid: {result.app_class.value} app {result.manifest.name!r}{version}, signed by "
            f"{result.signer_subject} (sha256 {result.signer_fingerprint})"
        )
    return 0


def _print_verify(out: dict[str, Any], json_: bool) -> None:
    if json_:
        print_json(out)
        return
    error = out["error"]
    click.echo(f"invalid: {error['code']}: {error['message']}", err=True)


def register(group: click.Group) -> None:
    """Add this module's commands to the ``kaisec`` group."""
    group.add_command(keys_group)
    group.add_command(trust_group)
    group.add_command(pack_cmd)
    group.add_command(sign_cmd)
    group.add_command(verify_cmd)
