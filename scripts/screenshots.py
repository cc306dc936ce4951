"""Screenshots of the bundled apps for the docs (docs/screenshots/*.png).

Provisions a demo phone in a temporary home (the bundled apps, the weather
PWA on its own server, the daemon, all on free loopback ports), puts a few
contacts and a call on it, raises a permission prompt, and saves the system
app's views, the dialer, the contacts app and the weather PWA as 360x640 PNGs.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Needs Debian's Chromium at /usr/bin/chromium and the playwright package (no
downloaded browser).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from kaisec.daemon import DaemonConfig, create_app
from kaisec.daemon.app import ws_implementation
from kaisec.home import Home
from kaisec.installer import Installer
from kaisec.manager import PermissionManager
from kaisec.provision import provision, weather_app
from kaisec.types import Action

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 360, "height": 640}
MAX_BYTES = 150 * 1024
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(app: Any, port: int, **extra: Any) -> uvicorn.Server:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **extra)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the server on port {port} did not start")
        time.sleep(0.02)
    return server


def seed(home: Home, runtime: Any) -> None:
    """Contacts (one with a photo), answers a user gave, a call in the log."""
    contacts = "http://contacts.localhost"
    device = runtime.device
    png = device.camera.take_picture(width=96, height=96)
    device.storage.add("pictures", "ada.png", png, owner=contacts, mime="image/png")
    device.contacts.add(
        {"name": "Ada Lovelace", "numbers": ["+44 20 7946 0018"], "photo": "pictures:ada.png"}
    )
    device.contacts.add({"name": "Grace Hopper", "numbers": ["555 0100"]})
    device.contacts.add({"name": "Alan Turing", "numbers": ["555 0142"]})
    mgr = PermissionManager.open(home)
    try:
        mgr.set(contacts, "camera", Action.ALLOW)
        mgr.set(contacts, "device-storage:pictures:create", Action.ALLOW)
        mgr.set(contacts, "device-storage:pictures:read", Action.ALLOW)
    finally:
        mgr.close()


def shoot(page: Any, out: Path, name: str) -> Path:
    path = out / f"{name}.png"
    page.screenshot(path=str(path))
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise SystemExit(f"{path} is {size} bytes (over {MAX_BYTES})")
    print(f"  {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}  {size // 1024} KB")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    from playwright.sync_api import expect, sync_playwright

    with tempfile.TemporaryDirectory(prefix="kaisec-shots-") as tmp:
        home = Home(Path(tmp) / "home").ensure()
        provision(home)
        port, wport = free_port(), free_port()
        weather = serve(weather_app(daemon_port=port), wport, lifespan="off")
        weather_origin = f"http://127.0.0.1:{wport}"
        with Installer(home) as inst:
            inst.install(f"{weather_origin}/manifest.webmanifest")
        config = DaemonConfig(port=port)
        daemon = serve(
            create_app(home, config), port, ws=ws_implementation(), ws_max_size=config.max_message
        )
        runtime = daemon.config.app.state.runtime
        seed(home, runtime)
        url = f"http://{{}}.localhost:{port}/"
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
                )

                def page_for(address: str) -> Any:
                    page = browser.new_context(viewport=VIEWPORT).new_page()
                    page.goto(address)
                    return page

                system = page_for(url.format("system"))
                expect(system.locator("body")).to_have_attribute("data-watching", "true")

                # the dialer: a call under way, with the contact's name
                dialer = page_for(url.format("dialer"))
                expect(dialer.locator("body")).to_have_attribute("data-connected", "true")
                for key in "5550100":
                    dialer.click(f"#keypad button[data-key='{key}']")
                expect(dialer.locator("#contact-name")).to_have_text("Grace Hopper")
                dialer.click("#call")
                expect(dialer.locator("#call-state")).to_have_attribute("data-state", "connected")
                dialer.locator("body").click(position={"x": 5, "y": 5})
                shoot(dialer, out, "dialer")

                # contacts, with a photo
                contacts = page_for(url.format("contacts"))
                expect(contacts.locator("#contact-list li img.photo")).to_have_count(1)
                shoot(contacts, out, "contacts")

                # the weather PWA asks for the position: the prompt
                weather_page = page_for(f"{weather_origin}/")
                weather_page.click("#here")
                prompt = system.locator("#prompt-list article.prompt")
                expect(prompt).to_have_count(1)
                expect(weather_page.locator("#status")).to_contain_text("Asking")
                shoot(weather_page, out, "weather-asking")
                system.wait_for_timeout(1200)  # the countdown moves
                shoot(system, out, "system-prompt")
                prompt.locator("button[data-answer='once']").click()
                expect(weather_page.locator("#forecast")).to_be_visible()
                weather_page.locator("#here").blur()
                shoot(weather_page, out, "weather")

                # a premium-rate call: confirmed every time, never remembered
                dialer.click("#hangup")
                dialer.fill("#number", "9001234")
                dialer.click("#call")
                expect(prompt).to_have_count(1)
                system.wait_for_timeout(300)
                shoot(system, out, "system-prompt-premium")
                prompt.locator("button[data-answer='deny']").click()
                expect(dialer.locator("#status")).to_contain_text("telephony")

                system.click("#tab-apps")
                expect(system.locator("#app-list li")).to_have_count(4)
                system.wait_for_timeout(800)  # the last answer's message fades in the docs
                system.locator("#message").evaluate("n => { n.hidden = true; }")
                shoot(system, out, "system-apps")

                system.locator(
                    "#app-list li[data-name='Contacts'] button[data-act='permissions']"
                ).click()
                expect(system.locator("#perm-explicit li")).to_have_count(3)
                shoot(system, out, "system-permissions")

                system.click("#tab-audit")
                expect(system.locator("#audit-list li").first).to_be_visible()
                shoot(system, out, "system-audit")

                system.click("#tab-settings")
                expect(system.locator("#dev-state")).to_have_text("off")
                shoot(system, out, "system-settings")

                system.click("#tab-permissions")
                system.select_option("#perm-app", label="Contacts")
                expect(system.locator("#perm-explicit li")).to_have_count(3)
                pins = PermissionManager.open(home)
                try:
                    pins.pins.set("1234")
                finally:
                    pins.close()
                system.locator(
                    "#perm-explicit li[data-permission='device-storage:pictures:read'] "
                    "button[data-action='deny']"
                ).click()
                system.locator(
                    "#perm-explicit li[data-permission='device-storage:pictures:read'] "
                    "button[data-action='allow']"
                ).click()
                expect(system.locator("#pin-dialog")).to_be_visible()
                shoot(system, out, "system-pin")
                browser.close()
        finally:
            daemon.should_exit = True
            weather.should_exit = True
            time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
