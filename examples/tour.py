"""A short tour of kaisec's policy core (``make run`` until the daemon lands).

Registers three apps in a throw-away home (a core dialer named by the OEM
policy, a store-signed contacts app, a hosted weather PWA) and prints what
the permission manager answers for the seed's examples.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from pathlib import Path

from rich.console import Console
from rich.table import Table

from kaisec.home import Home
from kaisec.manager import PermissionManager
from kaisec.manifest import parse_manifest
from kaisec.registry import AppRecord
from kaisec.types import Action, AppClass

DIALER_SIGNER = "ab" * 32
APPS = [
    (
        "dialer",
        AppClass.CORE,
        DIALER_SIGNER,
        {"telephony": {"description": "place calls"}},
    ),
    (
        "contacts",
        AppClass.SIGNED,
        "cd" * 32,
        {
            "contacts": {"description": "your address book", "access": "readwrite"},
            "device-storage:pictures": {"description": "contact photos", "access": "readcreate"},
            "telephony": {"description": "call a contact"},
        },
    ),
    (
        "weather",
        AppClass.PWA,
        None,
        {
            "geolocation": {"description": "weather where you are"},
            "contacts": {"description": "greedy", "access": "readonly"},
        },
    ),
]
QUESTIONS = [
    "telephony",
    "contacts:read",
    "contacts:write",
    "device-storage:pictures:create",
    "geolocation",
    "settings:write",
]


def main() -> None:
    out = Console()
    with tempfile.TemporaryDirectory(prefix="kaisec-tour-") as tmp:
        home = Home(Path(tmp))
        (home.root / "policy.toml").write_text(
            'restricted = ["telephony"]\n\n[[app]]\norigin = "http://dialer.localhost"\n'
            f'signer = "{DIALER_SIGNER}"\ngrant = ["telephony"]\n'
        )
        mgr = PermissionManager.open(home)
        for name, cls, signer, perms in APPS:
            origin = (
                f"http://{name}.localhost" if cls is not AppClass.PWA else "https://weather.example"
            )
            doc = {"name": name.title(), "b2g_features": {"permissions": perms}}
            manifest = parse_manifest(json.dumps(doc).encode(), origin=origin)
            rec = AppRecord(
                id=str(uuid.uuid4()), name=name, origin=origin, app_class=cls,
                manifest=manifest.to_dict(), signer=signer,
            )  # fmt: skip
            mgr.register_app(rec, manifest)
        table = Table(title="What each app may do (allow / deny / prompt)")
        table.add_column("permission")
        for name, cls, _, _ in APPS:
            table.add_column(f"{name} [{cls.value}]")
        style = {Action.ALLOW: "green", Action.DENY: "red", Action.PROMPT: "yellow"}
        for perm in QUESTIONS:
            cells = []
            for name, cls, _, _ in APPS:
                origin = (
                    f"http://{name}.localhost"
                    if cls is not AppClass.PWA
                    else "https://weather.example"
                )
                action = mgr.check(origin, perm, use=False)
                cells.append(f"[{style[action]}]{action.value}[/]")
            table.add_row(perm, *cells)
        out.print(table)
        out.print(
            "The dialer holds telephony because the OEM policy names it (origin + signer);\n"
            "contacts asked for telephony too, but the table keeps it from signed apps;\n"
            "the weather PWA must ask before it learns where you are, and never gets contacts."
        )
        mgr.set("https://weather.example", "geolocation", Action.ALLOW, actor="tour")
        out.print(
            "After the user allows geolocation for weather:",
            mgr.check("https://weather.example", "geolocation").value,
        )
        mgr.close()
    out.print("\nNext: `kaisec --help`, `kaisec table telephony`, docs/cli.md.")


if __name__ == "__main__":
    main()
