"""Interop with the real tools: jarsigner, apksigner, keytool, openssl.

Packages signed by kaisec pass ``jarsigner -verify -strict`` and ``apksigner
verify --min-sdk-version 19 --max-sdk-version 23``; packages signed by
jarsigner (keys made here with keytool or openssl) verify in kaisec with the
class their root's place in the trust directory gives; the same tampering
makes all three refuse. A missing tool fails these tests (never a skip):
install them with scripts/system-deps.sh.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from kaisec.errors import KaisecError
from kaisec.package import verify_package
from kaisec.trust import TrustStore
from kaisec.types import AppClass

from .conftest import Pki, Signer, app_files, read_entries, signed_package, zip_bytes

pytestmark = pytest.mark.interop

PASS = "changeit"


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is required for the interop tests: run scripts/system-deps.sh"
    return path


# Faster JVM start-up (C1 only, serial GC): the tests start ~40 JVMs.
_JVM = {
    "keytool": ["-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC"],
    "jarsigner": ["-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC"],
    "apksigner": ["-JXX:TieredStopAtLevel=1", "-JXX:+UseSerialGC"],
}


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [tool(args[0]), *_JVM.get(args[0], []), *args[1:]]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)


def jarsigner_verify(pkg: Path, truststore: Path) -> subprocess.CompletedProcess[str]:
    return run(
        "jarsigner",
        "-verify",
        "-strict",
        "-keystore",
        str(truststore),
        "-storepass",
        PASS,
        str(pkg),
    )


def apksigner_verify(pkg: Path, min_sdk: int = 19) -> subprocess.CompletedProcess[str]:
    return run(
        "apksigner",
        "verify",
        "--min-sdk-version",
        str(min_sdk),
        "--max-sdk-version",
        "23",
        "-v",
        str(pkg),
    )


def truststore(tmp: Path, *roots: Path) -> Path:
    store = tmp / "truststore.p12"
    for i, root in enumerate(roots):
        proc = run("keytool", "-importcert", "-noprompt", "-alias", f"root{i}", "-file", str(root),
                   "-keystore", str(store), "-storetype", "PKCS12", "-storepass", PASS)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    return store


def pem(tmp: Path, name: str, cert: object) -> Path:
    path = tmp / name
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))  # type: ignore[attr-defined]
    return path


@pytest.fixture(scope="session")
def store_truststore(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("truststore")
    return truststore(tmp, pem(tmp, "root.pem", pki.store_root))


@pytest.fixture
def rsa_package(pki: Pki, tmp_path: Path) -> Path:
    return signed_package(tmp_path, signer=pki.store_rsa)  # chain: signer, root


def test_kaisec_signed_passes_jarsigner_and_apksigner(
    pki: Pki, rsa_package: Path, store_truststore: Path
) -> None:
    store = store_truststore
    proc = jarsigner_verify(rsa_package, store)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "jar verified." in proc.stdout
    proc = apksigner_verify(rsa_package)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Verified using v1 scheme (JAR signing): true" in proc.stdout
    assert verify_package(rsa_package, trust=pki.trust()).app_class is AppClass.SIGNED


def test_kaisec_ec_signature_passes_jarsigner_and_apksigner_from_api_21(
    pki: Pki, tmp_path: Path, store_truststore: Path
) -> None:
    pkg = signed_package(tmp_path, signer=Signer(pki.store.key, [pki.store.cert, pki.store_root]))
    proc = jarsigner_verify(pkg, store_truststore)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # ECDSA JAR signatures exist on Android 5 (API 21) and later only.
    proc = apksigner_verify(pkg, min_sdk=21)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_kaios_layout_with_sha1_passes_jarsigner(
    pki: Pki, tmp_path: Path, store_truststore: Path
) -> None:
    pkg = signed_package(tmp_path, signer=pki.store_rsa, layout="kaios", legacy_sha1=True)
    proc = jarsigner_verify(pkg, store_truststore)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_jarsigner_strict_also_wants_code_signing(
    pki: Pki, tmp_path: Path, store_truststore: Path
) -> None:
    leaf = pki.leaf("TLS Server", eku=[ExtendedKeyUsageOID.SERVER_AUTH])
    pkg = signed_package(tmp_path, signer=Signer(leaf.key, [leaf.cert, pki.store_root]))
    proc = jarsigner_verify(pkg, store_truststore)
    assert proc.returncode != 0 and "ExtendedKeyUsage" in proc.stdout, proc.stdout
    with pytest.raises(KaisecError) as info:
        verify_package(pkg, trust=pki.trust())
    assert info.value.code == "UNTRUSTED_SIGNER"


def test_jarsigner_strict_refuses_an_unknown_root(
    pki: Pki, tmp_path: Path, store_truststore: Path
) -> None:
    pkg = signed_package(tmp_path, signer=Signer(pki.other.key, [pki.other.cert, pki.other_root]))
    assert jarsigner_verify(pkg, store_truststore).returncode != 0
    with pytest.raises(KaisecError) as info:
        verify_package(pkg, trust=pki.trust())
    assert info.value.code == "UNTRUSTED_SIGNER"


# --- packages signed by jarsigner ----------------------------------------------------------


def keytool_pki(tmp: Path) -> tuple[Path, Path]:
    """A CA and a code-signing signer made by keytool alone; returns (CA PEM, signer keystore)."""
    ca, signer = tmp / "ca.p12", tmp / "signer.p12"
    common = ["-storetype", "PKCS12", "-storepass", PASS, "-keypass", PASS]
    steps = [
        ["keytool", "-genkeypair", "-alias", "ca", "-keyalg", "RSA", "-keysize", "2048",
         "-dname", "CN=Keytool Test CA", "-ext", "bc:c=ca:true,pathlen:0", "-ext", "ku:c=keyCertSign,cRLSign",
         "-validity", "30", "-keystore", str(ca), *common],
        ["keytool", "-genkeypair", "-alias", "signer", "-keyalg", "RSA", "-keysize", "2048",
         "-dname", "CN=Keytool Signer", "-validity", "30", "-keystore", str(signer), *common],
        ["keytool", "-certreq", "-alias", "signer", "-file", str(tmp / "signer.csr"), "-keystore", str(signer), *common],
        ["keytool", "-gencert", "-alias", "ca", "-infile", str(tmp / "signer.csr"), "-outfile", str(tmp / "signer.cer"),
         "-ext", "ku:c=digitalSignature", "-ext", "eku=codeSigning", "-ext", "bc:c=ca:false", "-rfc",
         "-validity", "20", "-keystore", str(ca), *common],
        ["keytool", "-exportcert", "-alias", "ca", "-rfc", "-file", str(tmp / "ca.pem"), "-keystore", str(ca), *common],
        ["keytool", "-importcert", "-noprompt", "-alias", "ca", "-file", str(tmp / "ca.pem"), "-keystore", str(signer), *common],
        ["keytool", "-importcert", "-noprompt", "-alias", "signer", "-file", str(tmp / "signer.cer"),
         "-keystore", str(signer), *common],
    ]  # fmt: skip
    for step in steps:
        proc = run(*step)
        assert proc.returncode == 0, f"{step}: {proc.stdout}{proc.stderr}"
    return tmp / "ca.pem", signer


def openssl_pki(tmp: Path) -> tuple[Path, Path]:
    """A CA and an EC P-256 code-signing signer made by openssl; returns (CA PEM, signer PKCS#12)."""
    (tmp / "leaf.ext").write_text(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n"
    )
    steps = [
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", "ca.key", "-out", "ca.pem", "-days", "30", "-subj", "/CN=OpenSSL Test CA",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"],
        ["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "leaf.key",
         "-out", "leaf.csr", "-subj", "/CN=OpenSSL Signer"],
        ["openssl", "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
         "-out", "leaf.pem", "-days", "20", "-extfile", "leaf.ext"],
        ["openssl", "pkcs12", "-export", "-inkey", "leaf.key", "-in", "leaf.pem", "-certfile", "ca.pem",
         "-name", "signer", "-out", "signer.p12", "-passout", f"pass:{PASS}"],
    ]  # fmt: skip
    for step in steps:
        proc = run(*step, cwd=tmp)
        assert proc.returncode == 0, f"{step}: {proc.stdout}{proc.stderr}"
    return tmp / "ca.pem", tmp / "signer.p12"


