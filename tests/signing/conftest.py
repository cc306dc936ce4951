"""Keys, certificates and packages for the signing tests, all made here with ``cryptography``.

Nothing binary is committed: every key, certificate and package is built
at test time, so each hostile case says in code what it breaks.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import algos, cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kaisec._internal import jarsig
from kaisec._internal.zipsafe import SafeZipReader
from kaisec._internal.zipwrite import write_zip
from kaisec.package import sign_package
from kaisec.trust import TrustStore
from kaisec.types import AppClass

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
DAY = dt.timedelta(days=1)

Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ku(*, sign: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def make_cert(
    subject: str,
    key: Key,
    *,
    issuer: tuple[x509.Certificate, Key] | None = None,
    ca: bool | None = False,
    path_length: int | None = None,
    eku: Sequence[x509.ObjectIdentifier] | None = (ExtendedKeyUsageOID.CODE_SIGNING,),
    key_usage: x509.KeyUsage | bool | None = True,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    hash_alg: hashes.HashAlgorithm | None = None,
    extra: Iterable[tuple[x509.ExtensionType, bool]] = (),
) -> x509.Certificate:
    """A certificate; defaults make a code-signing leaf (or a root with ``ca=True``)."""
    issuer_name, issuer_key = (issuer[0].subject, issuer[1]) if issuer else (name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - 30 * DAY)
        .not_valid_after(not_after or NOW + 365 * DAY)
    )
    if ca is not None:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True
        )
    if key_usage is True:
        key_usage = _ku(cert_sign=True) if ca else _ku(sign=True)
    if isinstance(key_usage, x509.KeyUsage):
        builder = builder.add_extension(key_usage, critical=True)
    if eku is not None and not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    for ext, critical in extra:
        builder = builder.add_extension(ext, critical=critical)
    return builder.sign(issuer_key, hash_alg or hashes.SHA256())


def resign_sha1(cert: x509.Certificate, issuer_key: Key) -> x509.Certificate:
    """The same certificate signed with SHA-1 (cryptography no longer makes those)."""
    der = serialization.Encoding.DER
    acert = asn1_x509.Certificate.load(cert.public_bytes(der))
    tbs = acert["tbs_certificate"]
    if isinstance(issuer_key, rsa.RSAPrivateKey):
        alg = "sha1_rsa"
    else:
        alg = "sha1_ecdsa"
    tbs["signature"] = algos.SignedDigestAlgorithm({"algorithm": alg})
    tbs_der = tbs.dump(force=True)
    if isinstance(issuer_key, rsa.RSAPrivateKey):
        sig = issuer_key.sign(tbs_der, padding.PKCS1v15(), hashes.SHA1())
    else:
        sig = issuer_key.sign(tbs_der, ec.ECDSA(hashes.SHA1()))
    new = asn1_x509.Certificate(
        {
            "tbs_certificate": asn1_x509.TbsCertificate.load(tbs_der),
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": alg}),
            "signature_value": sig,
        }
    )
    return x509.load_der_x509_certificate(new.dump())


def ec_key(curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve or ec.SECP256R1())


@dataclass
class Signer:
    key: Key
    chain: list[x509.Certificate]

    @property
    def cert(self) -> x509.Certificate:
        return self.chain[0]


@dataclass
class Pki:
    store_root: x509.Certificate
    store_root_key: Key
    oem_root: x509.Certificate
    oem_root_key: Key
    store: Signer
    oem: Signer
    store_rsa: Signer  # RSA 2048: what apksigner accepts at API 19
    other_root: x509.Certificate
    other: Signer  # chains to a root nobody trusts
    cache: dict[str, Any] = field(default_factory=dict)

    def trust(self) -> TrustStore:
        return TrustStore.from_certificates(
            [(self.store_root, AppClass.SIGNED), (self.oem_root, AppClass.CORE)]
        )

    def leaf(self, label: str = "leaf", *, under: str = "store", **kw: Any) -> Signer:
        """A fresh signer under the store (or OEM) root with ``make_cert`` overrides."""
        root, root_key = (
            (self.store_root, self.store_root_key)
            if under == "store"
            else (self.oem_root, self.oem_root_key)
        )
        key = kw.pop("key", None) or ec_key()
        cert = make_cert(label, key, issuer=(root, root_key), **kw)
        return Signer(key, [cert])

    def write_trust_dir(self, folder: Path) -> Path:
        for sub, cert in (("signed", self.store_root), ("core", self.oem_root)):
            (folder / sub).mkdir(parents=True, exist_ok=True)
            (folder / sub / "root.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return folder


@pytest.fixture(scope="session")
def pki() -> Pki:
    store_root_key, oem_root_key, other_root_key = ec_key(), ec_key(), ec_key()
    store_root = make_cert("Test Store Root", store_root_key, ca=True)
    oem_root = make_cert("Test OEM Root", oem_root_key, ca=True)
    other_root = make_cert("Unknown Root", other_root_key, ca=True)

    def signer(cn: str, root: x509.Certificate, root_key: Key, key: Key | None = None) -> Signer:
        k = key or ec_key()
        return Signer(k, [make_cert(cn, k, issuer=(root, root_key))])

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return Pki(
        store_root=store_root,
        store_root_key=store_root_key,
        oem_root=oem_root,
        oem_root_key=oem_root_key,
        store=signer("Test Store Signer", store_root, store_root_key),
        oem=signer("Test OEM Signer", oem_root, oem_root_key),
        store_rsa=Signer(
            rsa_key,
            [
                make_cert("Test Store RSA Signer", rsa_key, issuer=(store_root, store_root_key)),
                store_root,
            ],
        ),
        other_root=other_root,
        other=signer("Test Other Signer", other_root, other_root_key),
    )


# --- app content and packages --------------------------------------------------------------


def manifest_bytes(**b2g: Any) -> bytes:
    doc: dict[str, Any] = {"name": "Test App", "start_url": "/index.html"}
    doc["b2g_features"] = {"version": "1.0.0", **b2g}
    return json.dumps(doc).encode()


def app_files(**b2g: Any) -> dict[str, bytes]:
    return {
        "manifest.webmanifest": manifest_bytes(**b2g),
        "index.html": b"<!doctype html><title>test</title><script src=js/app.js></script>",
        "js/app.js": b"console.log('hello');\n" * 50,
        "img/icon.png": bytes(range(256)) * 8,
        "style/app.css": b"body { color: #333 }\n",
    }


def zip_bytes(files: Iterable[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    write_zip(buf, list(files))
    return buf.getvalue()


def read_entries(data: bytes | Path) -> list[tuple[str, bytes]]:
    """Every entry of a package, in order, as (name, content)."""
    source: Any = io.BytesIO(data) if isinstance(data, bytes) else data
    with SafeZipReader(source) as zr:
        return [(e.name, zr.read(e, max_size=e.size)) for e in zr.entries]


def signed_package(
    tmp_path: Path,
    files: dict[str, bytes] | None = None,
    *,
    signer: Signer,
    name: str = "app.zip",
    **kw: Any,
) -> Path:
    """Write ``files`` as a package and sign it with ``signer``; returns its path."""
    unsigned = tmp_path / f"unsigned-{name}"
    unsigned.write_bytes(zip_bytes(sorted((files or app_files()).items())))
    out = tmp_path / name
    sign_package(unsigned, out, key=signer.key, cert_chain=signer.chain, **kw)
    unsigned.unlink()
    return out


# --- hand-made signatures (for what kaisec's own signer refuses to produce) -------------------


def raw_block(
    data: bytes,
    *,
    key: Key,
    chain: Sequence[x509.Certificate],
    digest: str = "sha256",
    signed_attrs: bool = True,
    attrs: list[cms.CMSAttribute] | None = None,
    message_digest: bytes | None = None,
    content_type: str = "data",
    signers: int = 1,
    embed: bool = False,
) -> bytes:
    """A PKCS#7 block with every knob: SHA-1, no signed attributes, odd attributes..."""
    import hashlib

    hash_alg = {"sha1": hashes.SHA1(), "sha256": hashes.SHA256(), "sha384": hashes.SHA384()}[digest]
    md = message_digest if message_digest is not None else hashlib.new(digest, data).digest()
    if attrs is None:
        attrs = [
            cms.CMSAttribute({"type": "content_type", "values": [content_type]}),
            cms.CMSAttribute({"type": "message_digest", "values": [md]}),
        ]
    attrs = sorted(attrs, key=lambda a: a.dump())
    sattrs = cms.CMSAttributes(attrs)
    to_sign = sattrs.dump() if signed_attrs else data
    if isinstance(key, rsa.RSAPrivateKey):
        sig = key.sign(to_sign, padding.PKCS1v15(), hash_alg)
        sig_alg = "rsassa_pkcs1v15"
    else:
        sig = key.sign(to_sign, ec.ECDSA(hash_alg))
        sig_alg = f"{digest}_ecdsa"
    der = serialization.Encoding.DER
    acerts = [asn1_x509.Certificate.load(c.public_bytes(der)) for c in chain]
    info: dict[str, Any] = {
        "version": "v1",
        "sid": cms.SignerIdentifier(
            {
                "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                    {
                        "issuer": acerts[0]["tbs_certificate"]["issuer"],
                        "serial_number": acerts[0]["tbs_certificate"]["serial_number"],
                    }
                )
            }
        ),
        "digest_algorithm": algos.DigestAlgorithm({"algorithm": digest}),
        "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": sig_alg}),
        "signature": sig,
    }
    if signed_attrs:
        info["signed_attrs"] = sattrs
    signer_info = cms.SignerInfo(info)
    encap: dict[str, Any] = {"content_type": "data"}
    if embed:
        encap["content"] = data
    sd = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": digest})],
            "encap_content_info": encap,
            "certificates": acerts,
            "signer_infos": [signer_info] * signers,
        }
    )
    out: bytes = cms.ContentInfo({"content_type": "signed_data", "content": sd}).dump()
    return out


