"""Fixtures shared by the whole suite."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kaisec.home import Home
from kaisec.manager import PermissionManager
from kaisec.manifest import parse_manifest
from kaisec.registry import AppRecord
from kaisec.types import AppClass


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "home").ensure()


@pytest.fixture
def manager(home: Home) -> Iterator[PermissionManager]:
    mgr = PermissionManager.open(home)
    yield mgr
    mgr.close()


RegisterFn = Callable[..., AppRecord]


def make_manifest(perms: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": extra.pop("name", "App"), **extra}
    b2g: dict[str, Any] = doc.setdefault("b2g_features", {})
    if perms is not None:
        b2g["permissions"] = {
            name: ({"description": f"needs {name}"} | ({"access": spec} if spec else {}))
            if not isinstance(spec, dict)
            else spec
            for name, spec in perms.items()
        }
    return doc


@pytest.fixture
def register(manager: PermissionManager) -> RegisterFn:
    """register(name, cls, {"contacts": "readwrite", "geolocation": None}, signer=...)"""

    def _register(
        name: str,
        app_class: AppClass,
        perms: dict[str, Any] | None,
        *,
        signer: str | None = None,
        origin: str | None = None,
    ) -> AppRecord:
        origin = origin or f"http://{name}.localhost"
        manifest = parse_manifest(json.dumps(make_manifest(perms, name=name)).encode())
        rec = AppRecord(
            id=str(uuid.uuid4()),
            name=name,
            origin=origin,
            app_class=app_class,
            manifest=manifest.to_dict(),
            signer=signer,
        )
        manager.register_app(rec, manifest)
        return rec

    return _register