def jarsign(unsigned: Path, out: Path, keystore: Path, *extra: str) -> None:
    proc = run("jarsigner", "-keystore", str(keystore), "-storepass", PASS, *extra,
               "-signedjar", str(out), str(unsigned), "signer")  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def trust_dir(tmp: Path, ca: Path, cls: str) -> Path:
    folder = tmp / f"trust-{cls}"
    (folder / cls).mkdir(parents=True, exist_ok=True)
    shutil.copy(ca, folder / cls / "ca.pem")
    return folder


@pytest.fixture(scope="session")
def keytool_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return keytool_pki(tmp_path_factory.mktemp("keytool"))


@pytest.fixture(scope="session")
def openssl_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return openssl_pki(tmp_path_factory.mktemp("openssl"))


def _unsigned(tmp: Path, name: str = "plain.zip", **b2g: object) -> Path:
    path = tmp / name
    path.write_bytes(zip_bytes(sorted(app_files(**b2g).items())))
    return path


@pytest.mark.parametrize("maker", ["keytool_ca", "openssl_ca"])
def test_jarsigner_signed_verifies_with_the_right_class(
    maker: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    ca, keystore = request.getfixturevalue(maker)
    jarsign(_unsigned(tmp_path), tmp_path / "plain-signed.zip", keystore)
    jarsign(_unsigned(tmp_path, "core.zip", core=True), tmp_path / "core-signed.zip", keystore)
    names = [n for n, _ in read_entries(tmp_path / "plain-signed.zip")]
    assert "META-INF/SIGNER.SF" in names
    signed_dir, core_dir = trust_dir(tmp_path, ca, "signed"), trust_dir(tmp_path, ca, "core")
    assert (
        verify_package(tmp_path / "plain-signed.zip", trust=signed_dir).app_class is AppClass.SIGNED
    )
    assert (
        verify_package(tmp_path / "plain-signed.zip", trust=core_dir).app_class is AppClass.SIGNED
    )
    assert verify_package(tmp_path / "core-signed.zip", trust=core_dir).app_class is AppClass.CORE
    with pytest.raises(KaisecError) as info:
        verify_package(tmp_path / "core-signed.zip", trust=signed_dir)
    assert info.value.code == "INVALID_SECURITY_LEVEL"
    with pytest.raises(KaisecError) as info:
        verify_package(tmp_path / "plain-signed.zip", trust=TrustStore())
    assert info.value.code == "UNTRUSTED_SIGNER"


def test_apksigner_v1_direct_signature_is_refused(
    tmp_path: Path, keytool_ca: tuple[Path, Path]
) -> None:
    # apksigner's v1 scheme signs the .SF directly, without signed attributes
    # (and JDK 17's jarsigner has no -directsign): kaisec refuses those, as
    # KaiOS does (it needs the messageDigest attribute). docs/signing.md.
    ca, keystore = keytool_ca
    out = tmp_path / "apk.zip"
    proc = run("apksigner", "sign", "--ks", str(keystore), "--ks-pass", f"pass:{PASS}",
               "--ks-key-alias", "signer", "--v1-signing-enabled", "true", "--v2-signing-enabled", "false",
               "--v3-signing-enabled", "false", "--v4-signing-enabled", "false", "--min-sdk-version", "19",
               "--out", str(out), str(_unsigned(tmp_path)))  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert apksigner_verify(out).returncode == 0
    with pytest.raises(KaisecError) as info:
        verify_package(out, trust=trust_dir(tmp_path, ca, "signed"))
    assert info.value.code == "INVALID_SIGNATURE"
    assert "signed attributes" in info.value.message


def test_jarsigner_sha1_digests_need_legacy(tmp_path: Path, keytool_ca: tuple[Path, Path]) -> None:
    ca, keystore = keytool_ca
    jarsign(_unsigned(tmp_path), tmp_path / "sha1.zip", keystore, "-digestalg", "SHA-1")
    trust = trust_dir(tmp_path, ca, "signed")
    with pytest.raises(KaisecError) as info:
        verify_package(tmp_path / "sha1.zip", trust=trust)
    assert info.value.code == "WEAK_ALGORITHM"
    assert (
        verify_package(tmp_path / "sha1.zip", trust=trust, legacy=True).app_class is AppClass.SIGNED
    )


# --- the same tampering: all three refuse ----------------------------------------------------------


def _tamper(entries: list[tuple[str, bytes]], how: str) -> list[tuple[str, bytes]]:
    if how == "modified entry":
        return [(n, b"steal()" if n == "js/app.js" else d) for n, d in entries]
    if how == "unlisted entry":
        return [*entries, ("evil.js", b"steal()")]
    if how == "edited .SF":
        return [
            (n, d.replace(b"Created-By: ", b"Created-By: x") if n.endswith(".SF") else d)
            for n, d in entries
        ]
    if how == "entry and its manifest digest changed":
        evil = b"steal()"
        data = dict(entries)
        mf_name = next(n for n in data if n.upper() == "META-INF/MANIFEST.MF")
        old = base64.b64encode(hashlib.sha256(data["js/app.js"]).digest())
        new = base64.b64encode(hashlib.sha256(evil).digest())
        assert old in data[mf_name]
        return [
            (
                n,
                evil
                if n == "js/app.js"
                else data[mf_name].replace(old, new)
                if n == mf_name
                else d,
            )
            for n, d in entries
        ]
    if how == "garbage signature block":
        return [
            (n, b"\x30\x03\x02\x01\x00" if n.endswith((".RSA", ".EC")) else d) for n, d in entries
        ]
    raise AssertionError(how)


TAMPERING = {
    "modified entry": "MODIFIED_ENTRY",
    "unlisted entry": "UNSIGNED_ENTRY",
    "edited .SF": "INVALID_SIGNATURE",
    "entry and its manifest digest changed": "INVALID_SIGNATURE",
    "garbage signature block": "INVALID_SIGNATURE",
}


@pytest.fixture(scope="session")
def good_packages(
    pki: Pki,
    keytool_ca: tuple[Path, Path],
    store_truststore: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[Path, Path, Path]]:
    """Two valid packages (signed by kaisec, by jarsigner): (package, truststore, trust dir)."""
    tmp = tmp_path_factory.mktemp("good")
    ours = signed_package(tmp, signer=pki.store_rsa, name="kaisec.zip")
    root = pem(tmp, "root.pem", pki.store_root)
    ca, keystore = keytool_ca
    theirs = tmp / "jarsigner.zip"
    jarsign(_unsigned(tmp), theirs, keystore)
    return {
        "kaisec": (ours, store_truststore, trust_dir(tmp / "k", root, "signed")),
        "jarsigner": (theirs, truststore(tmp, ca), trust_dir(tmp / "j", ca, "signed")),
    }


@pytest.mark.parametrize("signed_by", ["kaisec", "jarsigner"])
def test_good_packages_pass_all_three(
    good_packages: dict[str, tuple[Path, Path, Path]], signed_by: str
) -> None:
    pkg, store, trust = good_packages[signed_by]
    assert jarsigner_verify(pkg, store).returncode == 0
    assert apksigner_verify(pkg).returncode == 0
    assert verify_package(pkg, trust=trust).app_class is AppClass.SIGNED


@pytest.mark.parametrize("signed_by", ["kaisec", "jarsigner"])
@pytest.mark.parametrize("how", sorted(TAMPERING))
def test_same_tampering_all_three_refuse(
    good_packages: dict[str, tuple[Path, Path, Path]], tmp_path: Path, how: str, signed_by: str
) -> None:
    good, store, trust = good_packages[signed_by]
    bad = tmp_path / "bad.zip"
    bad.write_bytes(zip_bytes(_tamper(read_entries(good), how)))
    j = jarsigner_verify(bad, store)
    assert j.returncode != 0, j.stdout
    a = apksigner_verify(bad)
    assert a.returncode != 0, a.stdout
    with pytest.raises(KaisecError) as info:
        verify_package(bad, trust=trust)
    assert info.value.code == TAMPERING[how]


def test_cli_verify_of_a_jarsigner_package(
    tmp_path: Path, openssl_ca: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from kaisec._cli import main

    ca, keystore = openssl_ca
    jarsign(_unsigned(tmp_path), tmp_path / "s.zip", keystore)
    rc = main(["--home", str(tmp_path / "home"), "verify", "--json", "--trust",
               str(trust_dir(tmp_path, ca, "signed")), str(tmp_path / "s.zip")])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["valid"] is True and out["class"] == "signed"
    assert out["signer"]["subject"] == "CN=OpenSSL Signer"


def test_section_digests_match_jarsigners(
    good_packages: dict[str, tuple[Path, Path, Path]],
) -> None:
    from kaisec._internal import jarsig

    pkg, _, _ = good_packages["jarsigner"]
    files = dict(read_entries(pkg))
    mf = jarsig.parse_manifest(files["META-INF/MANIFEST.MF"])
    sf = jarsig.parse_signature_file(files["META-INF/SIGNER.SF"])
    assert set(sf.sections) == set(mf.sections)
    for name, section in mf.sections.items():
        ours = hashlib.sha256(mf.data[section.start : section.end]).digest()
        assert sf.sections[name].digests() == {"sha256": ours}
    main = hashlib.sha256(mf.data[mf.main.start : mf.main.end]).digest()
    assert sf.main_attributes_digests == {"sha256": main}
    ours_sf = jarsig.build_signature_file(mf, algorithms=["sha256"], created_by="x")
    theirs = sf.data.split(b"\r\n", 2)[2]  # past Signature-Version and Created-By
    assert ours_sf.split(b"\r\n", 2)[2] == theirs
