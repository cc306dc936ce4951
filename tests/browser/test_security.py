"""What the browser and the daemon enforce together: CSP, origins, tokens, isolation.

The "gallery" test app (tests/browser/gallery/, signed by the store key:
class signed) plays the curious app: its page carries an inline script, an
inline event handler and a probe script that tries eval and records the
browser's own CSP violation reports into the DOM.
"""

from __future__ import annotations

import base64
import json
import re

from playwright.sync_api import expect

from kaisec.client import fetch_token
from kaisec.types import Action

from .conftest import Phone, run_async

CONTACTS = "http://contacts.localhost"
GALLERY = "http://gallery.localhost"

FETCH_TOKEN_JS = """async (url) => {
  try {
    const r = await fetch(url, {headers: {"X-Kaisec-Token-Request": "1"}, credentials: "omit"});
    return {status: r.status, body: await r.text()};
  } catch (e) {
    return {error: `${e.name}: ${e.message}`};
  }
}"""

SIMPLE_FETCH_JS = """async ([url, mode]) => {
  try {
    const r = await fetch(url, {mode, credentials: "include"});
    return {type: r.type, status: r.status, body: await r.text()};
  } catch (e) {
    return {error: `${e.name}: ${e.message}`};
  }
}"""

WEBSOCKET_JS = """([url, token]) => new Promise((resolve) => {
  const ws = new WebSocket(url);
  const timer = setTimeout(() => resolve({timeout: true}), 8000);
  ws.onopen = () => ws.send(JSON.stringify({token}));
  ws.onmessage = (e) => { clearTimeout(timer); resolve({message: JSON.parse(e.data)}); ws.close(); };
  ws.onclose = (e) => { clearTimeout(timer); resolve({code: e.code}); };
})"""


def test_a_signed_apps_inline_script_and_eval_are_blocked_by_the_csp(phone: Phone) -> None:
    page = phone.open(phone.url("gallery"))
    # the probe (an external script of the app's own origin) ran and tried eval
    expect(page.locator("#eval-result")).to_have_attribute("data-outcome", "EvalError")
    expect(page.locator("#function-result")).to_have_attribute("data-outcome", "EvalError")
    # the inline script did not run
    expect(page.locator("#inline-state")).to_have_text("inline script blocked")
    assert page.locator("html").get_attribute("data-inline") is None
    assert page.evaluate("() => window.inlineRan === undefined")
    # nor does an inline event handler
    page.click("#trap")
    violations = page.locator("#violations li")
    expect(violations).to_have_count(4)
    assert page.locator("html").get_attribute("data-handler") is None

    # the browser's own CSP violation reports, as the page saw them
    reports = {
        (li.get_attribute("data-directive"), li.get_attribute("data-blocked"))
        for li in violations.all()
    }
    assert reports == {
        ("script-src-elem", "inline"),
        ("script-src", "eval"),
        ("script-src-attr", "inline"),
    }
    # ... and Chromium's console errors about them (wording differs across versions:
    # "Refused to execute inline script because it violates" / "Executing inline script violates")
    csp_errors = [m for m in phone.console(page) if "Content Security Policy directive" in m]
    assert any(re.search(r"inline script (because it )?violates", m) for m in csp_errors)
    assert any(re.search(r"inline event handler (because it )?violates", m) for m in csp_errors)
    assert all(m.startswith("error:") and "script-src 'self'" in m for m in csp_errors)


def test_core_apps_get_no_inline_styles(phone: Phone) -> None:
    system = phone.open_system()
    # the system app itself works under that policy without a single violation
    assert not [m for m in phone.console(system) if "Content Security Policy" in m]
    result = system.evaluate(
        """async () => {
          const seen = [];
          document.addEventListener("securitypolicyviolation", (e) => seen.push(e.effectiveDirective));
          const style = document.createElement("style");
          style.textContent = "#conn { color: rgb(1, 2, 3) !important; }";
          document.head.append(style);
          const p = document.createElement("p");
          p.setAttribute("style", "color: rgb(4, 5, 6)");
          document.body.append(p);
          await new Promise((r) => setTimeout(r, 200));
          return {
            seen,
            conn: getComputedStyle(document.querySelector("#conn")).color,
            p: getComputedStyle(p).color,
          };
        }"""
    )
    assert sorted(result["seen"]) == ["style-src-attr", "style-src-elem"]
    assert result["conn"] != "rgb(1, 2, 3)"
    assert result["p"] != "rgb(4, 5, 6)"


