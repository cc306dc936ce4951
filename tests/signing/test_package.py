"""pack, sign_package, verify_package, read_unsigned_package: the good paths and their promises."""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.hashes import SHA256

from kaisec._internal import jarsig
from kaisec.errors import (
    InvalidKeyError,
    InvalidManifestError,
    InvalidSecurityLevelError,
    InvalidSignatureError,
    MissingManifestError,
    NotSignedError,
    UnsafePathError,
    WeakAlgorithmError,
)
from kaisec.package import pack, read_unsigned_package, sign_package, verify_package
from kaisec.trust import TrustStore
from kaisec.types import AppClass

from .conftest import NOW, Pki, app_files, read_entries, signed_package, zip_bytes


def _webapp(type_: str) -> dict[str, bytes]:
    files = app_files()
    del files["manifest.webmanifest"]
    files["manifest.webapp"] = json.dumps(
        {"name": "Legacy", "launch_path": "/index.html", "type": type_}
    ).encode()
    return files


@pytest.mark.parametrize(
    ("signer", "files", "expected"),
    [
        ("store", app_files(), AppClass.SIGNED),
        ("oem", app_files(), AppClass.SIGNED),  # an OEM signature, no core request
        ("oem", app_files(core=True), AppClass.CORE),
        ("store", _webapp("privileged"), AppClass.SIGNED),
        ("oem", _webapp("certified"), AppClass.CORE),
        ("store", _webapp("web"), AppClass.PWA),  # asked for no more than web
    ],
)
def test_class_decision(
    pki: Pki, tmp_path: Path, signer: str, files: dict[str, bytes], expected: AppClass
) -> None:
    pkg = signed_package(tmp_path, files, signer=getattr(pki, signer))
    result = verify_package(pkg, trust=pki.trust())
    assert result.app_class is expected
    assert result.signer_fingerprint == getattr(pki, signer).cert.fingerprint(SHA256()).hex()


def test_verified_package_contents(pki: Pki, tmp_path: Path) -> None:
    files = app_files()
    pkg = signed_package(tmp_path, files, signer=pki.store)
    result = verify_package(pkg, trust=pki.trust())
    assert result.signer_subject == "CN=Test Store Signer"
    assert len(result.signer_fingerprint) == 64 and ":" not in result.signer_fingerprint
    assert result.manifest.name == "Test App"
    assert result.manifest_name == "manifest.webmanifest"
    assert result.manifest_bytes == files["manifest.webmanifest"]
    assert dict(result.entries) == {n: hashlib.sha256(d).hexdigest() for n, d in files.items()}
    assert result.to_dict() == {
        "valid": True,
        "class": "signed",
        "signer": {"subject": "CN=Test Store Signer", "fingerprint": result.signer_fingerprint},
        "error": None,
    }


def test_signed_layout(pki: Pki, tmp_path: Path) -> None:
    pkg = signed_package(tmp_path, signer=pki.store)
    names = [n for n, _ in read_entries(pkg)]
    assert names[:3] == ["META-INF/MANIFEST.MF", "META-INF/KAISEC.SF", "META-INF/KAISEC.EC"]
    mf = dict(read_entries(pkg))["META-INF/MANIFEST.MF"]
    assert b"SHA-256-Digest: " in mf and b"SHA1" not in mf
    rsa = signed_package(tmp_path, signer=pki.store_rsa, name="rsa.zip")
    assert "META-INF/KAISEC.RSA" in dict(read_entries(rsa))


def test_resigning_replaces_the_old_signature(pki: Pki, tmp_path: Path) -> None:
    pkg = signed_package(tmp_path, app_files(core=True), signer=pki.store)
    with pytest.raises(InvalidSecurityLevelError):
        verify_package(pkg, trust=pki.trust())
    sign_package(pkg, key=pki.oem.key, cert_chain=pki.oem.chain)  # in place
    names = [n for n, _ in read_entries(pkg)]
    assert sum(jarsig.signature_file_kind(n) is not None for n in names) == 3
    assert verify_package(pkg, trust=pki.trust()).app_class is AppClass.CORE


