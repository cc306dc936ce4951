"""Real-browser tests: Debian's Chromium, headless, driven by Playwright, against a real daemon.

Each test gets a fresh development phone: a provisioned home (the bundled
system, dialer and contacts apps, signed with that home's own dev keys), the
weather PWA's own web server (installed from its manifest URL), a test app
("gallery", signed by the store key, with CSP and isolation probes) and the
daemon, all on free loopback ports; the browser (one per session) gets a new
context per test. Chromium resolves ``*.localhost`` to loopback itself.

On failure every open page is saved as ``test-artifacts/<test>-<n>.png``,
with its console messages beside it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from kaisec.daemon import DaemonConfig
from kaisec.home import Home
from kaisec.installer import Installer
from kaisec.keys import load_certificates, load_private_key
from kaisec.manager import PermissionManager
from kaisec.package import pack, sign_package
from kaisec.provision import bundled_source, provision, weather_app

from ..daemon.conftest import free_port, start_daemon, stop_daemon

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
GALLERY_SRC = Path(__file__).resolve().parent / "gallery"
VIEWPORT = {"width": 360, "height": 720}
TIMEOUT_MS = 10_000


# --- the browser (one per session) ---------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Chromium under Playwright; a missing browser or package FAILS (never skips)."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's chromium "
            "(apt-get install chromium)",
            pytrace=False,
        )
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError as exc:
        pytest.fail(
            f"the playwright package is missing ({exc}): pip install -e '.[dev]'", pytrace=False
        )
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as pw:
        try:
            chromium = pw.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
        except Exception as exc:
            pytest.fail(f"cannot launch {CHROMIUM}: {exc}", pytrace=False)
        yield chromium
        chromium.close()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "daemon(**settings): DaemonConfig settings for the phone fixture's daemon"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the test item, for the screenshot-on-failure teardown."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)


# --- helpers ---------------------------------------------------------------------------------


def run_async(factory: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run a coroutine on a thread of its own (Playwright's sync API owns this thread's loop)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result(timeout=30)


class ServerThread:
    """An ASGI app under uvicorn, on a thread, on a free loopback port."""

    def __init__(self, app: Any, port: int) -> None:
        self.port = port
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class WeatherSite:
    """The weather PWA's server; ``version`` (when set) is served as its manifest's version."""

    def __init__(self, daemon_port: int) -> None:
        self.version: str | None = None
        self.inner: Any = weather_app(daemon_port=daemon_port)
        self.port = free_port()
        self.thread = ServerThread(self, self.port)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def manifest_url(self) -> str:
        return f"{self.origin}/manifest.webmanifest"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/manifest.webmanifest" and self.version:
            from starlette.responses import Response

            doc = json.loads(bundled_source("weather").joinpath("manifest.webmanifest").read_text())
            doc["b2g_features"]["version"] = self.version
            await Response(json.dumps(doc), media_type="application/manifest+json")(
                scope, receive, send
            )
            return
        await self.inner(scope, receive, send)


class _PlainPage(BaseHTTPRequestHandler):
    body = (
        b"<!doctype html><html><head><meta charset='utf-8'><title>Some site</title></head>"
        b"<body><h1>A site that is not installed</h1></body></html>"
    )

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def plain_site() -> Iterator[str]:
    """A web site on another local port that nobody installed."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _PlainPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def install_gallery(home: Home, tmp: Path) -> None:
    """Pack the test app, sign it with the home's store key (class signed), install it."""
    keys = home.root / "dev-keys"
    unsigned = pack(GALLERY_SRC, tmp / "gallery.zip")
    signed = sign_package(
        unsigned,
        tmp / "gallery-signed.zip",
        key=load_private_key(keys / "store-signer.key"),
        cert_chain=load_certificates(keys / "store-signer.pem"),
    )
    with Installer(home) as inst:
        inst.install(signed)


# --- the phone -------------------------------------------------------------------------------


