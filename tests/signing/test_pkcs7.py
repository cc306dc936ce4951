"""The signature block: building and verifying detached PKCS#7 (kaisec._internal.pkcs7)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from kaisec._internal.pkcs7 import certificate_fingerprint, sign_detached, verify_detached
from kaisec.errors import (
    CertificateExpiredError,
    InvalidSignatureError,
    KaisecError,
    UntrustedSignerError,
    WeakAlgorithmError,
)
from kaisec.types import AppClass

from .conftest import DAY, NOW, Pki, Signer, ec_key, make_cert, raw_block, resign_sha1

DATA = b"Signature-Version: 1.0\r\n\r\n"


def anchors(pki: Pki) -> list[tuple[x509.Certificate, AppClass]]:
    return [(pki.store_root, AppClass.SIGNED), (pki.oem_root, AppClass.CORE)]


@pytest.mark.parametrize("kind", ["ec256", "ec384", "rsa2048"])
def test_round_trip(pki: Pki, kind: str) -> None:
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if kind == "rsa2048":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec_key(ec.SECP384R1() if kind == "ec384" else ec.SECP256R1())
    leaf = make_cert("rt", key, issuer=(pki.oem_root, pki.oem_root_key))
    block = sign_detached(DATA, key=key, chain=[leaf])
    info = verify_detached(block, DATA, anchors=anchors(pki))
    assert info.app_class is AppClass.CORE
    assert info.subject == "CN=rt"
    assert (
        info.fingerprint == certificate_fingerprint(leaf) == leaf.fingerprint(hashes.SHA256()).hex()
    )
    assert info.chain == (leaf, pki.oem_root)


def test_openssl_accepts_our_blocks(pki: Pki, tmp_path: Path) -> None:
    block = sign_detached(DATA, key=pki.store.key, chain=pki.store.chain)  # type: ignore[arg-type]
    (tmp_path / "b.p7").write_bytes(block)
    (tmp_path / "d").write_bytes(DATA)
    (tmp_path / "ca.pem").write_bytes(pki.store_root.public_bytes(serialization.Encoding.PEM))
    proc = subprocess.run(
        ["openssl", "cms", "-verify", "-inform", "DER", "-in", "b.p7", "-content", "d",
         "-CAfile", "ca.pem", "-purpose", "any", "-binary", "-out", "/dev/null"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def test_signing_checks_key(pki: Pki) -> None:
    with pytest.raises(ValueError, match="does not match"):
        sign_detached(DATA, key=pki.oem.key, chain=pki.store.chain)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        sign_detached(DATA, key=pki.oem.key, chain=[])  # type: ignore[arg-type]
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(WeakAlgorithmError):
        sign_detached(DATA, key=weak, chain=[make_cert("w", weak)])
    with pytest.raises(TypeError):
        sign_detached(DATA, key=ec_key(ec.SECP521R1()), chain=pki.store.chain)


def test_intermediate_chain(pki: Pki) -> None:
    ikey, lkey = ec_key(), ec_key()
    inter = make_cert(
        "Inter", ikey, issuer=(pki.store_root, pki.store_root_key), ca=True, path_length=0
    )
    leaf = make_cert("Leaf", lkey, issuer=(inter, ikey))
    block = sign_detached(DATA, key=lkey, chain=[leaf, inter])
    assert verify_detached(block, DATA, anchors=anchors(pki)).chain == (leaf, inter, pki.store_root)
    # Without the intermediate in the block, no path.
    block = sign_detached(DATA, key=lkey, chain=[leaf])
    with pytest.raises(UntrustedSignerError):
        verify_detached(block, DATA, anchors=anchors(pki))


def test_root_in_block_is_recognised(pki: Pki) -> None:
    block = sign_detached(DATA, key=pki.store.key, chain=[pki.store.cert, pki.store_root])  # type: ignore[arg-type]
    assert verify_detached(block, DATA, anchors=anchors(pki)).chain == (
        pki.store.cert,
        pki.store_root,
    )


def test_root_in_both_classes_proves_core(pki: Pki) -> None:
    block = sign_detached(DATA, key=pki.store.key, chain=pki.store.chain)  # type: ignore[arg-type]
    both = [(pki.store_root, AppClass.SIGNED), (pki.store_root, AppClass.CORE)]
    assert verify_detached(block, DATA, anchors=both).app_class is AppClass.CORE


def test_time_is_injectable(pki: Pki) -> None:
    block = sign_detached(DATA, key=pki.store.key, chain=pki.store.chain)  # type: ignore[arg-type]
    with pytest.raises(CertificateExpiredError, match="expired"):
        verify_detached(block, DATA, anchors=anchors(pki), now=NOW + 400 * DAY)
    with pytest.raises(CertificateExpiredError, match="not yet valid"):
        verify_detached(block, DATA, anchors=anchors(pki), now=NOW - 40 * DAY)
    with pytest.raises(ValueError, match="timezone"):
        verify_detached(block, DATA, anchors=anchors(pki), now=NOW.replace(tzinfo=None))


def _leaf(pki: Pki, **kw: object) -> Signer:
    return pki.leaf("Case Leaf", **kw)  # type: ignore[arg-type]


def _rsa(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _block_for(signer: Signer, **kw: object) -> bytes:
    return raw_block(DATA, key=signer.key, chain=signer.chain, **kw)  # type: ignore[arg-type]


def _case_expired_intermediate(pki: Pki) -> bytes:
    ikey, lkey = ec_key(), ec_key()
    inter = make_cert("I", ikey, issuer=(pki.store_root, pki.store_root_key), ca=True,
                      not_after=NOW - DAY)  # fmt: skip
    return raw_block(DATA, key=lkey, chain=[make_cert("L", lkey, issuer=(inter, ikey)), inter])


def _case_non_ca_intermediate(pki: Pki) -> bytes:
    ikey, lkey = ec_key(), ec_key()
    inter = make_cert("I", ikey, issuer=(pki.store_root, pki.store_root_key), ca=False)
    return raw_block(DATA, key=lkey, chain=[make_cert("L", lkey, issuer=(inter, ikey)), inter])


def _case_pathlen(pki: Pki) -> bytes:
    # The store root says path length 0 is not set here; make a root with 0 and two levels.
    rkey, ikey, lkey = ec_key(), ec_key(), ec_key()
    root = make_cert("PL Root", rkey, ca=True, path_length=0)
    inter = make_cert("PL I", ikey, issuer=(root, rkey), ca=True)
    leaf = make_cert("PL L", lkey, issuer=(inter, ikey))
    pki.cache["pl_root"] = root
    return raw_block(DATA, key=lkey, chain=[leaf, inter])


def _case_intermediate_eku(pki: Pki) -> bytes:
    ikey, lkey = ec_key(), ec_key()
    inter = make_cert("I", ikey, issuer=(pki.store_root, pki.store_root_key), ca=True,
                      extra=[(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)])  # fmt: skip
    return raw_block(DATA, key=lkey, chain=[make_cert("L", lkey, issuer=(inter, ikey)), inter])


CASES = {
    "garbage": (lambda p: b"\x30\x03\x02\x01", InvalidSignatureError),
    "empty": (lambda p: b"", InvalidSignatureError),
    "not signed data": (
        lambda p: cms.ContentInfo({"content_type": "data", "content": b"x"}).dump(),
        InvalidSignatureError,
    ),
    "bad signature": (lambda p: _flip_signature(p), InvalidSignatureError),
    "message digest mismatch": (
        lambda p: _block_for(p.store, message_digest=b"\0" * 32),
        InvalidSignatureError,
    ),
    "content type not data": (
        lambda p: _block_for(p.store, content_type="signed_data"),
        InvalidSignatureError,
    ),
    "no signed attributes": (
        lambda p: _block_for(p.store, signed_attrs=False),
        InvalidSignatureError,
    ),
    "no message digest": (
        lambda p: _block_for(
            p.store, attrs=[cms.CMSAttribute({"type": "content_type", "values": ["data"]})]
        ),
        InvalidSignatureError,
    ),
    "duplicate attribute": (
        lambda p: _block_for(
            p.store,
            attrs=[
                cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
                cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
                cms.CMSAttribute({"type": "message_digest", "values": [b"\0" * 32]}),
            ],
        ),
        InvalidSignatureError,
    ),
    "two signers": (lambda p: _block_for(p.store, signers=2), InvalidSignatureError),
    "embedded content": (lambda p: _block_for(p.store, embed=True), InvalidSignatureError),
    "signer cert missing": (lambda p: _without_signer_cert(p), InvalidSignatureError),
    "sha1 digest": (lambda p: _block_for(p.store, digest="sha1"), WeakAlgorithmError),
    "rsa 1024 signer": (
        lambda p: _block_for(_leaf(p, key=_rsa(1024))),
        WeakAlgorithmError,
    ),
    "sha1-signed certificate": (lambda p: _block_for(_sha1_leaf(p)), WeakAlgorithmError),
    "unknown root": (lambda p: _block_for(p.other), UntrustedSignerError),
    "self-signed signer": (
        lambda p: _block_for(Signer(k := ec_key(), [make_cert("Self", k)])),
        UntrustedSignerError,
    ),
    "no codeSigning EKU": (
        lambda p: _block_for(_leaf(p, eku=[ExtendedKeyUsageOID.SERVER_AUTH])),
        UntrustedSignerError,
    ),
    "no EKU at all": (lambda p: _block_for(_leaf(p, eku=None)), UntrustedSignerError),
    "key usage without digitalSignature": (
        lambda p: _block_for(
            _leaf(
                p,
                key_usage=x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=True,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
            )
        ),
        UntrustedSignerError,
    ),
    "unknown critical extension": (
        lambda p: _block_for(
            _leaf(
                p,
                extra=[
                    (x509.UnrecognizedExtension(ObjectIdentifier("1.2.3.4"), b"\x05\x00"), True)
                ],
            )
        ),
        UntrustedSignerError,
    ),
    "non-CA intermediate": (_case_non_ca_intermediate, UntrustedSignerError),
    "intermediate EKU excludes code signing": (_case_intermediate_eku, UntrustedSignerError),
    "expired leaf": (lambda p: _block_for(_leaf(p, not_after=NOW - DAY)), CertificateExpiredError),
    "leaf not yet valid": (
        lambda p: _block_for(_leaf(p, not_before=NOW + DAY, not_after=NOW + 9 * DAY)),
        CertificateExpiredError,
    ),
    "expired intermediate": (_case_expired_intermediate, CertificateExpiredError),
}


def _sha1_leaf(p: Pki, **kw: object) -> Signer:
    signer = _leaf(p, **kw)
    return Signer(signer.key, [resign_sha1(signer.cert, p.store_root_key)])


def _flip_signature(p: Pki) -> bytes:
    info = cms.ContentInfo.load(_block_for(p.store))
    si = info["content"]["signer_infos"][0]
    sig = bytearray(si["signature"].native)
    sig[-5] ^= 1
    si["signature"] = bytes(sig)
    return info.dump(force=True)


def _without_signer_cert(p: Pki) -> bytes:
    block = _block_for(Signer(p.store.key, [p.store.cert, p.store_root]))
    info = cms.ContentInfo.load(block)
    certs = info["content"]["certificates"]  # a SET OF: DER order, not ours
    info["content"]["certificates"] = [
        c for c in certs if c.chosen.subject.native["common_name"] == "Test Store Root"
    ]
    return info.dump(force=True)


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused(pki: Pki, case: str) -> None:
    make, error = CASES[case]
    with pytest.raises(error):
        verify_detached(make(pki), DATA, anchors=anchors(pki))


def test_path_length_enforced(pki: Pki) -> None:
    block = _case_pathlen(pki)
    with pytest.raises(UntrustedSignerError, match="path length"):
        verify_detached(block, DATA, anchors=[(pki.cache["pl_root"], AppClass.SIGNED)])


def test_legacy_accepts_sha1_and_rsa_1024(pki: Pki) -> None:
    verify_detached(_block_for(pki.store, digest="sha1"), DATA, anchors=anchors(pki), legacy=True)
    weak = _sha1_leaf(pki, key=_rsa(1024))
    verify_detached(_block_for(weak), DATA, anchors=anchors(pki), legacy=True)


def test_expired_root(pki: Pki) -> None:
    rkey, lkey = ec_key(), ec_key()
    root = make_cert("Old Root", rkey, ca=True, not_before=NOW - 100 * DAY, not_after=NOW - DAY)
    leaf = make_cert("L", lkey, issuer=(root, rkey))
    with pytest.raises(CertificateExpiredError, match="Old Root"):
        verify_detached(
            raw_block(DATA, key=lkey, chain=[leaf]), DATA, anchors=[(root, AppClass.SIGNED)]
        )


def test_subject_key_identifier_sid(pki: Pki) -> None:
    key = ec_key()
    leaf = make_cert("SKI", key, issuer=(pki.store_root, pki.store_root_key),
                     extra=[(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)])  # fmt: skip
    info = cms.ContentInfo.load(raw_block(DATA, key=key, chain=[leaf]))
    si = info["content"]["signer_infos"][0]
    si["version"] = "v3"
    si["sid"] = cms.SignerIdentifier(
        {
            "subject_key_identifier": x509.SubjectKeyIdentifier.from_public_key(
                key.public_key()
            ).digest
        }
    )
    assert verify_detached(info.dump(force=True), DATA, anchors=anchors(pki)).subject == "CN=SKI"


def test_malformed_input_only_raises_kaisec_errors(pki: Pki) -> None:
    block = _block_for(pki.store)
    for i in range(0, len(block), 7):
        mutated = bytearray(block)
        mutated[i] ^= 0xFF
        try:
            verify_detached(bytes(mutated), DATA, anchors=anchors(pki))
        except KaisecError:
            pass
    for cut in range(0, len(block), 13):
        with pytest.raises(KaisecError):
            verify_detached(block[:cut], DATA, anchors=anchors(pki))


def test_certificate_with_unknown_version_is_invalid_signature(pki: Pki) -> None:
    # Found by the fuzzer: cryptography raises InvalidVersion (not a ValueError)
    # for a certificate whose version field says v4; it must come out as a
    # refusal with its code, not as a crash.
    block = sign_detached(DATA, key=pki.store.key, chain=pki.store.chain)
    v3 = b"\xa0\x03\x02\x01\x02"  # [0] EXPLICIT INTEGER 2 (v3), the first in the block
    assert v3 in block
    mutated = block.replace(v3, b"\xa0\x03\x02\x01\x03", 1)
    with pytest.raises(InvalidSignatureError) as info:
        verify_detached(mutated, DATA, anchors=anchors(pki))
    assert info.value.code == "INVALID_SIGNATURE"
