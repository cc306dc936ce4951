"""First start of a development device: keys, trust, preloaded apps, the OEM policy.

On a development device the OEM key is made here, at first start
(``<home>/dev-keys/``, EC P-256, owner-only files); a real device gets its
roots from ``kaisec trust add`` and its apps signed elsewhere. Then:

- the store and OEM roots are trusted;
- ``policy.toml`` names the system app (``permissions``, ``webapps-manage``)
  and the dialer (``telephony``) by origin AND the OEM signer's fingerprint;
  those three permissions are restricted to the apps it names;
- the bundled apps (``kaisec/apps/``) are packed, signed and installed: the
  system app and the dialer with the OEM key (core), the contacts app with
  the store key (signed); the system app preloaded and non-removable.

Everything is idempotent: a second start changes nothing. The hosted
weather PWA is served by :func:`weather_app` on its own origin and installed
from its manifest URL once that server runs.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from kaisec.errors import AppNotFoundError
from kaisec.home import Home

__all__ = ["BUNDLED", "Provisioned", "provision", "weather_app"]

log = logging.getLogger(__name__)

#: bundled app -> (signer, preloaded)
BUNDLED = {"system": ("oem", True), "dialer": ("oem", False), "contacts": ("store", False)}
RESTRICTED = ("telephony", "permissions", "webapps-manage")


@dataclass(frozen=True)
class Provisioned:
    """What :func:`provision` did."""

    keys_dir: Path
    installed: tuple[str, ...]
    oem_fingerprint: str


def bundled_source(name: str) -> Traversable:
    """The folder of a bundled app's sources."""
    return resources.files("kaisec").joinpath("apps", name)


def _copy_tree(src: Traversable, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        if item.is_dir():
            _copy_tree(item, dest / item.name)
        elif item.is_file():
            (dest / item.name).write_bytes(item.read_bytes())


def _policy_text(oem_fingerprint: str) -> str:
    return (
        "# written at first start of a development device (kaisec.provision)\n"
        f"restricted = {list(RESTRICTED)!r}\n".replace("'", '"')
        + "\n[[app]]\n"
        'origin = "http://system.localhost"\n'
        f'signer = "{oem_fingerprint}"\n'
        'grant = ["permissions", "webapps-manage"]\n'
        "\n[[app]]\n"
        'origin = "http://dialer.localhost"\n'
        f'signer = "{oem_fingerprint}"\n'
        'grant = ["telephony"]\n'
    )


def provision(home: Home) -> Provisioned:
    """Make ``home`` a working development device (idempotent).

    Raises:
        KaisecError: a bundled app fails to pack, sign or install (a bug).
    """
    from kaisec.installer import Installer
    from kaisec.keys import init_dev_pki, load_certificates, load_private_key
    from kaisec.package import pack, sign_package
    from kaisec.registry import find_app
    from kaisec.trust import TrustStore
    from kaisec.types import AppClass

    home.ensure()
    keys = home.root / "dev-keys"
    if not (keys / "oem-signer.pem").exists():
        log.warning("development device: making OEM and store keys in %s", keys)
        init_dev_pki(keys, key_type="ec")
    trust = TrustStore.load(home.trust_dir)
    trust.add(keys / "store-root.pem", AppClass.SIGNED)
    trust.add(keys / "oem-root.pem", AppClass.CORE)
    oem_cert = load_certificates(keys / "oem-signer.pem")
    from cryptography.hazmat.primitives import hashes

    oem_fp = oem_cert[0].fingerprint(hashes.SHA256()).hex()
    if not home.policy_path.exists():
        home.policy_path.write_text(_policy_text(oem_fp))
    installed: list[str] = []
    with Installer(home) as inst:
        for name, (signer, preloaded) in BUNDLED.items():
            try:
                find_app(inst.store, name)
                continue
            except AppNotFoundError:
                pass
            with tempfile.TemporaryDirectory(prefix="kaisec-provision-") as tmp:
                src = Path(tmp) / name
                _copy_tree(bundled_source(name), src)
                unsigned = Path(tmp) / f"{name}.zip"
                pack(src, unsigned)
                signed = Path(tmp) / f"{name}-signed.zip"
                sign_package(
                    unsigned,
                    signed,
                    key=load_private_key(keys / f"{signer}-signer.key"),
                    cert_chain=load_certificates(keys / f"{signer}-signer.pem"),
                )
                inst.install(signed, preloaded=preloaded)
            installed.append(name)
    return Provisioned(keys, tuple(installed), oem_fp)


def weather_app(*, daemon_port: int) -> object:
    """The hosted weather PWA's own web server (a Starlette app), for ``make run`` and tests.

    It serves ``kaisec/apps/weather`` with the web-app manifest MIME type, and
    points its pages at the daemon's shared origin for the JS client.
    """
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from kaisec.daemon.appserver import content_type

    root = bundled_source("weather")
    js = f"http://shared.localhost:{daemon_port}/kaisec.js"

    async def files(request: Request) -> Response:
        name = request.path_params["path"] or "index.html"
        if "/" in name or name.startswith("."):
            return Response("not found", status_code=404)
        item = root.joinpath(name)
        if not item.is_file():
            return Response("not found", status_code=404)
        body = item.read_bytes()
        if name.endswith(".html"):
            body = body.replace(b"{{KAISEC_JS}}", js.encode())
        return Response(body, media_type=content_type(name))

    return Starlette(routes=[Route("/{path:path}", files)])
