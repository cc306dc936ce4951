"""A real daemon on loopback with real apps installed, and real WebSocket clients."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from kaisec.daemon import DaemonConfig, create_app
from kaisec.daemon.app import uvicorn_options
from kaisec.home import Home
from kaisec.installer import Installer
from kaisec.keys import DevPki, load_certificates
from kaisec.registry import AppRecord
from kaisec.trust import TrustStore
from kaisec.types import AppClass

from ..install.conftest import Builder, WebServer, build, manifest_doc, pki, pki_b, web  # noqa: F401 - fixtures


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Daemon:
    home: Home
    port: int
    apps: dict[str, AppRecord]
    server: uvicorn.Server
    thread: threading.Thread
    config: DaemonConfig
    extra: dict[str, Any] = field(default_factory=dict)

    def url(self, host: str, path: str = "/") -> str:
        return f"http://{host}:{self.port}{path}"


def start_daemon(home: Home, config: DaemonConfig) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(home, config),
            **(uvicorn_options(config) | {"host": "127.0.0.1", "lifespan": "on"}),
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the daemon did not start")
        time.sleep(0.02)
    return server, thread


def stop_daemon(server: uvicorn.Server, thread: threading.Thread) -> None:
    server.should_exit = True
    thread.join(15)


def install_demo_apps(
    home: Home, build: Builder, pki: DevPki, web: WebServer
) -> dict[str, AppRecord]:
    TrustStore.load(home.trust_dir).add(pki.store_root, AppClass.SIGNED)
    TrustStore.load(home.trust_dir).add(pki.oem_root, AppClass.CORE)
    oem_fp = (
        load_certificates(pki.oem_signer_cert)[0]
        .fingerprint(
            __import__("cryptography.hazmat.primitives.hashes", fromlist=["SHA256"]).SHA256()
        )
        .hex()
    )
    (home.root / "policy.toml").write_text(
        'restricted = ["telephony", "permissions", "webapps-manage"]\n\n'
        f'[[app]]\norigin = "http://dialer.localhost"\nsigner = "{oem_fp}"\ngrant = ["telephony"]\n\n'
        f'[[app]]\norigin = "http://system.localhost"\nsigner = "{oem_fp}"\n'
        'grant = ["permissions", "webapps-manage"]\n'
    )
    perms = {
        "contacts": {"description": "your address book", "access": "readwrite"},
        "camera": {"description": "contact photos"},
        "geolocation": {"description": "where you met"},
        "device-storage:pictures": {"description": "photos", "access": "readcreate"},
        "settings": {"description": "greedy", "access": "readwrite"},
        "telephony": {"description": "call them"},
    }
    apps: dict[str, AppRecord] = {}
    with Installer(home) as inst:
        apps["contacts"] = inst.install(build(manifest_doc("Contacts", permissions=perms))).app
        apps["gallery"] = inst.install(build(manifest_doc("Gallery", permissions={
            "device-storage:pictures": {"description": "photos", "access": "readwrite"}}))).app  # fmt: skip
        dialer = manifest_doc("Dialer", core=True, origin="dialer", permissions={
            "telephony": {"description": "calls"}, "contacts": {"description": "names",
                                                                "access": "readonly"}})  # fmt: skip
        apps["dialer"] = inst.install(build(dialer, signer="oem")).app
        system = manifest_doc("System", core=True, origin="system", permissions={
            "permissions": {"description": "prompts"}, "webapps-manage": {"description": "apps"},
            "settings": {"description": "settings", "access": "readwrite"}})  # fmt: skip
        apps["system"] = inst.install(build(system, signer="oem"), preloaded=True).app
        doc = {"name": "Weather", "start_url": "/", "b2g_features": {"permissions": {
            "geolocation": {"description": "forecast"}, "telephony": {"description": "x"}}}}  # fmt: skip
        url = web.add("/manifest.webmanifest", json.dumps(doc).encode(),
                      content_type="application/manifest+json")  # fmt: skip
        apps["weather"] = inst.install(url).app
    return apps


@pytest.fixture
def daemon(tmp_path: Path, build: Builder, pki: DevPki, web: WebServer) -> Iterator[Daemon]:
    home = Home(tmp_path / "home").ensure()
    apps = install_demo_apps(home, build, pki, web)
    config = DaemonConfig(port=free_port(), prompt_timeout=2.0)
    server, thread = start_daemon(home, config)
    try:
        yield Daemon(home, config.port, apps, server, thread, config, {"web": web})
    finally:
        stop_daemon(server, thread)


def run(coro: Any) -> Any:
    """Run a coroutine on a fresh loop in its own thread (a Playwright test in the same
    worker may have left an event loop running in this one)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