def test_an_app_cannot_take_or_use_another_apps_token(phone: Phone) -> None:
    gallery = phone.open(phone.url("gallery"))
    # its own token: same origin, fine (the test can tell success from failure)
    own = gallery.evaluate(FETCH_TOKEN_JS, "/.kaisec/token")
    assert own["status"] == 200 and '"token"' in own["body"], own

    contacts_token_url = phone.url("contacts", "/.kaisec/token")
    stolen = gallery.evaluate(FETCH_TOKEN_JS, contacts_token_url)
    assert "error" in stolen and "Failed to fetch" in stolen["error"], stolen  # CORS preflight
    plain = gallery.evaluate(SIMPLE_FETCH_JS, [contacts_token_url, "cors"])
    assert "error" in plain, plain
    opaque = gallery.evaluate(SIMPLE_FETCH_JS, [contacts_token_url, "no-cors"])
    assert opaque == {"type": "opaque", "status": 0, "body": ""}, opaque

    # a contacts token obtained elsewhere is refused on the gallery's connection
    token = run_async(lambda: fetch_token(port=phone.port, app="contacts"))
    for host in ("gallery", "contacts"):
        closed = gallery.evaluate(
            WEBSOCKET_JS, [f"ws://{host}.localhost:{phone.port}/.kaisec/ws", token]
        )
        assert closed == {"code": 4401}, (host, closed)
    # while the gallery's own token opens a session
    mine = gallery.evaluate(FETCH_TOKEN_JS, "/.kaisec/token")
    own_token = json.loads(mine["body"])["token"]
    opened = gallery.evaluate(
        WEBSOCKET_JS, [f"ws://gallery.localhost:{phone.port}/.kaisec/ws", own_token]
    )
    assert opened["message"]["ready"] is True and opened["message"]["app"] == "gallery"


def test_a_pwa_cannot_open_telephony(phone: Phone) -> None:
    weather = phone.open_weather()
    result = weather.evaluate(
        """async () => {
          const api = await kaisec.connect();
          try {
            await api.telephony.dial({number: "5551234"});
            return {info: api.info, dialed: true};
          } catch (e) {
            return {info: api.info, name: e.name, permission: e.permission,
                    isPermissionError: e instanceof kaisec.PermissionError};
          }
        }"""
    )
    assert result["info"]["class"] == "pwa" and result["info"]["origin"] == phone.weather.origin
    assert result["name"] == "PermissionError" and result["isPermissionError"] is True
    assert result["permission"] == "telephony"
    assert phone.runtime.device.telephony.calls() == []


def test_a_site_that_is_not_installed_gets_nothing(phone: Phone, plain_site: str) -> None:
    page = phone.open(f"{plain_site}/")
    for url in (
        f"http://localhost:{phone.port}/.kaisec/token",
        phone.url("contacts", "/.kaisec/token"),
        phone.url("system", "/.kaisec/token"),
    ):
        result = page.evaluate(FETCH_TOKEN_JS, url)
        assert "error" in result, (url, result)
    closed = page.evaluate(
        WEBSOCKET_JS, [f"ws://localhost:{phone.port}/.kaisec/ws", "made-up-" + "0" * 40]
    )
    assert closed == {"code": 4401}
    # the JS client itself loads (the shared origin serves it to anyone) but cannot connect
    outcome = page.evaluate(
        """async (src) => {
          await new Promise((ok, fail) => {
            const s = document.createElement("script");
            s.src = src; s.onload = ok; s.onerror = fail;
            document.head.append(s);
          });
          try { await kaisec.connect({reconnect: false}); return "connected"; }
          catch (e) { return `refused: ${e.name}`; }
        }""",
        f"http://shared.localhost:{phone.port}/kaisec.js",
    )
    assert outcome.startswith("refused"), outcome
    # and the hosted PWA next door, which is installed, does connect
    weather = phone.open_weather()
    assert weather.evaluate("async () => (await kaisec.connect()).info.class") == "pwa"


