"""Hostile packages: each refused by verify_package with one code, nothing written anywhere.

Every package is built here from a good signed package plus one named
change, at the ZIP level (through tests/package/zipcraft.py) or at the
signature level. The same table runs through the library and through
``kaisec verify --json`` in-process.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from kaisec._cli import main
from kaisec._internal import jarsig
from kaisec._internal.zipsafe import ZipLimits
from kaisec.errors import KaisecError
from kaisec.package import PackageLimits, verify_package
from tests.package import zipcraft
from tests.package.backends import use_backend
from tests.package.zipcraft import Entry, Layout

from .conftest import (
    DAY,
    NOW,
    Pki,
    Signer,
    app_files,
    custom_signed,
    make_cert,
    raw_block,
    read_entries,
    signed_package,
    zip_bytes,
)

Entries = list[tuple[str, bytes]]


@dataclass
class Ctx:
    pki: Pki
    tmp: Path
    _good: Entries | None = None

    def good(self) -> Entries:
        """The entries of a valid package signed by the store signer."""
        if self._good is None:
            self._good = read_entries(signed_package(self.tmp, signer=self.pki.store, name="g.zip"))
            (self.tmp / "g.zip").unlink()
        return list(self._good)

    def signed(
        self, files: dict[str, bytes] | None = None, *, signer: Signer | None = None, **kw: Any
    ) -> bytes:
        path = signed_package(self.tmp, files, signer=signer or self.pki.store, name="s.zip", **kw)
        data = path.read_bytes()
        path.unlink()
        return data


def rezip(entries: Entries) -> bytes:
    return zip_bytes(entries)


def craft(entries: Entries, layout: Layout | None = None, **overrides: dict[str, Any]) -> bytes:
    """Entries as stored zipcraft Entries; ``overrides`` maps a name to Entry field overrides."""
    out = [Entry(n, d, **overrides.get(n, {})) for n, d in entries]
    return zipcraft.build(out, layout)


def replace(entries: Entries, name: str, data: bytes) -> Entries:
    return [(n, data if n == name else d) for n, d in entries]


def drop(entries: Entries, name: str) -> Entries:
    return [(n, d) for n, d in entries if n != name]


def rename(entries: Entries, old: str, new: str) -> Entries:
    return [(new if n == old else n, d) for n, d in entries]


def block_name(entries: Entries) -> str:
    return next(n for n, _ in entries if jarsig.signature_file_kind(n) == "block")


def flip_signature(entries: Entries) -> Entries:
    from asn1crypto import cms

    name = block_name(entries)
    info = cms.ContentInfo.load(dict(entries)[name])
    si = info["content"]["signer_infos"][0]
    sig = bytearray(si["signature"].native)
    sig[-3] ^= 0x40
    si["signature"] = bytes(sig)
    return replace(entries, name, info.dump(force=True))


def _mf(sections: list[str], main: str = "Manifest-Version: 1.0\r\n") -> bytes:
    return (main + "\r\n" + "".join(sections)).encode()


def _section(name: str, data: bytes, label: str = "SHA-256-Digest", alg: str = "sha256") -> str:
    import base64

    digest = base64.b64encode(hashlib.new(alg, data).digest()).decode()
    return f"Name: {name}\r\n{label}: {digest}\r\n\r\n"


def _all_sections(files: dict[str, bytes], **kw: str) -> list[str]:
    return [_section(n, d, **kw) for n, d in sorted(files.items())]


@dataclass
class Case:
    name: str
    code: str
    build: Callable[[Ctx], bytes]
    kwargs: dict[str, Any] = field(default_factory=dict)


def _webapp_certified() -> dict[str, bytes]:
    files = app_files()
    del files["manifest.webmanifest"]
    files["manifest.webapp"] = json.dumps(
        {"name": "Certified", "launch_path": "/index.html", "type": "certified"}
    ).encode()
    return files


def _lying_bomb(c: Ctx) -> bytes:
    entries = c.good()
    real = dict(entries)["js/app.js"]
    bomb = real + b"A" * 200_000
    return craft(
        entries,
        **{"js/app.js": {"method": 8, "payload": zipcraft.deflate(bomb), "size": len(real)}},
    )


def _second_cd(c: Ctx) -> bytes:
    return craft(c.good()) + zipcraft.simple("evil.js")


def _two_digests_disagree(c: Ctx) -> bytes:
    files = app_files()
    sections = _all_sections(files)
    sections[0] = sections[0].replace(
        "\r\n\r\n",
        "\r\n" + _section("x", b"evil").split("\r\n")[1].replace("SHA-256", "SHA256") + "\r\n\r\n",
    )
    return custom_signed(files, signer=c.pki.store, manifest=_mf(sections))


def _duplicate_section(c: Ctx) -> bytes:
    files = app_files()
    sections = _all_sections(files)
    sections.append(_section("index.html", b"evil"))
    return custom_signed(files, signer=c.pki.store, manifest=_mf(sections))


def _manifest_edited(c: Ctx) -> bytes:
    entries = c.good()
    evil = b"<script>steal()</script>"
    mf = dict(entries)["META-INF/MANIFEST.MF"]
    old = _section("index.html", dict(entries)["index.html"])
    assert old.encode() in mf
    mf = mf.replace(old.encode(), _section("index.html", evil).encode())
    return rezip(replace(replace(entries, "index.html", evil), "META-INF/MANIFEST.MF", mf))


def _sf_edited(c: Ctx) -> bytes:
    entries = c.good()
    sf = dict(entries)["META-INF/KAISEC.SF"].replace(b"Created-By: kaisec", b"Created-By: evil")
    return rezip(replace(entries, "META-INF/KAISEC.SF", sf))


def _per_section_extra(c: Ctx) -> bytes:
    files = app_files()
    mf = _mf(_all_sections(files))
    manifest = jarsig.parse_manifest(mf)
    sf = jarsig.build_signature_file(manifest, algorithms=["sha256"], created_by="t")
    sf = b"\r\n".join(
        line for line in sf.split(b"\r\n") if not line.startswith(b"SHA-256-Digest-Manifest")
    )
    sf += _section("ghost.js", b"x").encode()
    return custom_signed(files, signer=c.pki.store, manifest=mf, sf=sf)


def _lists_directory(c: Ctx) -> bytes:
    files = app_files()
    mf = _mf([*_all_sections(files), _section("img/", b"")])
    return zip_bytes([*_sig_entries(c, mf), ("img/", b""), *sorted(files.items())])


def _sig_entries(c: Ctx, mf: bytes) -> Entries:
    from kaisec._internal.pkcs7 import sign_detached

    sf = jarsig.build_signature_file(
        jarsig.parse_manifest(mf), algorithms=["sha256"], created_by="t"
    )
    block = sign_detached(sf, key=c.pki.store.key, chain=c.pki.store.chain)  # type: ignore[arg-type]
    return [("META-INF/MANIFEST.MF", mf), ("META-INF/KAISEC.SF", sf), ("META-INF/KAISEC.EC", block)]


def _rsa1024(c: Ctx) -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    cert = make_cert("Weak", key, issuer=(c.pki.store_root, c.pki.store_root_key))
    return custom_signed(
        app_files(), signer=c.pki.store, block_fn=lambda sf: raw_block(sf, key=key, chain=[cert])
    )


def _non_ca_issuer(c: Ctx) -> bytes:
    from .conftest import ec_key

    ikey, lkey = ec_key(), ec_key()
    inter = make_cert("Not A CA", ikey, issuer=(c.pki.store_root, c.pki.store_root_key), ca=False)
    leaf = make_cert("Under Non-CA", lkey, issuer=(inter, ikey))
    return c.signed(signer=Signer(lkey, [leaf, inter]))


def _symlink(c: Ctx) -> bytes:
    entries = [*c.good(), ("link", b"/etc/passwd")]
    return craft(
        entries,
        **{"link": {"made_by": zipcraft.UNIX, "external_attr": (stat.S_IFLNK | 0o777) << 16}},
    )


CASES: list[Case] = [
    # --- the ZIP container ---------------------------------------------------------------
    Case("zip bomb (ratio)", "PACKAGE_TOO_LARGE", lambda c: rezip([*c.good(), ("bomb.bin", bytes(8 << 20))])),
    Case("zip bomb lying about its size", "CORRUPT_PACKAGE", _lying_bomb),
    Case("Janus: data prepended", "CORRUPT_PACKAGE", lambda c: craft(c.good(), Layout(prefix=b"dex\n035\0" + bytes(64)))),
    Case("Janus: prepended, offsets relative", "CORRUPT_PACKAGE",
         lambda c: craft(c.good(), Layout(prefix=b"MZ" + bytes(62), relative_offsets=True))),
    Case("second central directory appended", "CORRUPT_PACKAGE", _second_cd),
    Case("extra central record", "CORRUPT_PACKAGE",
         lambda c: craft(c.good(), Layout(extra_central=zipcraft.central_header(Entry("evil.js", b"x"), 0)))),
    Case("trailing bytes after the end record", "CORRUPT_PACKAGE", lambda c: craft(c.good(), Layout(trailing=b"junk"))),
    Case("truncated package", "CORRUPT_PACKAGE", lambda c: craft(c.good())[:-30]),
    Case("empty file", "CORRUPT_PACKAGE", lambda c: b""),
    Case("not a zip", "CORRUPT_PACKAGE", lambda c: b"<html>not a package</html>"),
    Case("case-colliding names", "UNSAFE_PATH", lambda c: craft([*c.good(), ("Index.html", b"evil")])),
    Case("NFC/NFD-colliding names", "UNSAFE_PATH",
         lambda c: craft([*c.good(), (unicodedata.normalize("NFC", "café.js"), b"1"),
                          (unicodedata.normalize("NFD", "café.js"), b"2")])),
    Case("duplicate name", "DUPLICATE_ENTRY", lambda c: craft([*c.good(), ("index.html", b"evil")])),
    Case("path traversal", "UNSAFE_PATH", lambda c: craft([*c.good(), ("../evil.js", b"x")])),
    Case("absolute path", "UNSAFE_PATH", lambda c: craft([*c.good(), ("/etc/evil", b"x")])),
    Case("backslash in a name", "UNSAFE_PATH", lambda c: craft([*c.good(), ("js\\evil.js", b"x")])),
    Case("file and directory of the same name", "UNSAFE_PATH", lambda c: craft([*c.good(), ("index.html/x", b"x")])),
    Case("symlink entry", "UNSAFE_PATH", _symlink),
    Case("encrypted entry", "CORRUPT_PACKAGE", lambda c: craft(c.good(), **{"index.html": {"flags": 1}})),
    Case("unsupported compression method", "CORRUPT_PACKAGE", lambda c: craft(c.good(), **{"index.html": {"method": 12}})),
    Case("CRC-32 mismatch", "CORRUPT_PACKAGE", lambda c: craft(c.good(), **{"index.html": {"crc": 1234}})),
    Case("local header disagrees with central", "CORRUPT_PACKAGE",
         lambda c: craft(c.good(), **{"index.html": {"local_name": b"other.html"}})),
    Case("too many entries", "PACKAGE_TOO_LARGE", lambda c: rezip(c.good()),
         {"limits": PackageLimits(zip=ZipLimits(max_entries=5))}),
    # --- signature files ------------------------------------------------------------------
    Case("unsigned package", "NOT_SIGNED", lambda c: rezip(sorted(app_files().items()))),
    Case("manifest without signature", "NOT_SIGNED",
         lambda c: rezip(drop(drop(c.good(), "META-INF/KAISEC.SF"), "META-INF/KAISEC.EC"))),
    Case("stripped signature block", "INVALID_SIGNATURE", lambda c: rezip(drop(c.good(), "META-INF/KAISEC.EC"))),
    Case("stripped .SF", "INVALID_SIGNATURE", lambda c: rezip(drop(c.good(), "META-INF/KAISEC.SF"))),
    Case("stripped MANIFEST.MF", "INVALID_SIGNATURE", lambda c: rezip(drop(c.good(), "META-INF/MANIFEST.MF"))),
    Case("second .SF", "INVALID_SIGNATURE",
         lambda c: rezip([*c.good(), ("META-INF/OTHER.SF", dict(c.good())["META-INF/KAISEC.SF"])])),
    Case("second signature block", "INVALID_SIGNATURE",
         lambda c: rezip([*c.good(), ("META-INF/KAISEC.RSA", dict(c.good())["META-INF/KAISEC.EC"])])),
    Case("block of another name", "INVALID_SIGNATURE",
         lambda c: rezip(rename(c.good(), "META-INF/KAISEC.EC", "META-INF/OTHER.EC"))),
    Case("DSA signature block", "INVALID_SIGNATURE",
         lambda c: rezip(rename(c.good(), "META-INF/KAISEC.EC", "META-INF/KAISEC.DSA"))),
    Case("manifest in an odd spelling", "INVALID_SIGNATURE",
         lambda c: rezip(rename(c.good(), "META-INF/MANIFEST.MF", "META-INF/Manifest.Mf"))),
    Case("SIG- file next to the signature", "INVALID_SIGNATURE", lambda c: rezip([*c.good(), ("META-INF/SIG-X", b"x")])),
    Case("MANIFEST.MF without final newline", "INVALID_SIGNATURE",
         lambda c: custom_signed(app_files(), signer=c.pki.store, manifest=_mf(_all_sections(app_files()))[:-4])),
    Case("MANIFEST.MF line over 512 bytes", "INVALID_SIGNATURE",
         lambda c: custom_signed(app_files(), signer=c.pki.store,
                                 manifest=_mf(_all_sections(app_files()), main="Manifest-Version: 1.0\r\nX: " + "a" * 600 + "\r\n"))),
    Case("MANIFEST.MF over the size limit", "PACKAGE_TOO_LARGE", lambda c: rezip(c.good()),
         {"limits": PackageLimits(signature_files=jarsig.SignatureFileLimits(max_size=100))}),
    Case("entry with two SHA-256 digests that disagree", "INVALID_SIGNATURE", _two_digests_disagree),
    Case("entry listed twice", "DUPLICATE_ENTRY", _duplicate_section),
    Case("only an unknown digest (MD5)", "INVALID_SIGNATURE",
         lambda c: custom_signed(app_files(), signer=c.pki.store,
                                 manifest=_mf(_all_sections(app_files(), label="MD5-Digest", alg="md5")))),
    Case("only SHA-1 digests", "WEAK_ALGORITHM",
         lambda c: custom_signed(app_files(), signer=c.pki.store, legacy_algorithms=("sha1",))),
    Case("MANIFEST.MF edited after signing", "INVALID_SIGNATURE", _manifest_edited),
    Case(".SF edited after signing", "INVALID_SIGNATURE", _sf_edited),
    Case(".SF section for an entry the manifest lacks", "INVALID_SIGNATURE", _per_section_extra),
    # --- entries ----------------------------------------------------------------------------
    Case("unlisted file added", "UNSIGNED_ENTRY", lambda c: rezip([*c.good(), ("evil.js", b"steal()")])),
    Case("unlisted file in META-INF", "UNSIGNED_ENTRY", lambda c: rezip([*c.good(), ("META-INF/id.json", b"{}")])),
    Case("listed file removed", "ENTRY_MISSING", lambda c: rezip(drop(c.good(), "style/app.css"))),
    Case("listed name is a directory", "ENTRY_MISSING", _lists_directory),
    Case("entry modified", "MODIFIED_ENTRY", lambda c: rezip(replace(c.good(), "js/app.js", b"steal()"))),
    Case("app manifest upgraded to core", "MODIFIED_ENTRY",
         lambda c: rezip(replace(c.good(), "manifest.webmanifest", app_files(core=True)["manifest.webmanifest"]))),
    # --- the PKCS#7 signature and the chain ---------------------------------------------------
    Case("signature bytes flipped", "INVALID_SIGNATURE", lambda c: rezip(flip_signature(c.good()))),
    Case("signature block is garbage", "INVALID_SIGNATURE",
         lambda c: rezip(replace(c.good(), "META-INF/KAISEC.EC", b"\x30\x82\x01\x00garbage"))),
    Case("direct signature, no signed attributes", "INVALID_SIGNATURE",
         lambda c: custom_signed(app_files(), signer=c.pki.store,
                                 block_fn=lambda sf: raw_block(sf, key=c.pki.store.key, chain=c.pki.store.chain,
                                                               signed_attrs=False))),
    Case("signature with SHA-1", "WEAK_ALGORITHM",
         lambda c: custom_signed(app_files(), signer=c.pki.store,
                                 block_fn=lambda sf: raw_block(sf, key=c.pki.store.key, chain=c.pki.store.chain,
                                                               digest="sha1"))),
    Case("RSA 1024 signer", "WEAK_ALGORITHM", _rsa1024),
    Case("signed by an unknown root", "UNTRUSTED_SIGNER", lambda c: c.signed(signer=c.pki.other)),
    Case("signer without codeSigning", "UNTRUSTED_SIGNER",
         lambda c: c.signed(signer=c.pki.leaf("TLS", eku=[ExtendedKeyUsageOID.SERVER_AUTH]))),
    Case("issuer that is not a CA", "UNTRUSTED_SIGNER", _non_ca_issuer),
    Case("expired leaf", "CERTIFICATE_EXPIRED", lambda c: c.signed(signer=c.pki.leaf("Old", not_after=NOW - DAY))),
    Case("leaf not yet valid", "CERTIFICATE_EXPIRED",
         lambda c: c.signed(signer=c.pki.leaf("Future", not_before=NOW + DAY, not_after=NOW + 9 * DAY))),
    # --- the app manifest and the class -------------------------------------------------------
    Case("core claim signed by a store key", "INVALID_SECURITY_LEVEL", lambda c: c.signed(app_files(core=True))),
    Case("legacy certified claim signed by a store key", "INVALID_SECURITY_LEVEL",
         lambda c: c.signed(_webapp_certified())),
    Case("no app manifest", "MISSING_MANIFEST",
         lambda c: custom_signed({"index.html": b"x"}, signer=c.pki.store)),
    Case("two app manifests", "INVALID_MANIFEST",
         lambda c: custom_signed(app_files() | {"manifest.webapp": b'{"name": "x"}'}, signer=c.pki.store)),
    Case("app manifest is not JSON", "INVALID_MANIFEST",
         lambda c: custom_signed(app_files() | {"manifest.webmanifest": b"{nope"}, signer=c.pki.store)),
    Case("app manifest over its size limit", "INVALID_MANIFEST", lambda c: rezip(c.good()),
         {"limits": PackageLimits(max_app_manifest=10)}),
]  # fmt: skip


def test_table_is_big_and_named_uniquely() -> None:
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)


def _snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture
def world(pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Ctx, Path, Path]:
    home = tmp_path / "home"
    pki.write_trust_dir(home / "trust")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    build = tmp_path / "build"
    build.mkdir()
    return Ctx(pki, build), home, tmp_path


@pytest.mark.parametrize("backend", ["isal", "zlib"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_package(
    case: Case,
    backend: str,
    world: tuple[Ctx, Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_backend(monkeypatch, backend)  # the verdict must not depend on the inflater
    ctx, home, root = world
    pkg = root / "hostile.zip"
    pkg.write_bytes(case.build(ctx))
    before = _snapshot(root)
    data = pkg.read_bytes()
    with pytest.raises(KaisecError) as info:
        verify_package(pkg, trust=home / "trust", **case.kwargs)
    assert info.value.code == case.code, info.value
    if not case.kwargs:
        rc = main(["--home", str(home), "verify", "--json", str(pkg)])
        out = json.loads(capsys.readouterr().out)
        assert rc == 1
        assert out["valid"] is False and out["class"] is None and out["signer"] is None
        assert out["error"]["code"] == case.code
    assert _snapshot(root) == before  # nothing written, not even in the home or cwd
    assert pkg.read_bytes() == data
