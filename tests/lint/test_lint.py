"""``kaisec lint``: crafted bad apps, each problem found with its code, file and line.

Apps are built in each test from the literal texts below, so every expected
line number can be read off the fixture. Conventions: lines and columns are
1-based; ``file`` is the entry name inside the app.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kaisec._cli import cli, lint_cmds, main
from kaisec._internal.zipwrite import write_zip
from kaisec.lint import FINDING_CODES, Finding, LintReport, lint_app
from kaisec.lint._html import lint_html
from kaisec.lint._js import lint_js, tokenize
from kaisec.lint._manifest import lint_manifest
from kaisec.lint._model import LintContext
from kaisec.package import pack
from kaisec.types import AppClass

APPS = Path(__file__).resolve().parents[2] / "src" / "kaisec" / "apps"


@pytest.fixture(autouse=True, scope="module")
def _lint_registered() -> Iterator[None]:
    # Until ``_cli/__init__.py`` registers the command itself; harmless afterwards.
    if "lint" not in cli.commands:
        lint_cmds.register(cli)
    yield


# --- building apps ----------------------------------------------------------------------

MANIFEST = """\
{
  "name": "Sample",
  "start_url": "/index.html",
  "b2g_features": {
    "version": "1.0.0"
  }
}
"""

GOOD_HTML = """\
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ok</title>
<link rel="stylesheet" href="style.css"></head>
<body><p id="status">loading</p>
<script src="/.kaisec/kaisec.js"></script>
<script src="app.js"></script></body></html>
"""

GOOD_JS = """\
"use strict";
// eval("not code") and new Function("nor this") in a comment
const text = "eval(1); new Function('x'); setTimeout('y')";
const re = /eval\\(|setTimeout\\("/g;
const tpl = `eval(${text.length}) setInterval("z")`;
/* setTimeout("in a block comment", 1) */
setTimeout(() => document.getElementById("status").textContent = tpl, 10);
const half = text.length / 2 / 1; eval.length;
"""


def build(root: Path, files: dict[str, str | None]) -> Path:
    """An app folder: manifest.webmanifest (unless given), index.html, app.js, style.css."""
    base: dict[str, str | None] = {
        "manifest.webmanifest": MANIFEST,
        "index.html": GOOD_HTML,
        "app.js": GOOD_JS,
        "style.css": "p { color: #333 }\n",
    }
    base.update(files)
    root.mkdir(parents=True, exist_ok=True)
    for name, text in base.items():
        if text is None:
            continue
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text) if name.endswith(".js") else text)
    return root


def manifest(**b2g: object) -> str:
    """A pretty-printed manifest (2-space indent: one key per line)."""
    features: dict[str, object] = {"version": "1.0.0", **b2g}
    doc = {"name": "Sample", "start_url": "/index.html", "b2g_features": features}
    return json.dumps(doc, indent=2) + "\n"


def at(report: LintReport, code: str) -> set[tuple[str, int | None]]:
    return {(f.file, f.line) for f in report.findings if f.code == code}


def codes(report: LintReport) -> set[str]:
    return {f.code for f in report.findings}


# --- the crafted bad apps ------------------------------------------------------------------


@dataclass
class Case:
    files: dict[str, str | None]
    expect: list[tuple[str, str, int | None]]  # (code, file, line)
    target: AppClass | None = None
    absent: list[str] = field(default_factory=list)  # codes that must not appear


CASES: dict[str, Case] = {
    "inline-script": Case(
        {
            "index.html": (
                "<!doctype html>\n"
                "<title>x</title>\n"
                "<script>\n"
                "  start();\n"
                "</script>\n"
                '<script type="application/json">{"eval(": 1}</script>\n'
                '<script type="module">import "./app.js";</script>\n'
            )
        },
        [
            ("INLINE_SCRIPT", "index.html", 3),
            ("INLINE_SCRIPT", "index.html", 7),
        ],
        absent=["EVAL"],
    ),
    "inline-handler": Case(
        {
            "index.html": (
                "<!doctype html>\n"
                "<body>\n"
                "<button\n"
                '  type="button"\n'
                '  onclick="go()">Go</button>\n'
                "<img src=icon.svg onerror=alert(1)>\n"
            ),
            "icon.svg": "<svg/>",
        },
        [("INLINE_HANDLER", "index.html", 5), ("INLINE_HANDLER", "index.html", 6)],
    ),
    "javascript-url": Case(
        {
            "index.html": (
                "<!doctype html>\n"
                '<a href="javascript:void(0)">menu</a>\n'
                '<form action=" JavaScript:send()"></form>\n'
                '<iframe src="&#106;avascript:alert(1)"></iframe>\n'
                '<p title="javascript: is fine as text">ok</p>\n'
            )
        },
        [
            ("JAVASCRIPT_URL", "index.html", 2),
            ("JAVASCRIPT_URL", "index.html", 3),
            ("JAVASCRIPT_URL", "index.html", 4),
        ],
    ),
    "eval-and-function": Case(
        {
            "app.js": """\
            // eval(comment) is not code
            const s = "new Function('a')";
            const x = eval(s);
            const y = window.eval("1");
            const f = new Function("a", "return a");
            const g = Function("return 1")();
            obj.eval("a user method, not the global eval");
            """
        },
        [
            ("EVAL", "app.js", 3),
            ("EVAL", "app.js", 4),
            ("NEW_FUNCTION", "app.js", 5),
            ("NEW_FUNCTION", "app.js", 6),
        ],
    ),
    "string-timers": Case(
        {
            "js/timers.js": """\
            function tick() {}
            setTimeout("tick()", 100);
            setTimeout(tick, 100);
            setInterval(
              'tick()', 5);
            window.setTimeout(`tick()`, 1);
            """,
            "index.html": GOOD_HTML.replace("app.js", "js/timers.js"),
        },
        [
            ("STRING_TIMER", "js/timers.js", 2),
            ("STRING_TIMER", "js/timers.js", 4),
            ("STRING_TIMER", "js/timers.js", 6),
        ],
    ),
    "remote-scripts": Case(
        {
            "index.html": (
                "<!doctype html>\n"
                "<head>\n"
                '<script src="http://shared.localhost:8081/kaisec.js"></script>\n'
                '<script src="https://cdn.example.com/jquery.js"></script>\n'
                '<script src="//cdn.example.com/x.js"></script>\n'
                '<link rel="stylesheet" href="https://fonts.example.com/f.css">\n'
                '<script src="data:text/javascript,alert(1)"></script>\n'
                '<script type="module" src="main.mjs"></script>\n'
            ),
            "main.mjs": """\
            import { h } from "./local.mjs";
            import {
              render,
            } from "https://esm.example/preact";
            const lazy = import("https://esm.example/lazy.js");
            """,
            "local.mjs": "export const h = 1;\n",
        },
        [
            ("REMOTE_SCRIPT", "index.html", 4),
            ("REMOTE_SCRIPT", "index.html", 5),
            ("REMOTE_STYLE", "index.html", 6),
            ("BLOCKED_SCRIPT_URL", "index.html", 7),
            ("REMOTE_SCRIPT", "main.mjs", 4),
            ("REMOTE_SCRIPT", "main.mjs", 5),
        ],
    ),
    "plugins-base-meta": Case(
        {
            "index.html": (
                "<!doctype html>\n"
                '<base href="/app/">\n'
                '<meta http-equiv="Content-Security-Policy" content="default-src \'self\'">\n'
                '<object data="movie.swf"></object>\n'
                '<embed src="movie.swf">\n'
                "<applet code=Main></applet>\n"
            )
        },
        [
            ("BASE_TAG", "index.html", 2),
            ("META_CSP", "index.html", 3),
            ("PLUGIN", "index.html", 4),
            ("PLUGIN", "index.html", 5),
            ("PLUGIN", "index.html", 6),
        ],
    ),
    "core-inline-style": Case(
        {
            "manifest.webmanifest": manifest(core=True),
            "index.html": (
                "<!doctype html>\n"
                '<p style="color: red">red</p>\n'
                "<style>\n"
                "  p { margin: 0 }\n"
                "</style>\n"
            ),
        },
        [("INLINE_STYLE", "index.html", 2), ("INLINE_STYLE", "index.html", 3)],
    ),
    "permissions": Case(
        {
            "manifest.webmanifest": (
                "{\n"
                '  "name": "Perms",\n'
                '  "start_url": "/index.html",\n'
                '  "b2g_features": {\n'
                '    "permissions": {\n'
                '      "contacts": {"description": "your friends", "access": "readeverything"},\n'
                '      "settings": {\n'
                '        "description": "toggle things",\n'
                '        "access": "createonly"\n'
                "      },\n"
                '      "camera": {"access": null},\n'
                '      "contact": {"description": "typo"},\n'
                '      "telephony": {"description": "calls"},\n'
                '      "geolocation": {"description": "where"}\n'
                "    }\n"
                "  }\n"
                "}\n"
            )
        },
        [
            ("ACCESS_MODE", "manifest.webmanifest", 6),
            ("ACCESS_MODE", "manifest.webmanifest", 9),
            ("MISSING_DESCRIPTION", "manifest.webmanifest", 11),
            ("UNKNOWN_PERMISSION", "manifest.webmanifest", 12),
            ("PERMISSION_DENIED_FOR_CLASS", "manifest.webmanifest", 13),
            ("PERMISSION_PROMPT", "manifest.webmanifest", 14),
        ],
        absent=["MANIFEST"],  # each problem once, under its specific code
    ),
    "manifest-fields": Case(
        {
            "manifest.webmanifest": (
                "{\n"
                '  "name": 42,\n'
                '  "start_url": "https://elsewhere.example/",\n'
                '  "icons": [\n'
                '    {"src": "/icon.png"},\n'
                '    {"sizes": "any"}\n'
                "  ],\n"
                '  "b2g_features": {\n'
                '    "version": "one",\n'
                '    "core": "yes"\n'
                "  }\n"
                "}\n"
            )
        },
        [
            ("MANIFEST", "manifest.webmanifest", 2),
            ("MANIFEST", "manifest.webmanifest", 6),
            ("MANIFEST", "manifest.webmanifest", 10),
        ],
    ),
    "manifest-semantics": Case(
        {
            "manifest.webmanifest": (
                "{\n"
                '  "name": "Sem",\n'
                '  "start_url": "https://elsewhere.example/",\n'
                '  "b2g_features": {\n'
                '    "version": "one",\n'
                '    "type": "superuser"\n'
                "  }\n"
                "}\n"
            )
        },
        [
            ("MANIFEST", "manifest.webmanifest", 3),
            ("MANIFEST", "manifest.webmanifest", 5),
            ("MANIFEST", "manifest.webmanifest", 6),
        ],
    ),
    "manifest-json": Case(
        {"manifest.webmanifest": ('{\n  "name": "Broken",\n  "start_url": "/index.html",\n}\n')},
        [("MANIFEST", "manifest.webmanifest", 4)],
    ),
    "manifest-duplicate-key": Case(
        {
            "manifest.webmanifest": (
                "{\n"
                '  "name": "Dup",\n'
                '  "b2g_features": {"core": false},\n'
                '  "start_url": "/index.html",\n'
                '  "b2g_features": {"core": true}\n'
                "}\n"
            )
        },
        [("MANIFEST", "manifest.webmanifest", 5)],
    ),
    "csp-loosening": Case(
        {"manifest.webmanifest": manifest(csp="script-src 'self' 'unsafe-eval' https:")},
        [("CSP_UNSAFE", "manifest.webmanifest", 6)],
    ),
    "missing-files": Case(
        {
            "manifest.webmanifest": (
                "{\n"
                '  "name": "Files",\n'
                '  "start_url": "/main.html",\n'
                '  "icons": [{"src": "/icons/app.png", "sizes": "56x56"}],\n'
                '  "b2g_features": {}\n'
                "}\n"
            ),
            "index.html": (
                "<!doctype html>\n"
                '<script src="/.kaisec/kaisec.js"></script>\n'
                '<script src="js/missing.js"></script>\n'
                '<link rel="stylesheet" href="../css/gone.css">\n'
                '<script src="app.js?v=2#x"></script>\n'
            ),
        },
        [
            ("MISSING_FILE", "manifest.webmanifest", 3),
            ("MISSING_FILE", "manifest.webmanifest", 4),
            ("MISSING_FILE", "index.html", 3),
            ("MISSING_FILE", "index.html", 4),
        ],
    ),
    "srcdoc-and-svg": Case(
        {
            "index.html": (
                "<!doctype html>\n"
                "<p>frame:</p>\n"
                "<iframe\n"
                "  srcdoc=\"<script>alert('in srcdoc')</script>\"></iframe>\n"
                "<svg><script>alert('svg')</script>\n"
                "<foreignObject><p onclick=x>html again</p></foreignObject></svg>\n"
                "<noscript><script>not run: scripting is on</script></noscript>\n"
                "<textarea><script>only text</script></textarea>\n"
            )
        },
        [
            ("INLINE_SCRIPT", "index.html", 4),
            ("INLINE_SCRIPT", "index.html", 5),
            ("INLINE_HANDLER", "index.html", 6),
        ],
    ),
    "wasm-and-worker": Case(
        {
            "app.js": """\
            const mod = await WebAssembly.instantiateStreaming(fetch("m.wasm"));
            importScripts("https://cdn.example.com/worker-lib.js", "local.js");
            """
        },
        [("WASM", "app.js", 1), ("REMOTE_SCRIPT", "app.js", 2)],
    ),
    "class-mismatch": Case(
        {"manifest.webmanifest": manifest(core=True)},
        [("CLASS_MISMATCH", "manifest.webmanifest", 6)],
        target=AppClass.SIGNED,
    ),
    "legacy-webapp": Case(
        {
            "manifest.webmanifest": None,
            "manifest.webapp": (
                "{\n"
                '  "name": "Old",\n'
                '  "launch_path": "/index.html",\n'
                '  "type": "web",\n'
                '  "permissions": {\n'
                '    "contacts": {"description": "friends", "access": "readonly"}\n'
                "  }\n"
                "}\n"
            ),
        },
        [("PERMISSION_DENIED_FOR_CLASS", "manifest.webapp", 6)],
    ),
    "everything-at-once": Case(
        {
            "manifest.webmanifest": (
                "{\n"
                '  "name": "Bad",\n'
                '  "start_url": "/index.html",\n'
                '  "b2g_features": {\n'
                '    "permissions": {\n'
                '      "contacts": {"description": "friends", "access": "readall"},\n'
                '      "telephony": {"description": "calls"}\n'
                "    },\n"
                "    \"csp\": \"script-src 'self' 'unsafe-inline'\"\n"
                "  }\n"
                "}\n"
            ),
            "index.html": (
                "<!doctype html>\n"
                '<script src="https://code.jquery.com/jquery.js"></script>\n'
                '<button onclick="go()">Go</button>\n'
                "<script>eval(location.hash)</script>\n"
            ),
        },
        [
            ("ACCESS_MODE", "manifest.webmanifest", 6),
            ("PERMISSION_DENIED_FOR_CLASS", "manifest.webmanifest", 7),
            ("CSP_UNSAFE", "manifest.webmanifest", 9),
            ("REMOTE_SCRIPT", "index.html", 2),
            ("INLINE_HANDLER", "index.html", 3),
            ("INLINE_SCRIPT", "index.html", 4),
            ("EVAL", "index.html", 4),
        ],
    ),
    "no-manifest": Case(
        {"manifest.webmanifest": None},
        [("MISSING_MANIFEST", "manifest.webmanifest", None)],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_crafted_bad_app(tmp_path: Path, name: str) -> None:
    case = CASES[name]
    report = lint_app(build(tmp_path / name, case.files), target=case.target)
    found = {(f.code, f.file, f.line) for f in report.findings}
    for expected in case.expect:
        assert expected in found, (expected, sorted(found, key=str))
    for code in case.absent:
        assert code not in codes(report), [f for f in report.findings if f.code == code]
    if any(code not in _WARNING_CODES for code, _, _ in case.expect):
        assert not report.ok


_WARNING_CODES = {
    "META_CSP",
    "CSP_UNSAFE",
    "UNKNOWN_PERMISSION",
    "PERMISSION_DENIED_FOR_CLASS",
    "PERMISSION_PROMPT",
    "SKIPPED_FILE",
}


def test_there_are_at_least_twelve_crafted_apps() -> None:
    assert len(CASES) >= 12


# --- details of single checks ----------------------------------------------------------------


def test_good_app_has_no_findings(tmp_path: Path) -> None:
    report = lint_app(build(tmp_path / "good", {}))
    assert report.findings == ()
    assert report.ok and report.app_class is AppClass.SIGNED and report.class_source == "default"


@pytest.mark.parametrize("app", ["contacts", "dialer", "system", "weather"])
def test_demo_apps_have_no_errors(app: str) -> None:
    report = lint_app(APPS / app)
    assert report.errors == 0, [f for f in report.findings if f.severity == "error"]


def test_demo_system_app_is_checked_as_core() -> None:
    report = lint_app(APPS / "system")
    assert (report.app_class, report.class_source) == (AppClass.CORE, "manifest")


def test_inline_style_is_fine_below_core(tmp_path: Path) -> None:
    files = CASES["core-inline-style"].files | {"manifest.webmanifest": MANIFEST}
    report = lint_app(build(tmp_path / "app", files))
    assert "INLINE_STYLE" not in codes(report)
    report = lint_app(build(tmp_path / "app", files), target=AppClass.CORE)
    assert at(report, "INLINE_STYLE") == {("index.html", 2), ("index.html", 3)}


def test_manifest_csp_without_unsafe_inline_blocks_inline_style(tmp_path: Path) -> None:
    files = CASES["core-inline-style"].files | {
        "manifest.webmanifest": manifest(csp="style-src 'self'")
    }
    report = lint_app(build(tmp_path / "app", files))
    assert report.app_class is AppClass.SIGNED
    assert at(report, "INLINE_STYLE") == {("index.html", 2), ("index.html", 3)}
    assert (
        "the manifest's csp" in next(f for f in report.findings if f.code == "INLINE_STYLE").message
    )


def test_columns_and_inline_script_positions(tmp_path: Path) -> None:
    html = '<!doctype html>\n<p>x</p><script>let a = 1; eval("a");\n  new Function("b");</script>\n'
    report = lint_app(build(tmp_path / "app", {"index.html": html}))
    by_code = {f.code: f for f in report.findings}
    assert (by_code["INLINE_SCRIPT"].line, by_code["INLINE_SCRIPT"].column) == (2, 9)
    assert (by_code["EVAL"].line, by_code["EVAL"].column) == (2, 28)
    assert (by_code["NEW_FUNCTION"].line, by_code["NEW_FUNCTION"].column) == (3, 7)


def test_crlf_and_non_ascii_do_not_shift_lines(tmp_path: Path) -> None:
    html = "<!doctype html>\r\n<p>héllo ☃ 😀</p>\r\n<p>\r\n<b onclick=x>b</b>\r\n"
    big = "<div>filler text ☃</div>\n" * 2000  # past html5lib's 10 KiB chunks
    report = lint_app(build(tmp_path / "app", {"index.html": big + html}))
    assert at(report, "INLINE_HANDLER") == {("index.html", 2004)}
    assert next(f for f in report.findings if f.code == "INLINE_HANDLER").column == 4


def test_js_tokenizer_skips_strings_comments_templates_and_regexes() -> None:
    toks = tokenize(GOOD_JS)
    idents = [t.value for t in toks if t.kind == "ident"]
    assert idents.count("eval") == 1  # only ``eval.length`` on the last line
    assert "Function" not in idents
    regexes = [t.value for t in toks if t.kind == "regex"]
    assert regexes == ['/eval\\(|setTimeout\\("/g']


@pytest.mark.parametrize(
    "source",
    [
        "const o = { eval: 1, Function: 2 };",
        "a.setTimeout('not the global one');",
        "function eval2() {} eval2('x');",
        "const t = `${ `nested ${'eval(1)'}` }`;",
        "x = y / 2; z = w / eval_;",
        "if (a) { b } /eval(/.test(c);",
        "const s = 'unterminated\nsetTimeout(fn, 1);",
    ],
)
def test_js_without_findings(tmp_path: Path, source: str) -> None:
    report = lint_app(build(tmp_path / "app", {"app.js": source + "\n"}))
    assert report.findings == (), report.findings


def test_hostile_js_is_linear(tmp_path: Path) -> None:
    # An unterminated regex on every "/" would make a naive scanner quadratic.
    import time

    source = "(/[" * 60_000 + "\n" + "import " * 30_000
    started = time.monotonic()
    lint_app(build(tmp_path / "app", {"app.js": source}))
    assert time.monotonic() - started < 5


def test_findings_are_sorted_and_manifest_first(tmp_path: Path) -> None:
    files = CASES["permissions"].files | CASES["inline-handler"].files
    report = lint_app(build(tmp_path / "app", files))
    assert report.findings[0].file == "manifest.webmanifest"
    keys = [(f.file != "manifest.webmanifest", f.file, f.line or 0) for f in report.findings]
    assert keys == sorted(keys)


def test_unknown_permission_hint_suggests_the_real_name(tmp_path: Path) -> None:
    report = lint_app(build(tmp_path / "app", CASES["permissions"].files))
    unknown = next(f for f in report.findings if f.code == "UNKNOWN_PERMISSION")
    assert "'contacts'" in unknown.hint
    denied = next(f for f in report.findings if f.code == "PERMISSION_DENIED_FOR_CLASS")
    assert "telephony" in denied.message and "core" in denied.hint


def test_class_from_the_manifest_and_from_the_option(tmp_path: Path) -> None:
    app = build(tmp_path / "app", {"manifest.webmanifest": manifest(type="web")})
    report = lint_app(app)
    assert (report.app_class, report.class_source) == (AppClass.PWA, "manifest")
    report = lint_app(app, target=AppClass.CORE)
    assert (report.app_class, report.class_source) == (AppClass.CORE, "option")


def test_unsafe_files_in_a_folder(tmp_path: Path) -> None:
    app = build(tmp_path / "app", {})
    (app / "link.js").symlink_to(app / "app.js")
    report = lint_app(app)
    assert at(report, "UNSAFE_PATH") == {("link.js", None)}
    assert not report.ok


def test_oversized_file_is_skipped_with_a_warning(tmp_path: Path) -> None:
    from kaisec.lint import LintLimits

    app = build(tmp_path / "app", {"big.js": "eval(1);\n" * 2000})
    report = lint_app(app, limits=LintLimits(max_file=1000))
    assert at(report, "SKIPPED_FILE") == {("big.js", None)}
    assert "EVAL" not in codes(report)


# --- packages --------------------------------------------------------------------------------


def test_packed_zip_gives_the_same_findings_as_the_folder(tmp_path: Path) -> None:
    files = CASES["inline-script"].files | CASES["eval-and-function"].files
    app = build(tmp_path / "app", files)
    pkg = pack(app, tmp_path / "app.zip")
    from_folder, from_zip = lint_app(app), lint_app(pkg)
    assert from_zip.findings == from_folder.findings
    assert ("INLINE_SCRIPT", "index.html", 3) in {
        (f.code, f.file, f.line) for f in from_zip.findings
    }
    assert from_zip.app == str(pkg)


def test_zip_of_a_bad_manifest(tmp_path: Path) -> None:
    # ``pack`` refuses an invalid manifest, so write the ZIP directly.
    text = CASES["manifest-fields"].files["manifest.webmanifest"]
    assert text is not None
    body = text.encode()
    pkg = tmp_path / "bad.zip"
    write_zip(pkg, [("manifest.webmanifest", body), ("index.html", GOOD_HTML.encode())])
    report = lint_app(pkg)
    assert ("manifest.webmanifest", 2) in at(report, "MANIFEST")


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"not a zip at all",
        b"PK\x05\x06" + b"\x00" * 18,  # an empty archive
        b"PK\x03\x04" + b"\xff" * 200,
    ],
)
def test_hostile_package_is_a_finding_not_a_crash(tmp_path: Path, blob: bytes) -> None:
    pkg = tmp_path / "evil.zip"
    pkg.write_bytes(blob)
    report = lint_app(pkg)
    assert not report.ok
    assert codes(report) & {"CORRUPT_PACKAGE", "MISSING_MANIFEST"}


def test_corrupt_entry_is_reported_with_its_name(tmp_path: Path) -> None:
    pkg = tmp_path / "app.zip"
    write_zip(
        pkg,
        [("manifest.webmanifest", MANIFEST.encode()), ("index.html", GOOD_HTML.encode() * 20)],
        compress=False,
    )
    data = bytearray(pkg.read_bytes())
    pos = data.index(b"<!doctype html>")  # flip a byte of stored content: the CRC fails
    data[pos + 2] ^= 0x20
    pkg.write_bytes(bytes(data))
    report = lint_app(pkg)
    assert ("index.html", None) in at(report, "CORRUPT_PACKAGE")


def test_missing_path_raises() -> None:
    with pytest.raises(FileNotFoundError):
        lint_app("/nonexistent/app")


# --- the command line --------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["lint", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_json_shape_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = build(tmp_path / "app", CASES["inline-handler"].files)
    code, out, _ = run(capsys, str(app), "--json")
    assert code == 1
    data = json.loads(out)
    assert set(data) == {"app", "name", "class", "class_source", "errors", "warnings", "findings"}
    assert (data["app"], data["name"], data["class"]) == (str(app), "Sample", "signed")
    assert data["errors"] == 2 and data["warnings"] == 0
    first = data["findings"][0]
    assert set(first) == {"severity", "code", "file", "line", "column", "message", "hint"}
    assert (first["code"], first["file"], first["line"], first["column"]) == (
        "INLINE_HANDLER",
        "index.html",
        5,
        3,
    )


def test_cli_warnings_do_not_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = build(tmp_path / "app", CASES["csp-loosening"].files)
    code, out, _ = run(capsys, str(app), "--json")
    assert code == 0
    assert json.loads(out)["warnings"] == 1


def test_cli_table_for_people(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = build(tmp_path / "app", CASES["plugins-base-meta"].files)
    code, out, _ = run(capsys, str(app), "--class", "core")
    assert code == 1
    assert "index.html:4:1" in out and "PLUGIN" in out and "hint:" in out
    assert "4 errors, 1 warning" in out and "core" in out and "--class" in out


def test_cli_clean_app(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(build(tmp_path / "app", {})))
    assert code == 0
    assert "ok: 0 errors, 0 warnings" in out and "checked as signed" in out


@pytest.mark.parametrize(
    "args",
    [["/nonexistent/app"], ["APP", "--class", "root"], [], ["APP", "--bogus"], ["/dev/null"]],
)
def test_cli_usage_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    app = str(build(tmp_path / "app", {}))
    code, _, _ = run(capsys, *[app if a == "APP" else a for a in args])
    assert code == 2


def test_finding_rejects_unknown_codes() -> None:
    with pytest.raises(ValueError):
        Finding("error", "NOT_A_CODE", "a", 1, 1, "m")
    with pytest.raises(ValueError):
        Finding("fatal", "EVAL", "a", 1, 1, "m")  # type: ignore[arg-type]


def test_every_code_is_documented() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "lint.md").read_text()
    for code in FINDING_CODES:
        assert f"`{code}`" in text, code


_PIECES = [
    *"<>/=\"' \n\r\t!-[]{}()`$\\&#;:aeiosvgc",
    *("<script>", "</script>", "<svg>", "<!--", "eval(", "${", "\x00", "😀"),
    *("<style>", 'srcdoc="', "<iframe ", "<noscript>", "javascript:", "on"),
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_PIECES), max_size=120).map("".join))
def test_checks_never_raise_on_any_text(text: str) -> None:
    ctx = LintContext(AppClass.CORE, frozenset({"a.js"}))
    for finding in lint_html(text, "x.html", ctx) + lint_js(text, "x.js", ctx):
        assert finding.line is None or finding.line >= 1
    lint_manifest("manifest.webmanifest", text.encode(), target=None, files=frozenset())