def test_revoking_in_the_system_app_stops_the_next_call_of_an_open_app(phone: Phone) -> None:
    mgr = phone.manager()
    try:
        for perm in ("camera", "device-storage:pictures:create", "device-storage:pictures:read"):
            mgr.set(CONTACTS, perm, Action.ALLOW)
    finally:
        mgr.close()
    phone.runtime.device.contacts.add({"name": "Ada Lovelace"})
    contacts = phone.open_app("contacts")
    ada = contacts.locator("#contact-list li[data-name='Ada Lovelace']")
    ada.locator(".take-photo").click()
    expect(contacts.locator("#status")).to_have_text("Photo saved for Ada Lovelace.")

    system = phone.open_system()
    system.click("#tab-apps")
    system.locator("#app-list li[data-name='Contacts'] button[data-act='permissions']").click()
    row = system.locator("#perm-explicit li[data-permission='camera']")
    expect(row).to_have_attribute("data-action", "allow")
    expect(row.locator("button[data-action='allow']")).to_have_attribute("aria-checked", "true")
    # implicit permissions are shown, read-only, with why
    implicit = system.locator("#perm-implicit li[data-permission='contacts:read']")
    expect(implicit.locator(".perm-why")).to_have_text("granted to every signed app")
    expect(implicit.locator("button")).to_have_count(0)

    row.locator("button[data-action='deny']").click()
    expect(row).to_have_attribute("data-action", "deny")
    expect(system.locator("#message")).to_contain_text("camera is now deny")

    # the contacts page keeps its session; its next call fails
    contacts.locator("#contact-list li[data-name='Ada Lovelace'] .take-photo").click()
    expect(contacts.locator("#status")).to_have_text("Not allowed: camera.")
    assert system.locator("#prompt-list article").count() == 0  # denied, not asked


def test_apps_cannot_see_each_others_files_or_web_storage(phone: Phone) -> None:
    mgr = phone.manager()
    try:
        for origin in (CONTACTS, GALLERY):
            for perm in ("device-storage:pictures:create", "device-storage:pictures:read"):
                mgr.set(origin, perm, Action.ALLOW)
    finally:
        mgr.close()
    contacts = phone.open_app("contacts")
    gallery = phone.open(phone.url("gallery"), beside=contacts)  # one browser profile
    secret = base64.b64encode(b"\x89PNG contacts' secret").decode()

    mine = contacts.evaluate(
        """async (data) => {
          const api = await kaisec.connect();
          await api.storage.add({area: "pictures", name: "secret.png", data, type: "image/png"});
          localStorage.setItem("secret", "contacts only");
          await new Promise((ok, fail) => {
            const req = indexedDB.open("contacts-db", 1);
            req.onupgradeneeded = () => req.result.createObjectStore("kv");
            req.onsuccess = () => {
              const tx = req.result.transaction("kv", "readwrite");
              tx.objectStore("kv").put("contacts only", "secret");
              tx.oncomplete = () => { req.result.close(); ok(); };
            };
            req.onerror = () => fail(req.error);
          });
          return {
            files: (await api.storage.list({area: "pictures"})).map((f) => f.name),
            local: localStorage.getItem("secret"),
            dbs: (await indexedDB.databases()).map((d) => d.name),
          };
        }""",
        secret,
    )
    assert mine == {"files": ["secret.png"], "local": "contacts only", "dbs": ["contacts-db"]}

    theirs = gallery.evaluate(
        """async () => {
          const api = await kaisec.connect();
          const before = (await api.storage.list({area: "pictures"})).map((f) => f.name);
          let get;
          try { await api.storage.get({area: "pictures", name: "secret.png"}); get = "read it"; }
          catch (e) { get = `${e.code}:${e.reason}`; }
          await api.storage.add({area: "pictures", name: "mine.png", data: "AAAA", type: "image/png"});
          return {
            before,
            get,
            after: (await api.storage.list({area: "pictures"})).map((f) => f.name),
            local: localStorage.getItem("secret"),
            localKeys: localStorage.length,
            dbs: (await indexedDB.databases()).map((d) => d.name),
          };
        }"""
    )
    assert theirs == {
        "before": [],
        "get": "DEVICE_ERROR:NOT_FOUND",
        "after": ["mine.png"],
        "local": None,
        "localKeys": 0,
        "dbs": [],
    }
    storage = phone.runtime.device.storage
    assert [f.name for f in storage.list("pictures", owner=CONTACTS)] == ["secret.png"]
    assert [f.name for f in storage.list("pictures", owner=GALLERY)] == ["mine.png"]
