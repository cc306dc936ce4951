"""Fixtures for install tests: a development PKI, package builders, a trusted home."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from kaisec.home import Home
from kaisec.keys import DevPki, init_dev_pki, load_certificates, load_private_key
from kaisec.package import pack, sign_package
from kaisec.trust import TrustStore
from kaisec.types import AppClass


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return init_dev_pki(tmp_path_factory.mktemp("pki") / "keys", key_type="ec")


@pytest.fixture(scope="session")
def pki_b(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    """A second store signer under the same kind of root (for rotation and mismatch)."""
    return init_dev_pki(tmp_path_factory.mktemp("pki-b") / "keys", key_type="ec")


@pytest.fixture
def trusted_home(tmp_path: Path, pki: DevPki, pki_b: DevPki) -> Home:
    home = Home(tmp_path / "home").ensure()
    store = TrustStore.load(home.trust_dir)
    store.add(pki.store_root, AppClass.SIGNED)
    store.add(pki_b.store_root, AppClass.SIGNED)
    store.add(pki.oem_root, AppClass.CORE)
    return home


def manifest_doc(name: str = "Contacts", version: str = "1.0", **b2g: Any) -> dict[str, Any]:
    b2g.setdefault("permissions", {"contacts": {"description": "book", "access": "readwrite"},
                                   "camera": {"description": "photos"}})  # fmt: skip
    return {"name": name, "start_url": "/index.html", "b2g_features": {"version": version, **b2g}}


@dataclass
class Builder:
    tmp: Path
    pki: DevPki
    pki_b: DevPki
    count: int = 0

    def __call__(
        self,
        doc: dict[str, Any] | None = None,
        *,
        signer: str | None = "store",
        files: dict[str, bytes] | None = None,
        manifest_name: str = "manifest.webmanifest",
    ) -> Path:
        self.count += 1
        src = self.tmp / f"src{self.count}"
        src.mkdir()
        (src / manifest_name).write_text(json.dumps(doc or manifest_doc()))
        for name, data in (files or {"index.html": b"<html><script src=app.js></script>",
                                     "app.js": b"console.log(1)"}).items():  # fmt: skip
            path = src / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        out = self.tmp / f"pkg{self.count}.zip"
        pack(src, out)
        if signer is None:
            return out
        pki = {"store": self.pki, "oem": self.pki, "store_b": self.pki_b}[signer]
        key_path = pki.oem_signer_key if signer == "oem" else pki.store_signer_key
        cert_path = pki.oem_signer_cert if signer == "oem" else pki.store_signer_cert
        signed = self.tmp / f"pkg{self.count}-signed.zip"
        sign_package(
            out, signed, key=load_private_key(key_path), cert_chain=load_certificates(cert_path)
        )
        return signed


@pytest.fixture
def build(tmp_path: Path, pki: DevPki, pki_b: DevPki) -> Builder:
    work = tmp_path / "build"
    work.mkdir()
    return Builder(work, pki, pki_b)


def snapshot(home: Home) -> dict[str, Any]:
    """Everything in a home except the audit log: files by content, tables by rows."""
    files = {}
    for path in sorted(home.root.rglob("*")):
        rel = str(path.relative_to(home.root))
        if path.name.startswith("kaisec.db"):
            continue
        files[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    tables = {}
    if home.db_path.exists():
        with sqlite3.connect(home.db_path) as db:
            for table in ("apps", "permissions", "settings"):
                tables[table] = sorted(db.execute(f"SELECT * FROM {table}").fetchall())
    return {"files": files, "tables": tables}


class _Handler(SimpleHTTPRequestHandler):
    routes: ClassVar[dict[str, tuple[int, dict[str, str], bytes]]] = {}

    def do_GET(self) -> None:
        status, headers, body = self.routes.get(self.path, (404, {}, b"not found"))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class WebServer:
    base: str
    routes: dict[str, tuple[int, dict[str, str], bytes]]

    def add(self, path: str, body: bytes, *, content_type: str = "application/json",
            status: int = 200, headers: dict[str, str] | None = None) -> str:  # fmt: skip
        self.routes[path] = (status, {"Content-Type": content_type, **(headers or {})}, body)
        return self.base + path


@pytest.fixture
def web() -> Iterator[WebServer]:
    """A real HTTP server on loopback with programmable routes."""
    routes: ClassVar[dict[str, tuple[int, dict[str, str], bytes]]] = {}
    handler = type("H", (_Handler,), {"routes": routes})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield WebServer(f"http://127.0.0.1:{server.server_address[1]}", routes)
    finally:
        server.shutdown()
        server.server_close()


def copy_home(home: Home, dest: Path) -> Home:
    shutil.copytree(home.root, dest)
    return Home(dest)


_ = Callable
