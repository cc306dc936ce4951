"""The per-origin app server: hosts, paths, headers, CSP per class."""

from __future__ import annotations

import httpx
import pytest

from .conftest import Daemon


def get(d: Daemon, host: str, path: str = "/", **headers: str) -> httpx.Response:
    # connect to loopback, name the site in the Host header as a browser would
    return httpx.get(f"http://127.0.0.1:{d.port}{path}", headers={"Host": f"{host}:{d.port}", **headers},
                     trust_env=False)  # fmt: skip


def shared(d: Daemon) -> str:
    return f"http://shared.localhost:{d.port}"


def system(d: Daemon) -> str:
    return f"http://system.localhost:{d.port}"


def test_serves_files_with_headers(daemon: Daemon) -> None:
    r = get(daemon, "contacts.localhost", "/index.html")
    assert r.status_code == 200 and b"<script" in r.content
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cross-origin-resource-policy"] == "same-origin"
    etag = r.headers["etag"]
    assert daemon.apps["contacts"].package_digest[:20] in etag  # keyed to the package
    again = get(daemon, "contacts.localhost", "/index.html", **{"If-None-Match": etag})
    assert again.status_code == 304
    js = get(daemon, "contacts.localhost", "/app.js")
    assert js.headers["content-type"].startswith("text/javascript")
    assert get(daemon, "contacts.localhost", "/").content == r.content  # / is index.html


def test_csp_exactly_as_documented(daemon: Daemon) -> None:
    signed = get(daemon, "contacts.localhost", "/index.html").headers.get_list(
        "content-security-policy"
    )
    assert signed == [
        "default-src * data: blob:; "
        f"script-src 'self' {shared(daemon)}; object-src 'none'; "
        f"style-src 'self' 'unsafe-inline' {shared(daemon)}; base-uri 'none'; "
        f"frame-ancestors 'self' {system(daemon)}"
    ]
    core = get(daemon, "dialer.localhost", "/index.html").headers.get_list(
        "content-security-policy"
    )
    assert core == [
        "default-src * data: blob:; "
        f"script-src 'self' {shared(daemon)}; object-src 'none'; "
        f"style-src 'self' {shared(daemon)}; base-uri 'none'; "
        f"frame-ancestors 'self' {system(daemon)}"
    ]


@pytest.mark.parametrize(
    "path",
    ["/../../kaisec.db", "/%2e%2e/%2e%2e/kaisec.db", "/..%2f..%2fkaisec.db", "/META-INF/MANIFEST.MF",
     "/nope.html", "/%00", "/a%5c..%5cindex.html", "/%ff"],
)  # fmt: skip
def test_paths_cannot_leave_the_package(daemon: Daemon, path: str) -> None:
    r = get(daemon, "contacts.localhost", path)
    assert r.status_code == 404
    assert b"sqlite" not in r.content.lower()


@pytest.mark.parametrize(
    "host",
    ["evil.example", "contacts.localhost.evil.example", "nobody.localhost", "weather.localhost",
     "contacts.localhost:1", "CONTACTS.LOCALHOST.", "", "xn--e1a.localhost"],
)  # fmt: skip
def test_unknown_hosts_get_404(daemon: Daemon, host: str) -> None:
    headers = {"Host": host if ":" in host or not host else f"{host}:{daemon.port}"}
    r = httpx.get(f"http://127.0.0.1:{daemon.port}/index.html", headers=headers, trust_env=False)
    assert r.status_code in (400, 404)


def test_shared_origin_serves_the_client(daemon: Daemon) -> None:
    r = get(daemon, "shared.localhost", "/kaisec.js")
    assert r.status_code == 200 and b"function connect" in r.content
    assert r.headers["content-type"].startswith("text/javascript")
    assert get(daemon, "shared.localhost", "/index.html").status_code == 404


def test_manifest_csp_is_a_second_header(daemon: Daemon, build, pki) -> None:  # type: ignore[no-untyped-def]
    from kaisec.installer import Installer

    from ..install.conftest import manifest_doc

    doc = manifest_doc("Strict", csp="default-src 'self'; img-src 'none'")
    with Installer(daemon.home) as inst:
        inst.install(build(doc))
    csp = get(daemon, "strict.localhost", "/index.html").headers.get_list("content-security-policy")
    assert len(csp) == 2 and csp[1] == "default-src 'self'; img-src 'none'"