@dataclass
class Phone:
    """A provisioned home, its daemon, the weather PWA's server and a browser context."""

    home: Home
    config: DaemonConfig
    weather: WeatherSite
    browser: Any
    daemon: Any = None
    contexts: list[Any] = field(default_factory=list)
    consoles: dict[int, list[str]] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return self.config.port

    def url(self, app: str, path: str = "/") -> str:
        return f"http://{app}.localhost:{self.port}{path}"

    @property
    def runtime(self) -> Any:
        """The running daemon's Runtime (the simulated device, the prompt broker...)."""
        return self.daemon[0].config.app.state.runtime

    def start(self) -> None:
        self.daemon = start_daemon(self.home, self.config)

    def stop(self) -> None:
        if self.daemon is not None:
            stop_daemon(*self.daemon)
            self.daemon = None

    def restart(self) -> None:
        """Stop the daemon and start it again on the same home and port."""
        self.stop()
        deadline = time.monotonic() + 10
        while True:
            try:
                self.start()
                return
            except (RuntimeError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def open(self, url: str, *, beside: Any = None) -> Any:
        """A page showing ``url``, in a browser context of its own (``beside``: in that page's).

        Each page gets its own context, so that every page is a foreground tab
        (a background tab's animation frames stall Playwright's clicks); the
        origins keep apps apart either way, which the isolation tests check
        with pages side by side in one context.
        """
        if beside is not None:
            context = beside.context
        else:
            context = self.browser.new_context(viewport=VIEWPORT)
            context.set_default_timeout(TIMEOUT_MS)
            self.contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        log = self.consoles.setdefault(id(page), [])
        page.on("console", lambda msg: log.append(f"{msg.type}: {msg.text}"))
        page.on("pageerror", lambda exc: log.append(f"pageerror: {exc}"))
        page.goto(url)
        return page

    def console(self, page: Any) -> list[str]:
        return self.consoles.get(id(page), [])

    def assert_clean_consoles(self) -> None:
        """No page saw a CSP violation or an uncaught error (the apps live within their CSP)."""
        for page in self.pages:
            bad = [
                m
                for m in self.console(page)
                if "Content Security Policy" in m or m.startswith("pageerror:")
            ]
            assert not bad, (page.url, bad)

    @property
    def pages(self) -> list[Any]:
        return [page for context in self.contexts for page in context.pages]

    def open_app(self, app: str, *, beside: Any = None) -> Any:
        """A packaged app's page, once its session is up."""
        page = self.open(self.url(app), beside=beside)
        page.wait_for_selector("body[data-connected='true']")
        return page

    def open_system(self) -> Any:
        """The system app, once it watches for prompts."""
        page = self.open(self.url("system"))
        page.wait_for_selector("body[data-watching='true']")
        return page

    def open_weather(self) -> Any:
        return self.open(f"{self.weather.origin}/")

    def manager(self) -> PermissionManager:
        """A permission manager on the phone's home (another process's view; close it)."""
        return PermissionManager.open(self.home)


def _save_artifacts(name: str, phone: Phone) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:120]
    for n, page in enumerate(phone.pages):
        try:
            page.screenshot(path=str(ARTIFACTS / f"{safe}-{n}.png"), full_page=True, timeout=5000)
        except Exception as exc:  # a crashed page must not hide the test's own failure
            print(f"screenshot of page {n} failed: {exc}")
        (ARTIFACTS / f"{safe}-{n}.log").write_text(
            f"{page.url}\n" + "\n".join(phone.console(page)) + "\n"
        )


@pytest.fixture
def phone(browser: Any, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Phone]:
    home = Home(tmp_path / "home").ensure()
    provision(home)
    install_gallery(home, tmp_path)
    marker = request.node.get_closest_marker("daemon")
    config = DaemonConfig(port=free_port(), **(marker.kwargs if marker else {}))
    weather = WeatherSite(config.port)
    with Installer(home) as inst:
        inst.install(weather.manifest_url)
    ph = Phone(home, config, weather, browser)
    ph.start()
    try:
        yield ph
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            _save_artifacts(request.node.name, ph)
        for context in ph.contexts:
            context.close()
        ph.stop()
        weather.thread.stop()
