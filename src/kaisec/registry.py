"""The app registry: one row per installed app, in the store's database.

An app is known by its UUID (the seed's identifier), its unique name (the
host label of its ``http://<name>.localhost`` origin for packaged apps) and
its origin; :func:`find_app` accepts any of the three.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kaisec.errors import AppNotFoundError
from kaisec.store import Store, Txn
from kaisec.types import AppClass

__all__ = ["AppRecord", "add_app", "find_app", "list_apps", "remove_app", "update_app"]

_COLS = (
    "id, name, origin, class, version, manifest, manifest_url, signer, signer_subject, source,"
    " state, removable, package_digest, installed_at, updated_at"
)


@dataclass(frozen=True)
class AppRecord:
    """What the registry knows of one app."""

    id: str
    name: str
    origin: str
    app_class: AppClass
    manifest: Mapping[str, Any]
    version: str | None = None
    manifest_url: str | None = None
    signer: str | None = None
    signer_subject: str | None = None
    source: str = "library"
    state: str = "installed"
    removable: bool = True
    package_digest: str | None = None
    installed_at: float = 0.0
    updated_at: float = 0.0

    @property
    def display_name(self) -> str:
        """The name a person knows the app by (the manifest's), else its host label."""
        name = self.manifest.get("name")
        return name if isinstance(name, str) and name else self.name

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape used by ``apps --json`` and ``install --json``."""
        return {
            "id": self.id,
            "name": self.display_name,
            "origin": self.origin,
            "class": self.app_class.value,
            "version": self.version,
            "signer": self.signer,
            "signer_subject": self.signer_subject,
            "source": self.source,
            "state": self.state,
            "removable": self.removable,
        }


def _record(r: tuple[Any, ...]) -> AppRecord:
    manifest = json.loads(r[5])
    return AppRecord(
        id=r[0],
        name=r[1],
        origin=r[2],
        app_class=AppClass(r[3]),
        version=r[4],
        manifest=manifest,
        manifest_url=r[6],
        signer=r[7],
        signer_subject=r[8],
        source=r[9],
        state=r[10],
        removable=bool(r[11]),
        package_digest=r[12],
        installed_at=r[13],
        updated_at=r[14],
    )


def _values(rec: AppRecord, now: float) -> tuple[Any, ...]:
    return (
        rec.id,
        rec.name,
        rec.origin,
        rec.app_class.value,
        rec.version,
        json.dumps(dict(rec.manifest), sort_keys=True, separators=(",", ":")),
        rec.manifest_url,
        rec.signer,
        rec.signer_subject,
        rec.source,
        rec.state,
        int(rec.removable),
        rec.package_digest,
        rec.installed_at or now,
        now,
    )


def add_app(txn: Txn, rec: AppRecord) -> None:
    """Insert a registry row (fails on a duplicate id, name or origin)."""
    txn.execute(f"INSERT INTO apps ({_COLS}) VALUES ({', '.join('?' * 15)})", _values(rec, txn.now))


def update_app(txn: Txn, rec: AppRecord) -> None:
    """Replace the row of ``rec.id``."""
    vals = _values(rec, txn.now)
    txn.execute(
        "UPDATE apps SET name=?, origin=?, class=?, version=?, manifest=?, manifest_url=?,"
        " signer=?, signer_subject=?, source=?, state=?, removable=?, package_digest=?,"
        " updated_at=? WHERE id=?",
        (*vals[1:13], vals[14], rec.id),
    )


def remove_app(txn: Txn, app_id: str) -> None:
    txn.execute("DELETE FROM apps WHERE id = ?", (app_id,))


def find_app(store: Store | Txn, key: str) -> AppRecord:
    """The app whose id, name or origin is ``key``.

    Raises:
        AppNotFoundError: no such app.
    """
    sql = f"SELECT {_COLS} FROM apps WHERE id = ? OR name = ? OR origin = ? LIMIT 1"
    params = (key, key, key.rstrip("/"))
    if isinstance(store, Txn):
        rows = store.conn.execute(sql, params).fetchall()
    else:
        rows = store.read(sql, params)
    if not rows:
        raise AppNotFoundError(f"no installed app is called {key!r}", app=key)
    return _record(rows[0])


def list_apps(store: Store) -> list[AppRecord]:
    """Every registered app, by name."""
    return [_record(r) for r in store.read(f"SELECT {_COLS} FROM apps ORDER BY name")]
