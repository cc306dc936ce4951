"""The bundled apps' sources keep to what their CSP allows (no browser needed)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from kaisec.provision import bundled_source

APPS = ("system", "dialer", "contacts", "weather")


class _Scan(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str | None] = []
        self.inline_code: list[str] = []
        self.handlers: list[str] = []
        self.style_attrs: list[str] = []
        self.style_elements = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        self.handlers += [f"{tag}.{k}" for k, _ in attrs if k.startswith("on")]
        self.style_attrs += [tag for k, _ in attrs if k == "style"]
        if tag == "style":
            self.style_elements += 1
        if tag == "script":
            self.scripts.append(names.get("src"))
            self._in_script = True
        if tag == "a" and (names.get("href") or "").lower().startswith("javascript:"):
            self.handlers.append("a.href=javascript:")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_code.append(data.strip())


def _read(app: str, name: str) -> str:
    return bundled_source(app).joinpath(name).read_text(encoding="utf-8")


@pytest.mark.parametrize("app", APPS)
def test_pages_have_no_inline_script_and_load_the_client_first(app: str) -> None:
    scan = _Scan()
    scan.feed(_read(app, "index.html"))
    assert scan.inline_code == []
    assert scan.handlers == []
    client = "{{KAISEC_JS}}" if app == "weather" else "/.kaisec/kaisec.js"
    assert scan.scripts == [client, "app.js"]
    manifest = json.loads(_read(app, "manifest.webmanifest"))
    if manifest["b2g_features"].get("core"):
        # core apps: style-src without 'unsafe-inline'
        assert scan.style_attrs == [] and scan.style_elements == 0


@pytest.mark.parametrize("app", APPS)
def test_scripts_use_no_eval_and_build_no_html_from_strings(app: str) -> None:
    code = _read(app, "app.js")
    code = re.sub(r"/\*.*?\*/", "", code, flags=re.S)  # comments may name what is banned
    for banned in (
        r"\beval\s*\(",
        r"\bnew\s+Function\b",
        r"\bsetTimeout\s*\(\s*['\"`]",
        r"\.innerHTML\b",
        r"\.outerHTML\b",
        r"insertAdjacentHTML",
        r"document\.write",
        r"setAttribute\(\s*['\"]style",
        r"\.style\.",
    ):
        assert not re.search(banned, code), (app, banned)


def test_bundled_apps_ship_only_their_five_files() -> None:
    for app in APPS:
        names = {p.name for p in Path(str(bundled_source(app))).iterdir()}
        assert names == {"index.html", "app.js", "style.css", "icon.svg", "manifest.webmanifest"}
