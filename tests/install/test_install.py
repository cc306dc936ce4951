"""Install, update, uninstall end to end through the command line."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from kaisec._cli import main
from kaisec.home import Home
from kaisec.keys import DevPki, load_certificates, load_private_key
from kaisec.rotation import make_rotation

from ..signing.conftest import custom_signed
from .conftest import Builder, WebServer, manifest_doc, snapshot


def cli(home: Home, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    code = main(["--home", str(home.root), *args])
    out = capsys.readouterr().out
    try:
        return code, json.loads(out)
    except json.JSONDecodeError:
        return code, out


def refused(home: Home, capsys: pytest.CaptureFixture[str], code: str, *args: str) -> None:
    """The command is refused with ``code`` and the home is unchanged but for the audit log."""
    before = snapshot(home)
    rc, out = cli(home, capsys, *args, "--json")
    assert rc == 1, out
    assert out["error"]["code"] == code, out
    assert snapshot(home) == before


@pytest.fixture
def home(trusted_home: Home, capsys: pytest.CaptureFixture[str]) -> Home:
    cli(trusted_home, capsys, "apps", "--json")  # initialise the home's database
    return trusted_home


def test_install_signed(home: Home, build: Builder, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = cli(home, capsys, "install", str(build()), "--json")
    assert rc == 0 and out["installed"] is True and out["error"] is None
    app = out["app"]
    assert app["class"] == "signed" and app["origin"] == "http://contacts.localhost"
    assert app["name"] == "Contacts" and app["version"] == "1.0"
    _, perms = cli(home, capsys, "perms", "contacts", "--json")
    assert perms["permissions"]["contacts:write"] == "allow"
    assert perms["permissions"]["camera"] == "prompt"
    package = list((home.apps_dir / app["id"]).iterdir())
    assert len(package) == 1 and package[0].suffix == ".zip"
    rc, doctor = cli(home, capsys, "doctor", "--json")
    assert rc == 0 and doctor["ok"] and doctor["checked_packages"] == 1


def test_install_core(home: Home, build: Builder, capsys: pytest.CaptureFixture[str]) -> None:
    doc = manifest_doc("Dialer", core=True, permissions={"telephony": {"description": "calls"}})
    rc, out = cli(home, capsys, "install", str(build(doc, signer="oem")), "--json")
    assert rc == 0 and out["app"]["class"] == "core"
    # an OEM-signed app that does not ask for core is a signed app
    rc, out = cli(home, capsys, "install", str(build(manifest_doc("Tool"), signer="oem")), "--json")
    assert rc == 0 and out["app"]["class"] == "signed"


def test_store_signed_asking_core_is_refused(
    home: Home, build: Builder, capsys: pytest.CaptureFixture[str]
) -> None:
    refused(home, capsys, "INVALID_SECURITY_LEVEL", "install", str(build(manifest_doc(core=True))))


def test_unsigned_needs_developer_mode(
    home: Home, build: Builder, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = str(build(signer=None))
    refused(home, capsys, "NOT_SIGNED", "install", pkg)
    monkeypatch.delenv("KAISEC_PIN", raising=False)
    assert cli(home, capsys, "pin", "set", "--new", "2580")[0] == 0
    assert cli(home, capsys, "config", "set", "developer-mode", "on")[0] == 1  # needs the PIN
    assert cli(home, capsys, "config", "set", "developer-mode", "on", "--pin", "2580")[0] == 0
    rc, out = cli(home, capsys, "install", pkg, "--json")
    assert rc == 0 and out["app"]["class"] == "pwa"  # packaging brings no trust
    _, perms = cli(home, capsys, "perms", out["app"]["id"], "--json")
    assert perms["permissions"]["contacts:read"] == "deny"
    # an unsigned package asking core is refused even in developer mode
    refused(home, capsys, "INVALID_SECURITY_LEVEL", "install",
            str(build(manifest_doc("X", core=True), signer=None)))  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda d: d["b2g_features"].update(origin="Bad Name"), "INVALID_ORIGIN"),
        (lambda d: d["b2g_features"].update(origin="system"), "INVALID_ORIGIN"),
        (lambda d: d.update(start_url="https://evil.example/"), "INVALID_ORIGIN"),
        (lambda d: d["b2g_features"]["permissions"]["contacts"].pop("access"), "INVALID_MANIFEST"),
    ],
)
def test_bad_packaged_manifests(
    home: Home, build: Builder, capsys: pytest.CaptureFixture[str], mutate: Any, code: str
) -> None:
    doc = manifest_doc()
    mutate(doc)
    # kaisec's own signer validates the manifest first, so sign these by hand
    files = {"manifest.webmanifest": json.dumps(doc).encode(), "index.html": b"x"}
    signer = SimpleNamespace(
        key=load_private_key(build.pki.store_signer_key),
        chain=load_certificates(build.pki.store_signer_cert),
    )
    pkg = build.tmp / "hand-signed.zip"
    pkg.write_bytes(custom_signed(files, signer=signer))  # type: ignore[arg-type]
    refused(home, capsys, code, "install", str(pkg))


def test_duplicate_origin(home: Home, build: Builder, capsys: pytest.CaptureFixture[str]) -> None:
    doc = manifest_doc(origin="book")
    assert (
        cli(home, capsys, "install", str(build(doc)), "--json")[1]["app"]["origin"]
        == "http://book.localhost"
    )
    refused(
        home,
        capsys,
        "DUPLICATE_ORIGIN",
        "install",
        str(build(manifest_doc("Other", origin="book"))),
    )
    # without a requested origin, names are made unique instead
    rc, out = cli(home, capsys, "install", str(build(manifest_doc("Book"))), "--json")
    assert rc == 0 and out["app"]["origin"] == "http://book-2.localhost"


def test_hosted_app(home: Home, web: WebServer, capsys: pytest.CaptureFixture[str]) -> None:
    doc = {"name": "Weather", "start_url": "/app/", "scope": "/app/",
           "b2g_features": {"permissions": {"geolocation": {"description": "forecast"}}}}  # fmt: skip
    url = web.add("/app/manifest.webmanifest", json.dumps(doc).encode(),
                  content_type="application/manifest+json; charset=utf-8")  # fmt: skip
    rc, out = cli(home, capsys, "install", url, "--json")
    assert rc == 0 and out["app"]["class"] == "pwa" and out["app"]["origin"] == web.base
    assert not any(home.apps_dir.glob(f"{out['app']['id']}*"))  # only the manifest is kept
    _, perms = cli(home, capsys, "perms", web.base, "--json")
    assert perms["permissions"]["geolocation"] == "prompt"
    refused(home, capsys, "DUPLICATE_ORIGIN", "install", url)


@pytest.mark.parametrize(
    ("doc", "content_type", "code"),
    [
        ({"name": "W"}, "application/json", "MANIFEST_MIME_TYPE"),
        ({"name": "W"}, "text/html", "MANIFEST_MIME_TYPE"),
        (
            {"name": "W", "start_url": "https://evil.example/"},
            "application/manifest+json",
            "INVALID_ORIGIN",
        ),
        (
            {"name": "W", "scope": "http://127.0.0.2/"},
            "application/manifest+json",
            "INVALID_ORIGIN",
        ),
        (
            {"name": "W", "b2g_features": {"core": True}},
            "application/x-web-app-manifest+json",
            "INVALID_SECURITY_LEVEL",
        ),
        (
            {"name": "W", "b2g_features": {"type": "privileged"}},
            "application/manifest+json",
            "INVALID_SECURITY_LEVEL",
        ),
        ({"start_url": "/"}, "application/manifest+json", "INVALID_MANIFEST"),
    ],
)
def test_bad_hosted_apps(
    home: Home,
    web: WebServer,
    capsys: pytest.CaptureFixture[str],
    doc: dict,
    content_type: str,
    code: str,
) -> None:
    url = web.add("/m.webmanifest", json.dumps(doc).encode(), content_type=content_type)
    refused(home, capsys, code, "install", url)


def test_hosted_redirects_stay_on_origin(
    home: Home, web: WebServer, capsys: pytest.CaptureFixture[str]
) -> None:
    web.add("/away", b"", status=302, headers={"Location": "http://localhost:1/m"})
    refused(home, capsys, "INVALID_ORIGIN", "install", web.base + "/away")
    web.add("/m2", json.dumps({"name": "R"}).encode(), content_type="application/manifest+json")
    web.add("/here", b"", status=301, headers={"Location": "/m2"})
    rc, out = cli(home, capsys, "install", web.base + "/here", "--json")
    assert rc == 0 and out["app"]["origin"] == web.base
    refused(home, capsys, "DOWNLOAD_FAILED", "install", web.base + "/missing")


def test_store_update_manifest(
    home: Home, web: WebServer, build: Builder, capsys: pytest.CaptureFixture[str]
) -> None:
    pkg = build(manifest_doc("Notes", developer={"name": "Dev", "url": "https://dev.example"}))
    web.add("/notes.zip", pkg.read_bytes(), content_type="application/zip")
    mini = {"name": "Notes", "version": "1.0", "package_path": "/notes.zip",
            "size": pkg.stat().st_size, "developer": {"name": "Dev", "url": "https://dev.example"}}  # fmt: skip
    url = web.add("/notes.webapp", json.dumps(mini).encode(),
                  content_type="application/x-web-app-manifest+json")  # fmt: skip
    rc, out = cli(home, capsys, "install", url, "--json")
    assert rc == 0 and out["app"]["class"] == "signed" and out["app"]["name"] == "Notes"
    lie = dict(mini, name="Notes Pro")
    url = web.add("/lie.webapp", json.dumps(lie).encode(), content_type="application/manifest+json")
    refused(home, capsys, "INVALID_MANIFEST", "install", url)
    short = dict(mini, size=10)
    url = web.add(
        "/short.webapp", json.dumps(short).encode(), content_type="application/manifest+json"
    )
    refused(home, capsys, "PACKAGE_TOO_LARGE", "install", url)


def test_update_rules(
    home: Home,
    build: Builder,
    pki: DevPki,
    pki_b: DevPki,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    rc, out = cli(home, capsys, "install", str(build()), "--json")
    app_id = out["app"]["id"]
    cli(home, capsys, "perms", "set", "contacts", "camera", "deny")
    refused(home, capsys, "SIGNER_MISMATCH", "update", "contacts",
            str(build(manifest_doc(version="1.1"), signer="store_b")))  # fmt: skip
    refused(
        home,
        capsys,
        "VERSION_DOWNGRADE",
        "update",
        "contacts",
        str(build(manifest_doc(version="0.9"))),
    )
    refused(
        home,
        capsys,
        "VERSION_DOWNGRADE",
        "update",
        "contacts",
        str(build(manifest_doc(version="1.0"))),
    )
    refused(home, capsys, "INVALID_ORIGIN", "update", "contacts",
            str(build(manifest_doc(version="2.0", origin="elsewhere"))))  # fmt: skip
    rc, out = cli(
        home, capsys, "update", "contacts", str(build(manifest_doc(version="1.1"))), "--json"
    )
    assert rc == 0 and out["app"]["version"] == "1.1" and out["app"]["id"] == app_id
    _, perms = cli(home, capsys, "perms", "contacts", "--json")
    assert perms["permissions"]["camera"] == "deny"  # the user's answer survives the update
    assert len(list((home.apps_dir / app_id).iterdir())) == 1  # the old package is gone
    # key rotation: the installed signer names its successor
    rotation = tmp_path / "rotation.json"
    rotation.write_bytes(make_rotation(
        app_origin="http://contacts.localhost", old_key=load_private_key(pki.store_signer_key),
        old_cert=load_certificates(pki.store_signer_cert)[0],
        new_cert=load_certificates(pki_b.store_signer_cert)[0]))  # fmt: skip
    new = str(build(manifest_doc(version="1.2"), signer="store_b"))
    wrong_app = tmp_path / "wrong.json"
    wrong_app.write_bytes(make_rotation(
        app_origin="http://other.localhost", old_key=load_private_key(pki.store_signer_key),
        old_cert=load_certificates(pki.store_signer_cert)[0],
        new_cert=load_certificates(pki_b.store_signer_cert)[0]))  # fmt: skip
    refused(
        home, capsys, "SIGNER_MISMATCH", "update", "contacts", new, "--rotation", str(wrong_app)
    )
    forged = tmp_path / "forged.json"  # signed by the new key itself: worthless
    forged.write_bytes(make_rotation(
        app_origin="http://contacts.localhost", old_key=load_private_key(pki_b.store_signer_key),
        old_cert=load_certificates(pki_b.store_signer_cert)[0],
        new_cert=load_certificates(pki_b.store_signer_cert)[0]))  # fmt: skip
    refused(home, capsys, "SIGNER_MISMATCH", "update", "contacts", new, "--rotation", str(forged))
    rc, out = cli(home, capsys, "update", "contacts", new, "--rotation", str(rotation), "--json")
    assert rc == 0 and out["app"]["version"] == "1.2"
    _, apps = cli(home, capsys, "apps", "--json")
    assert apps["apps"][0]["signer"] != apps["apps"][0]["id"]
    # the old key no longer updates this app
    refused(
        home,
        capsys,
        "SIGNER_MISMATCH",
        "update",
        "contacts",
        str(build(manifest_doc(version="1.3"))),
    )


def test_uninstall(home: Home, build: Builder, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(home)
    rc, out = cli(home, capsys, "install", str(build()), "--json")
    cli(home, capsys, "perms", "set", "contacts", "camera", "allow")
    assert cli(home, capsys, "uninstall", "contacts")[0] == 0
    assert snapshot(home) == before
    rc, out = cli(home, capsys, "uninstall", "contacts", "--json")
    assert rc == 1 and out["error"]["code"] == "APP_NOT_FOUND"


def test_preloaded_is_not_removable(home: Home, build: Builder) -> None:
    from kaisec.errors import UninstallForbiddenError
    from kaisec.installer import Installer

    with Installer(home) as inst:
        doc = manifest_doc("System", core=True, origin="system")
        rec = inst.install(build(doc, signer="oem"), preloaded=True).app
        assert rec.origin == "http://system.localhost" and not rec.removable
        with pytest.raises(UninstallForbiddenError):
            inst.uninstall("system")


def test_resolve_app_urls(home: Home, build: Builder, capsys: pytest.CaptureFixture[str]) -> None:
    a = cli(
        home, capsys, "install", str(build(files={"index.html": b"a", "js/app.js": b"1"})), "--json"
    )[1]["app"]
    b = cli(
        home,
        capsys,
        "install",
        str(build(manifest_doc("Secret"), files={"secret.txt": b"s"})),
        "--json",
    )[1]["app"]
    ok = cli(home, capsys, "resolve", f"app://{a['id']}/js/../js/./app.js", "--json")[1]
    assert ok["entry"] == "js/app.js" and ok["id"] == a["id"]
    assert cli(home, capsys, "resolve", f"app://{a['id']}/", "--json")[1]["entry"] == "index.html"
    # climbing out stays inside: another app's file is never reachable
    for url in (f"app://{a['id']}/../../{b['id']}/secret.txt", f"app://{a['id']}/secret.txt",
                f"app://{a['id']}/..%2f..%2fsecret.txt", f"app://{a['id']}/js%5capp.js"):  # fmt: skip
        rc, out = cli(home, capsys, "resolve", url, "--json")
        assert rc == 1 and out["error"]["code"] == "RESOURCE_NOT_FOUND", url
    rc, out = cli(home, capsys, "resolve", "app://not-a-uuid/x", "--json")
    assert out["error"]["code"] == "INVALID_ORIGIN"
    rc, out = cli(home, capsys, "resolve", "app://00000000-0000-0000-0000-000000000000/x", "--json")
    assert out["error"]["code"] == "APP_NOT_FOUND"


def test_doctor_finds_tampering(
    home: Home, build: Builder, capsys: pytest.CaptureFixture[str]
) -> None:
    app = cli(home, capsys, "install", str(build()), "--json")[1]["app"]
    pkg = next((home.apps_dir / app["id"]).iterdir())
    data = bytearray(pkg.read_bytes())
    data[40] ^= 1
    pkg.write_bytes(bytes(data))
    rc, out = cli(home, capsys, "doctor", "--json")
    assert rc == 1 and out["problems"][0]["code"] == "MODIFIED_ENTRY"
    pkg.unlink()
    rc, out = cli(home, capsys, "doctor", "--json")
    assert rc == 1 and out["problems"][0]["code"] == "PACKAGE_MISSING"


def test_doctor_recovers_leftovers(
    home: Home, build: Builder, capsys: pytest.CaptureFixture[str]
) -> None:
    app = cli(home, capsys, "install", str(build()), "--json")[1]["app"]
    (home.apps_dir / ".staging").mkdir(exist_ok=True)
    (home.apps_dir / ".staging" / "half.zip").write_bytes(b"partial")
    (home.apps_dir / "11111111-1111-1111-1111-111111111111").mkdir()
    (home.apps_dir / app["id"] / "deadbeef.zip").write_bytes(b"an update that never committed")
    rc, out = cli(home, capsys, "doctor", "--json")
    assert rc == 0 and out["ok"] and len(out["recovered"]) == 3
    assert len(list((home.apps_dir / app["id"]).iterdir())) == 1
