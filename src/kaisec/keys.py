"""Signing keys and certificates: the development PKI and loading key material.

``init_dev_pki`` makes what ``kaisec keys init`` writes: a store root and a
store signer (for ``signed`` apps), an OEM root and an OEM signer (for
``core`` apps). Roots are CAs (basicConstraints cA, path length 0,
keyCertSign/cRLSign); signers are end entities with digitalSignature and the
codeSigning extended key usage, which ``verify_package`` requires. A
signer's ``.pem`` holds its chain (signer, then root), which ``kaisec sign``
carries in the signature block.

The roots' private keys are not written: a development PKI never needs to
issue a second signer, and a root key on disk is one more secret to leak.
Run ``keys init`` again into a new folder for new ones. Private keys are
PKCS#8 PEM, encrypted when a passphrase is given, created owner-only
(0600) and never over an existing file.

This is development material: store and OEM roots of real devices are
kept offline by their owners, and kaisec only ever needs their certificates.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kaisec.errors import InvalidKeyError, WeakAlgorithmError

__all__ = [
    "DEV_PKI_FILES",
    "DevPki",
    "KeyType",
    "init_dev_pki",
    "key_is_encrypted",
    "load_certificates",
    "load_private_key",
]

KeyType = Literal["ec", "rsa"]

#: The files ``init_dev_pki`` writes, in order.
DEV_PKI_FILES = (
    "store-root.pem",
    "store-signer.key",
    "store-signer.pem",
    "oem-root.pem",
    "oem-signer.key",
    "oem-signer.pem",
)
_ROOT_DAYS = 10 * 365
_SIGNER_DAYS = 2 * 365
_RSA_BITS = 3072


@dataclass(frozen=True)
class DevPki:
    """Where ``init_dev_pki`` wrote the development PKI."""

    directory: Path
    store_root: Path
    store_signer_key: Path
    store_signer_cert: Path
    oem_root: Path
    oem_signer_key: Path
    oem_signer_cert: Path


def _new_key(key_type: KeyType) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS)
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"unknown key type {key_type!r}: use 'ec' or 'rsa'")


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kaisec development"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _make_pair(
    label: str, key_type: KeyType, now: datetime
) -> tuple[x509.Certificate, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, x509.Certificate]:
    root_key = _new_key(key_type)
    root_name = _name(f"kaisec dev {label} root")
    root_ski = x509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=_ROOT_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(root_ski, critical=False)
        .sign(root_key, hashes.SHA256())
    )
    signer_key = _new_key(key_type)
    signer = (
        x509.CertificateBuilder()
        .subject_name(_name(f"kaisec dev {label} signer"))
        .issuer_name(root_name)
        .public_key(signer_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=_SIGNER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(signer_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski),
            critical=False,
        )
        .sign(root_key, hashes.SHA256())
    )
    return root, signer_key, signer


def _write_new(path: Path, data: bytes, mode: int) -> None:
    # O_EXCL: never replace or write through an existing file or symlink.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def init_dev_pki(
    out_dir: str | os.PathLike[str],
    *,
    passphrase: bytes | None = None,
    key_type: KeyType = "rsa",
    now: datetime | None = None,
) -> DevPki:
    """Create a development PKI in ``out_dir`` (created if missing, owner-only).

    Args:
        out_dir: the folder for the six files of ``DEV_PKI_FILES``.
        passphrase: encrypt the signers' private keys with it (PKCS#8, best
            available encryption); None writes them unencrypted.
        key_type: ``rsa`` (3072 bits, the default: what KaiOS devices and
            apksigner's API 19-20 checks accept) or ``ec`` (P-256: smaller,
            faster, jarsigner and Android 5+).
        now: the start of the validity periods (default: now).

    Raises:
        FileExistsError: one of the files exists already (nothing is written).
        ValueError: an unknown key type or an empty passphrase.
    """
    if passphrase is not None and not passphrase:
        raise ValueError("the passphrase is empty")
    directory = Path(out_dir)
    paths = [directory / name for name in DEV_PKI_FILES]
    existing = [str(p) for p in paths if p.exists() or p.is_symlink()]
    if existing:
        raise FileExistsError(f"refusing to overwrite {', '.join(existing)}")
    when = (now or datetime.now(UTC)).replace(microsecond=0)
    store = _make_pair("store", key_type, when)
    oem = _make_pair("oem", key_type, when)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    pem = serialization.Encoding.PEM
    blobs: list[tuple[bytes, int]] = []
    for root, key, signer in (store, oem):
        blobs.append((root.public_bytes(pem), 0o644))
        blobs.append((key.private_bytes(pem, serialization.PrivateFormat.PKCS8, encryption), 0o600))
        # The signer's file is its chain (signer, root): jarsigner -strict wants a
        # certificate of its truststore inside the signature block.
        blobs.append((signer.public_bytes(pem) + root.public_bytes(pem), 0o644))
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    written: list[Path] = []
    try:
        for path, (data, mode) in zip(paths, blobs, strict=True):
            _write_new(path, data, mode)
            written.append(path)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return DevPki(directory, *paths)


def load_private_key(
    path: str | os.PathLike[str], *, passphrase: bytes | None = None
) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """Load a signing key (PEM: PKCS#8, PKCS#1 or SEC1; or DER PKCS#8).

    Raises:
        InvalidKeyError: INVALID_KEY, unreadable, encrypted without the right
            passphrase, or not an RSA/EC key on P-256 or P-384.
        WeakAlgorithmError: WEAK_ALGORITHM, RSA under 2048 bits.
    """
    from kaisec._internal.pkcs7 import check_signing_key

    where = os.fspath(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidKeyError(f"unreadable key file {where!r}: {exc.strerror}") from exc
    try:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_private_key(data, password=passphrase)
        else:
            key = serialization.load_der_private_key(data, password=passphrase)
    except TypeError as exc:  # encrypted without a passphrase, or a passphrase for a clear key
        raise InvalidKeyError(f"key file {where!r}: {exc}", path=where) from exc
    except ValueError as exc:
        raise InvalidKeyError(
            f"malformed key file {where!r}: not a private key, or a wrong passphrase", path=where
        ) from exc
    try:
        return check_signing_key(key)
    except WeakAlgorithmError:
        raise
    except TypeError as exc:
        raise InvalidKeyError(f"unsupported key in {where!r}: {exc}", path=where) from exc


def key_is_encrypted(path: str | os.PathLike[str]) -> bool:
    """Whether a PEM key file is encrypted (so a passphrase must be asked for)."""
    try:
        head = Path(path).read_bytes()[:4096]
    except OSError:
        return False
    return b"ENCRYPTED" in head


def load_certificates(*paths: str | os.PathLike[str]) -> list[x509.Certificate]:
    """Every certificate in the given PEM (or DER) files, in order.

    Raises:
        InvalidKeyError: INVALID_KEY, a file is unreadable or holds no certificate.
    """
    out: list[x509.Certificate] = []
    for path in paths:
        where = os.fspath(path)
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise InvalidKeyError(f"unreadable certificate file {where!r}: {exc.strerror}") from exc
        try:
            certs: Sequence[x509.Certificate]
            if b"-----BEGIN" in data:
                certs = x509.load_pem_x509_certificates(data)
            else:
                certs = [x509.load_der_x509_certificate(data)]
        except (ValueError, x509.InvalidVersion) as exc:
            raise InvalidKeyError(
                f"malformed certificate file {where!r}: no certificate in it", path=where
            ) from exc
        out.extend(certs)
    return out