def test_legacy_sha1_and_kaios_layout(pki: Pki, tmp_path: Path) -> None:
    pkg = signed_package(tmp_path, signer=pki.store_rsa, legacy_sha1=True, layout="kaios")
    entries = dict(read_entries(pkg))
    assert {"META-INF/manifest.mf", "META-INF/zigbert.sf", "META-INF/zigbert.rsa"} <= set(entries)
    mf = entries["META-INF/manifest.mf"]
    assert b"Digest-Algorithms: SHA1 SHA256" in mf and b"SHA256-Digest: " in mf
    assert b"SHA1-Digest-Manifest: " in entries["META-INF/zigbert.sf"]
    # SHA-1 next to SHA-256 needs no legacy mode (both are checked).
    assert verify_package(pkg, trust=pki.trust()).app_class is AppClass.SIGNED


def test_kaios_layout_needs_rsa(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(InvalidKeyError, match="RSA"):
        signed_package(tmp_path, signer=pki.store, layout="kaios")


def test_sign_refuses_mismatched_key(pki: Pki, tmp_path: Path) -> None:
    unsigned = tmp_path / "u.zip"
    unsigned.write_bytes(zip_bytes(sorted(app_files().items())))
    with pytest.raises(InvalidKeyError, match="does not match"):
        sign_package(unsigned, tmp_path / "o.zip", key=pki.oem.key, cert_chain=pki.store.chain)
    assert not (tmp_path / "o.zip").exists()
    with pytest.raises(InvalidKeyError):
        sign_package(unsigned, tmp_path / "o.zip", key=pki.oem.key, cert_chain=[])


def test_sign_refuses_invalid_app_manifest(pki: Pki, tmp_path: Path) -> None:
    unsigned = tmp_path / "u.zip"
    unsigned.write_bytes(zip_bytes([("index.html", b"x"), ("manifest.webmanifest", b"{")]))
    with pytest.raises(InvalidManifestError):
        sign_package(unsigned, tmp_path / "o.zip", key=pki.store.key, cert_chain=pki.store.chain)
    assert not (tmp_path / "o.zip").exists()


def test_time_and_legacy_options(pki: Pki, tmp_path: Path) -> None:
    pkg = signed_package(tmp_path, signer=pki.store)
    verify_package(pkg, trust=pki.trust(), now=NOW)
    from kaisec.errors import CertificateExpiredError

    with pytest.raises(CertificateExpiredError):
        verify_package(pkg, trust=pki.trust(), now=NOW.replace(year=NOW.year + 5))


def test_trust_directory_is_accepted(pki: Pki, tmp_path: Path) -> None:
    pkg = signed_package(tmp_path, app_files(core=True), signer=pki.oem)
    trust = pki.write_trust_dir(tmp_path / "trust")
    assert verify_package(pkg, trust=trust).app_class is AppClass.CORE
    assert verify_package(pkg, trust=str(trust)).app_class is AppClass.CORE
    from kaisec.errors import UntrustedSignerError

    with pytest.raises(UntrustedSignerError):
        verify_package(pkg, trust=tmp_path / "empty")


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_threads_give_the_same_answer(pki: Pki, tmp_path: Path, threads: int) -> None:
    files = app_files() | {f"data/{i:03d}.bin": os.urandom(i * 97) for i in range(60)}
    pkg = signed_package(tmp_path, files, signer=pki.store)
    assert (
        verify_package(pkg, trust=pki.trust(), threads=threads).entries
        == verify_package(pkg, trust=pki.trust(), threads=1).entries
    )


def test_file_object_source(pki: Pki, tmp_path: Path) -> None:
    pkg = signed_package(tmp_path, signer=pki.store)
    assert verify_package(io.BytesIO(pkg.read_bytes()), trust=pki.trust()).manifest.name
    with pkg.open("rb") as fh:
        assert verify_package(fh, trust=pki.trust()).app_class is AppClass.SIGNED


def test_each_entry_inflated_once(
    pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kaisec._internal import zipsafe

    files = app_files() | {f"f{i}.txt": b"x" * i for i in range(1, 30)}
    pkg = signed_package(tmp_path, files, signer=pki.store)
    seen: list[str] = []
    lock = threading.Lock()
    original = zipsafe.SafeZipReader.iter_chunks

    def counting(self, entry, chunk_size=1 << 20):  # type: ignore[no-untyped-def]
        with lock:
            seen.append(entry.name)
        return original(self, entry, chunk_size)

    monkeypatch.setattr(zipsafe.SafeZipReader, "iter_chunks", counting)
    verify_package(pkg, trust=pki.trust())
    assert sorted(seen) == sorted(n for n, _ in read_entries(pkg))  # once each, META-INF too


def test_not_signed_and_read_unsigned(tmp_path: Path) -> None:
    unsigned = tmp_path / "u.zip"
    unsigned.write_bytes(zip_bytes(sorted(app_files().items())))
    with pytest.raises(NotSignedError):
        verify_package(unsigned, trust=TrustStore())
    assert read_unsigned_package(unsigned).name == "Test App"
    core = tmp_path / "core.zip"
    core.write_bytes(zip_bytes(sorted(app_files(core=True).items())))
    with pytest.raises(InvalidSecurityLevelError):
        read_unsigned_package(core)
    none = tmp_path / "none.zip"
    none.write_bytes(zip_bytes([("index.html", b"x")]))
    with pytest.raises(MissingManifestError):
        read_unsigned_package(none)


# --- pack -----------------------------------------------------------------------------------


def _app_dir(root: Path, files: dict[str, bytes] | None = None) -> Path:
    for name, data in (files or app_files()).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def test_pack_is_deterministic(tmp_path: Path) -> None:
    app = _app_dir(tmp_path / "app")
    a = pack(app, tmp_path / "a.zip")
    os.utime(app / "index.html", (0, 0))
    (app / "js" / "app.js").chmod(0o600)
    b = pack(app, tmp_path / "b.zip")
    assert a.read_bytes() == b.read_bytes()
    assert [n for n, _ in read_entries(a)] == sorted(app_files())
    assert read_unsigned_package(a).name == "Test App"


def test_pack_then_sign_then_verify(pki: Pki, tmp_path: Path) -> None:
    app = _app_dir(tmp_path / "app")
    pkg = pack(app, tmp_path / "a.zip")
    sign_package(pkg, key=pki.store.key, cert_chain=pki.store.chain)
    assert verify_package(pkg, trust=pki.trust()).app_class is AppClass.SIGNED


def test_pack_refuses(tmp_path: Path) -> None:
    app = _app_dir(tmp_path / "app")
    (app / "link").symlink_to(app / "index.html")
    with pytest.raises(UnsafePathError):
        pack(app, tmp_path / "out.zip")
    (app / "link").unlink()
    (app / "META-INF").mkdir()
    (app / "META-INF" / "CERT.SF").write_bytes(b"x")
    with pytest.raises(InvalidSignatureError):
        pack(app, tmp_path / "out.zip")
    (app / "META-INF" / "CERT.SF").unlink()
    (app / "manifest.webapp").write_bytes(b"{}")
    with pytest.raises(InvalidManifestError):
        pack(app, tmp_path / "out.zip")
    (app / "manifest.webapp").unlink()
    (app / "manifest.webmanifest").unlink()
    with pytest.raises(MissingManifestError):
        pack(app, tmp_path / "out.zip")
    (app / "manifest.webmanifest").write_bytes(b'{"name": 1}')
    with pytest.raises(InvalidManifestError):
        pack(app, tmp_path / "out.zip")
    assert not (tmp_path / "out.zip").exists()
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_pack_limits(tmp_path: Path) -> None:
    from kaisec._internal.zipsafe import ZipLimits
    from kaisec.errors import PackageTooLargeError
    from kaisec.package import PackageLimits

    app = _app_dir(tmp_path / "app")
    with pytest.raises(PackageTooLargeError):
        pack(app, tmp_path / "o.zip", limits=PackageLimits(zip=ZipLimits(max_entries=3)))
    with pytest.raises(PackageTooLargeError):
        pack(app, tmp_path / "o.zip", limits=PackageLimits(zip=ZipLimits(max_entry_size=100)))


def test_sign_weak_rsa_refused(pki: Pki, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    from .conftest import make_cert

    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    cert = make_cert("weak", weak, issuer=(pki.store_root, pki.store_root_key))
    unsigned = tmp_path / "u.zip"
    unsigned.write_bytes(zip_bytes(sorted(app_files().items())))
    with pytest.raises(WeakAlgorithmError):
        sign_package(unsigned, tmp_path / "o.zip", key=weak, cert_chain=[cert])
