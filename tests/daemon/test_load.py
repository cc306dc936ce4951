"""Load and faults against a daemon in its own process: many sessions, no wrong decision."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kaisec.client import Client, PermissionDenied
from kaisec.home import Home
from kaisec.keys import DevPki
from kaisec.manager import PermissionManager
from kaisec.types import Action

from ..install.conftest import Builder, WebServer
from .conftest import free_port, install_demo_apps, run

SESSIONS = 64
CALLS = 2_000


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def daemon_process(
    tmp_path: Path, build: Builder, pki: DevPki, web: WebServer
) -> Iterator[tuple[Home, int, subprocess.Popen[bytes], str]]:
    home = Home(tmp_path / "home").ensure()
    install_demo_apps(home, build, pki, web)
    mgr = PermissionManager.open(home)
    mgr.set("http://contacts.localhost", "camera", Action.ALLOW)
    mgr.close()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kaisec", "--home", str(home.root), "serve", "--port", str(port),
         "--prompt-timeout", "20"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(
                f"http://127.0.0.1:{port}/", headers={"Host": f"localhost:{port}"}, trust_env=False
            )
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("daemon did not start") from None
            time.sleep(0.1)
    try:
        yield home, port, proc, web.base
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


# (app or origin key, service, method, params, expected): expected is "ok" or the denied permission
MIX = [
    ("contacts", "contacts", "find", {}, "ok"),
    ("contacts", "camera", "takePicture", {"width": 8, "height": 8}, "ok"),
    ("contacts", "telephony", "calls", {}, "telephony"),
    ("contacts", "settings", "list", {}, "settings:read"),
    ("gallery", "contacts", "find", {}, "contacts:read"),
    ("dialer", "telephony", "calls", {}, "ok"),
    ("dialer", "contacts", "add", {"contact": {"name": "x"}}, "contacts:create"),
    ("pwa", "telephony", "dial", {"number": "112"}, "telephony"),
    ("pwa", "geolocation", "getCurrentPosition", {}, "prompted"),
]


async def _load(port: int, pwa_origin: str, sessions: int, calls: int) -> dict[str, int]:
    stats = {"ok": 0, "denied": 0, "prompted": 0, "wrong": 0, "errors": 0}
    system = await Client.connect(port=port, app="system")
    await system.permissions.watch()
    stop = asyncio.Event()

    async def answer_prompts() -> None:
        while not stop.is_set():
            try:
                event = await asyncio.wait_for(system.events.get(), 0.2)
            except TimeoutError:
                continue
            if event.get("event") == "prompt":
                await system.permissions.answer(
                    id=event["data"]["id"], action="allow", remember=False
                )

    async def worker(index: int) -> None:
        rng = random.Random(index)
        kind = ["contacts", "gallery", "dialer", "pwa"][index % 4]
        api = await (Client.connect(port=port, origin=pwa_origin) if kind == "pwa"
                     else Client.connect(port=port, app=kind))  # fmt: skip
        mine = [m for m in MIX if m[0] == kind]
        try:
            for _ in range(calls):
                _, service, method, params, expected = rng.choice(mine)
                try:
                    await api.call(service, method, params)
                    got = "prompted" if expected == "prompted" else "ok"
                    stats["prompted" if expected == "prompted" else "ok"] += 1
                except PermissionDenied as exc:
                    got = exc.permission or "?"
                    stats["denied"] += 1
                if got != expected:
                    stats["wrong"] += 1
        except Exception:
            stats["errors"] += 1
            raise
        finally:
            await api.close()

    answering = asyncio.get_running_loop().create_task(answer_prompts())
    try:
        await asyncio.gather(*(worker(i) for i in range(sessions)))
    finally:
        stop.set()
        await answering
        await system.close()
    return stats


@pytest.mark.slow
def test_many_sessions_no_wrong_decision(
    daemon_process: tuple[Home, int, subprocess.Popen[bytes], str],
) -> None:
    _home, port, proc, pwa = daemon_process
    run(_load(port, pwa, 8, 100))  # warm up
    before = rss_kib(proc.pid)
    stats = run(_load(port, pwa, SESSIONS, CALLS))
    after = rss_kib(proc.pid)
    assert stats["wrong"] == 0 and stats["errors"] == 0, stats
    assert stats["ok"] + stats["denied"] + stats["prompted"] == SESSIONS * CALLS
    assert stats["prompted"] > 1000 and stats["denied"] > 10_000
    stats2 = run(_load(port, pwa, SESSIONS, CALLS // 4))
    assert stats2["wrong"] == 0
    final = rss_kib(proc.pid)
    # memory stays flat: a second round does not grow the daemon
    assert final < after * 1.15 + 8 * 1024, (before, after, final)
    assert proc.poll() is None


def test_idle_half_open_connections(
    daemon_process: tuple[Home, int, subprocess.Popen[bytes], str],
) -> None:
    _home, port, proc, _pwa = daemon_process
    idle = []
    for _ in range(200):  # half-written HTTP requests, never finished
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /index.html HTTP/1.1\r\nHost: contacts.localhost:%d\r\n" % port)
        idle.append(s)

    async def still_serving() -> None:
        async with await Client.connect(port=port, app="contacts") as api:
            assert await api.contacts.find() == []

    run(still_serving())
    r = httpx.get(
        f"http://127.0.0.1:{port}/index.html",
        headers={"Host": f"contacts.localhost:{port}"},
        trust_env=False,
    )
    assert r.status_code == 200
    for s in idle:
        s.close()
    assert proc.poll() is None
    assert os.path.exists(f"/proc/{proc.pid}")
