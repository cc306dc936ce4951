"""The development PKI (kaisec.keys) and the trust store (kaisec.trust)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from kaisec.errors import CertificateExpiredError, ConfigError, InvalidKeyError, WeakAlgorithmError
from kaisec.keys import (
    DEV_PKI_FILES,
    init_dev_pki,
    key_is_encrypted,
    load_certificates,
    load_private_key,
)
from kaisec.package import verify_package
from kaisec.trust import TrustStore
from kaisec.types import AppClass

from .conftest import DAY, NOW, Pki, Signer, app_files, ec_key, make_cert, signed_package


def test_dev_pki_files_and_extensions(tmp_path: Path) -> None:
    pki = init_dev_pki(tmp_path / "keys", key_type="ec")
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == sorted(DEV_PKI_FILES)
    for key_file in (pki.store_signer_key, pki.oem_signer_key):
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert key_file.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    root = load_certificates(pki.store_root)[0]
    chain = load_certificates(pki.store_signer_cert)
    assert len(chain) == 2 and chain[1] == root
    leaf = chain[0]
    bc = root.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert bc.ca and bc.path_length == 0
    ku = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_cert_sign
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CODE_SIGNING]
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(load_private_key(pki.oem_signer_key), ec.EllipticCurvePrivateKey)


def test_dev_pki_signs_packages_of_both_classes(tmp_path: Path) -> None:
    pki = init_dev_pki(tmp_path / "keys", key_type="ec")
    store = TrustStore.load(tmp_path / "trust")
    store.add(pki.store_root, AppClass.SIGNED)
    store.add(pki.oem_root, AppClass.CORE)
    for key, cert, files, expected in (
        (pki.store_signer_key, pki.store_signer_cert, app_files(), AppClass.SIGNED),
        (pki.oem_signer_key, pki.oem_signer_cert, app_files(core=True), AppClass.CORE),
    ):
        signer = Signer(load_private_key(key), load_certificates(cert))
        pkg = signed_package(tmp_path, files, signer=signer)
        assert verify_package(pkg, trust=TrustStore.load(tmp_path / "trust")).app_class is expected


def test_dev_pki_rsa_and_passphrase(tmp_path: Path) -> None:
    pki = init_dev_pki(tmp_path / "keys", key_type="rsa", passphrase=b"s3cret")
    assert key_is_encrypted(pki.store_signer_key)
    assert not key_is_encrypted(pki.store_root)
    key = load_private_key(pki.store_signer_key, passphrase=b"s3cret")
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 3072
    with pytest.raises(InvalidKeyError):
        load_private_key(pki.store_signer_key)
    with pytest.raises(InvalidKeyError):
        load_private_key(pki.store_signer_key, passphrase=b"wrong")


def test_dev_pki_never_overwrites(tmp_path: Path) -> None:
    out = tmp_path / "keys"
    out.mkdir()
    (out / "oem-signer.key").write_bytes(b"mine")
    with pytest.raises(FileExistsError):
        init_dev_pki(out, key_type="ec")
    assert sorted(p.name for p in out.iterdir()) == ["oem-signer.key"]
    assert (out / "oem-signer.key").read_bytes() == b"mine"
    with pytest.raises(ValueError):
        init_dev_pki(tmp_path / "other", passphrase=b"")


def test_load_key_refusals(tmp_path: Path) -> None:
    (tmp_path / "junk").write_bytes(b"not a key")
    with pytest.raises(InvalidKeyError):
        load_private_key(tmp_path / "junk")
    with pytest.raises(InvalidKeyError):
        load_private_key(tmp_path / "missing")
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = weak.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "weak.key").write_bytes(pem)
    with pytest.raises(WeakAlgorithmError):
        load_private_key(tmp_path / "weak.key")
    p521 = ec.generate_private_key(ec.SECP521R1()).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "p521.der").write_bytes(p521)
    with pytest.raises(InvalidKeyError, match="curve"):
        load_private_key(tmp_path / "p521.der")
    with pytest.raises(InvalidKeyError):
        load_certificates(tmp_path / "junk")


# --- the trust store ------------------------------------------------------------------------------


def _pem(path: Path, *certs: x509.Certificate) -> Path:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    return path


def test_add_and_list(pki: Pki, tmp_path: Path) -> None:
    store = TrustStore.load(tmp_path / "trust")
    assert len(store) == 0
    root = store.add(_pem(tmp_path / "r.pem", pki.store_root), AppClass.SIGNED)
    assert root.path == tmp_path / "trust" / "signed" / f"{root.fingerprint}.pem"
    assert store.add(tmp_path / "r.pem", AppClass.SIGNED) == root  # idempotent
    store.add(_pem(tmp_path / "o.pem", pki.oem_root), AppClass.CORE)
    listed = TrustStore.load(tmp_path / "trust").list()
    assert [(r.app_class, r.subject) for r in listed] == [
        (AppClass.CORE, "CN=Test OEM Root"),
        (AppClass.SIGNED, "CN=Test Store Root"),
    ]
    assert listed[1].to_dict()["fingerprint"] == root.fingerprint
    assert not list((tmp_path / "trust").rglob("*.tmp"))


def test_add_refusals(pki: Pki, tmp_path: Path) -> None:
    store = TrustStore.load(tmp_path / "trust")
    with pytest.raises(InvalidKeyError, match="not a CA"):
        store.add(_pem(tmp_path / "leaf.pem", pki.store.cert), AppClass.SIGNED)
    with pytest.raises(InvalidKeyError, match="one certificate"):
        store.add(_pem(tmp_path / "two.pem", pki.store_root, pki.oem_root), AppClass.SIGNED)
    (tmp_path / "junk.pem").write_bytes(
        b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"
    )
    with pytest.raises(InvalidKeyError):
        store.add(tmp_path / "junk.pem", AppClass.SIGNED)
    old = make_cert("Old Root", ec_key(), ca=True, not_before=NOW - 9 * DAY, not_after=NOW - DAY)
    with pytest.raises(CertificateExpiredError):
        store.add(_pem(tmp_path / "old.pem", old), AppClass.SIGNED)
    with pytest.raises(ValueError):
        store.add(_pem(tmp_path / "r.pem", pki.store_root), AppClass.PWA)
    assert not (tmp_path / "trust").exists() or not list((tmp_path / "trust").rglob("*.pem"))


def test_broken_store_fails_closed(pki: Pki, tmp_path: Path) -> None:
    folder = tmp_path / "trust" / "signed"
    folder.mkdir(parents=True)
    _pem(folder / "leaf.pem", pki.store.cert)
    with pytest.raises(ConfigError, match="not a CA"):
        TrustStore.load(tmp_path / "trust")
    (folder / "leaf.pem").write_bytes(b"garbage")
    with pytest.raises(ConfigError):
        TrustStore.load(tmp_path / "trust")
    (folder / "leaf.pem").unlink()
    (folder / "README.txt").write_text("ignored")
    _pem(folder / "bundle.pem", pki.store_root, pki.oem_root)  # several roots in one file are fine
    assert len(TrustStore.load(tmp_path / "trust")) == 2


def test_in_memory_store(pki: Pki) -> None:
    with pytest.raises(ValueError):
        TrustStore.from_certificates([(pki.store_root, AppClass.PWA)])
    store = TrustStore.from_certificates([(pki.store_root, AppClass.SIGNED)])
    with pytest.raises(ValueError):
        store.add("x", AppClass.SIGNED)