def custom_signed(
    files: dict[str, bytes],
    *,
    signer: Signer,
    manifest: bytes | None = None,
    sf: bytes | None = None,
    block: bytes | None = None,
    names: tuple[str, str, str] = (
        "META-INF/MANIFEST.MF",
        "META-INF/KAISEC.SF",
        "META-INF/KAISEC.EC",
    ),
    legacy_algorithms: Sequence[str] = ("sha256",),
    block_fn: Callable[[bytes], bytes] | None = None,
) -> bytes:
    """A package whose signature files are given (or built the standard way around what is)."""
    import hashlib

    if manifest is None:
        listed = [
            (n, {a: hashlib.new(a, d).digest() for a in legacy_algorithms})
            for n, d in sorted(files.items())
        ]
        manifest = jarsig.build_manifest(listed, algorithms=legacy_algorithms, created_by="test")
    if sf is None:
        # Only the whole-manifest digest: works for manifests our parser refuses, too.
        import base64

        lines = ["Signature-Version: 1.0", "Created-By: test"] + [
            f"{'SHA1' if a == 'sha1' else 'SHA-256'}-Digest-Manifest: "
            + base64.b64encode(hashlib.new(a, manifest).digest()).decode()
            for a in legacy_algorithms
        ]
        sf = ("\r\n".join(lines) + "\r\n\r\n").encode()
    if block is None:
        if block_fn is not None:
            block = block_fn(sf)
        else:
            from kaisec._internal.pkcs7 import sign_detached

            block = sign_detached(sf, key=signer.key, chain=signer.chain)  # type: ignore[arg-type]
    entries = [(names[0], manifest), (names[1], sf), (names[2], block), *sorted(files.items())]
    return zip_bytes(entries)
