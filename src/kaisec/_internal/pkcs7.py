"""The signature block of a signed package: a detached PKCS#7/CMS SignedData over the ``.SF``.

This module owns the bytes of ``META-INF/*.RSA`` / ``*.EC``: building one
(``sign_detached``) and checking one against trusted roots
(``verify_detached``). ASN.1 structure comes from ``asn1crypto.cms``; every
number that matters (signatures, keys, certificates) goes through
``cryptography``.

What is verified, in order (each refusal names its code):

1. structure: a ContentInfo holding SignedData, one SignerInfo, detached
   ``id-data`` content, plain certificates only (INVALID_SIGNATURE);
2. the signer's certificate, found by issuer+serial or subject key id among
   the block's certificates (INVALID_SIGNATURE);
3. algorithms: digest SHA-256/384/512, RSA PKCS#1 v1.5 or ECDSA on P-256,
   P-384 or P-521; SHA-1 and RSA under 2048 bits are WEAK_ALGORITHM unless
   ``legacy`` (MD5 and RSA under 1024 always);
4. signed attributes, required (see below): exactly one ``contentType`` =
   ``id-data`` and one ``messageDigest`` = the digest of the ``.SF``;
5. the signature over the DER SET OF the signed attributes
   (INVALID_SIGNATURE). KaiOS checks only steps 4 and 6; kaisec also does the
   math (DESIGN.md, "Beyond KaiOS");
6. a path from the signer to a trusted root, each link's signature checked
   (UNTRUSTED_SIGNER when none); then on the best path: algorithms of every
   link (WEAK_ALGORITHM); every certificate, root included, inside its
   validity period at ``now`` (CERTIFICATE_EXPIRED); issuers are CAs
   (basicConstraints, path length, keyCertSign), no unknown critical
   extension, the signer has digitalSignature (if keyUsage is present) and
   the codeSigning extended key usage, and any issuer carrying an EKU
   extension allows codeSigning (UNTRUSTED_SIGNER: the signature is sound,
   the signer is not trusted to sign code).

Decisions:

* Signatures without signed attributes (the SignerInfo signs the ``.SF``
  directly) are refused (INVALID_SIGNATURE). jarsigner since JDK 16 writes
  signed attributes unless ``-directsign`` is given, KaiOS's verifier needs
  the ``messageDigest`` attribute, so accepting them would only widen the
  surface. Packages from older jarsigner or apksigner's v1 scheme must be
  re-signed.
* Unsigned attributes (a timestamp token, say) are ignored: validity is
  judged at ``now``, never at a claimed signing time.
* Chain building is a small walk over ``Certificate.verify_directly_issued_by``.
  Maintained validators do not fit: ``cryptography.x509.verification`` is a
  WebPKI validator with a fixed serverAuth/clientAuth EKU and one opaque
  error, and ``pyhanko-certvalidator`` pulls aiohttp and oscrypto and costs
  ~150 ms of start-up (measured), for revocation and policy features a
  package signature does not use here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asn1crypto import algos, cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from kaisec.errors import (
    CertificateExpiredError,
    InvalidSignatureError,
    UntrustedSignerError,
    WeakAlgorithmError,
)
from kaisec.types import AppClass

__all__ = [
    "SignerInfo",
    "SigningKey",
    "certificate_fingerprint",
    "check_signing_key",
    "sign_detached",
    "verify_detached",
]

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

_OID_DATA = "1.2.840.113549.1.7.1"
_OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
_OID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
_OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"

_DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    "1.3.14.3.2.26": hashes.SHA1,
    "2.16.840.1.101.3.4.2.1": hashes.SHA256,
    "2.16.840.1.101.3.4.2.2": hashes.SHA384,
    "2.16.840.1.101.3.4.2.3": hashes.SHA512,
}
_WEAK_DIGESTS = frozenset({"1.2.840.113549.2.5", "1.2.840.113549.2.2"})  # MD5, MD2
# Signature algorithm OID -> (key type, hash OID or None: "the SignerInfo's digest").
_SIGNATURES: dict[str, tuple[str, str | None]] = {
    "1.2.840.113549.1.1.1": ("rsa", None),  # rsaEncryption
    "1.2.840.113549.1.1.5": ("rsa", "1.3.14.3.2.26"),
    "1.2.840.113549.1.1.11": ("rsa", "2.16.840.1.101.3.4.2.1"),
    "1.2.840.113549.1.1.12": ("rsa", "2.16.840.1.101.3.4.2.2"),
    "1.2.840.113549.1.1.13": ("rsa", "2.16.840.1.101.3.4.2.3"),
    "1.2.840.10045.2.1": ("ec", None),  # id-ecPublicKey, as some signers write it
    "1.2.840.10045.4.1": ("ec", "1.3.14.3.2.26"),
    "1.2.840.10045.4.3.2": ("ec", "2.16.840.1.101.3.4.2.1"),
    "1.2.840.10045.4.3.3": ("ec", "2.16.840.1.101.3.4.2.2"),
    "1.2.840.10045.4.3.4": ("ec", "2.16.840.1.101.3.4.2.3"),
}
_CURVES = ("secp256r1", "secp384r1", "secp521r1")
_MIN_RSA = 2048
_MIN_RSA_LEGACY = 1024
_MAX_CERTS = 16
_MAX_DEPTH = 6
_MAX_PATHS = 64
# Extensions whose criticality we honour (anything else critical: refused, RFC 5280 4.2).
_KNOWN_EXTENSIONS = frozenset(
    {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.ISSUER_ALTERNATIVE_NAME,
    }
)


@dataclass(frozen=True)
class SignerInfo:
    """Who signed, as proven: the class of the root reached and the signer's identity."""

    app_class: AppClass
    subject: str  # RFC 4514
    fingerprint: str  # SHA-256 of the signer's certificate, lowercase hex, no colons
    chain: tuple[x509.Certificate, ...]  # signer first, trusted root last


def certificate_fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER, lowercase hex without colons."""
    return cert.fingerprint(hashes.SHA256()).hex()


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now


# --- signing ----------------------------------------------------------------------


def check_signing_key(key: object) -> SigningKey:
    """The key if kaisec signs with it: RSA of 2048 bits or more, or ECDSA P-256/P-384.

    Raises:
        WeakAlgorithmError: WEAK_ALGORITHM, RSA under 2048 bits.
        TypeError: any other key type or curve.
    """
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < _MIN_RSA:
            raise WeakAlgorithmError(
                f"weak algorithm: RSA key of {key.key_size} bits, at least {_MIN_RSA} needed"
            )
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.name not in ("secp256r1", "secp384r1"):
            raise TypeError(f"unsupported curve {key.curve.name}: use P-256 or P-384")
        return key
    raise TypeError(
        f"unsupported key type {type(key).__name__}: use RSA 2048+ or ECDSA P-256/P-384"
    )


def _signing_hash(key: SigningKey) -> tuple[hashes.HashAlgorithm, str]:
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1":
        return hashes.SHA384(), "sha384"
    return hashes.SHA256(), "sha256"


def sign_detached(
    data: bytes,
    *,
    key: SigningKey,
    chain: Sequence[x509.Certificate],
    now: datetime | None = None,
) -> bytes:
    """A DER ContentInfo/SignedData signing ``data`` (the ``.SF``), content detached.

    Signed attributes: contentType (id-data), signingTime, messageDigest.
    RSA signs with PKCS#1 v1.5 and SHA-256, ECDSA with SHA-256 (P-256) or
    SHA-384 (P-384). The certificates are ``chain`` as given, signer first.

    Raises:
        ValueError: ``chain`` is empty or its first certificate is not ``key``'s.
        WeakAlgorithmError: WEAK_ALGORITHM, RSA under 2048 bits.
        TypeError: an unsupported key type or curve.
    """
    key = check_signing_key(key)
    if not chain:
        raise ValueError("the certificate chain is empty")
    leaf = chain[0]
    from cryptography.hazmat.primitives import serialization  # signing only: kept off verify

    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if leaf.public_key().public_bytes(der, spki) != key.public_key().public_bytes(der, spki):
        raise ValueError("the signing key does not match the signer certificate")
    hash_alg, hash_name = _signing_hash(key)
    when = _now(now).replace(microsecond=0)
    attrs = [
        cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
        cms.CMSAttribute({"type": "signing_time", "values": [cms.Time({"utc_time": when})]}),
        cms.CMSAttribute(
            {"type": "message_digest", "values": [hashlib.new(hash_name, data).digest()]}
        ),
    ]
    # DER: the SET OF is sorted by encoding; the signature covers exactly these bytes.
    attrs.sort(key=lambda a: a.dump())
    signed_attrs = cms.CMSAttributes(attrs)
    to_sign = signed_attrs.dump()
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(to_sign, padding.PKCS1v15(), hash_alg)
        sig_alg = "rsassa_pkcs1v15"
    else:
        signature = key.sign(to_sign, ec.ECDSA(hash_alg))
        sig_alg = f"{hash_name}_ecdsa"
    asn1_chain = [asn1_x509.Certificate.load(c.public_bytes(der)) for c in chain]
    signer = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                        {
                            "issuer": asn1_chain[0]["tbs_certificate"]["issuer"],
                            "serial_number": asn1_chain[0]["tbs_certificate"]["serial_number"],
                        }
                    )
                }
            ),
            "digest_algorithm": algos.DigestAlgorithm({"algorithm": hash_name}),
            "signed_attrs": signed_attrs,
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": sig_alg}),
            "signature": signature,
        }
    )
    signed_data = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": hash_name})],
            "encap_content_info": {"content_type": "data"},
            "certificates": asn1_chain,
            "signer_infos": [signer],
        }
    )
    info = cms.ContentInfo({"content_type": "signed_data", "content": signed_data})
    out: bytes = info.dump()
    return out


# --- verifying: the block -----------------------------------------------------------


@dataclass(frozen=True)
class _Parsed:
    certs: list[x509.Certificate]
    asn1_certs: list[Any]
    sid_kind: str
    sid: Any
    digest_oid: str
    signature_oid: str
    signature: bytes
    signed_attrs: bytes | None  # DER of the SET OF (re-tagged), or None
    attributes: list[tuple[str, list[Any]]]


def _invalid(message: str) -> InvalidSignatureError:
    return InvalidSignatureError(f"invalid signature block: {message}")


def _parse(block: bytes) -> _Parsed:
    try:
        return _parse_unchecked(block)
    except InvalidSignatureError:
        raise
    except (
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        OverflowError,
        AttributeError,
        x509.InvalidVersion,
    ) as exc:
        # asn1crypto parses lazily and reports malformed input as these; cryptography
        # raises InvalidVersion (not a ValueError) for a certificate version it does not know.
        raise _invalid(f"not a well-formed PKCS#7 SignedData ({exc})") from exc


def _parse_unchecked(block: bytes) -> _Parsed:
    info = cms.ContentInfo.load(block, strict=True)
    if info["content_type"].dotted != _OID_SIGNED_DATA:
        raise _invalid(f"content type {info['content_type'].dotted}, expected signedData")
    sd = info["content"]
    encap = sd["encap_content_info"]
    if encap["content_type"].dotted != _OID_DATA:
        raise _invalid(f"encapsulated content type {encap['content_type'].dotted}, expected data")
    if encap["content"].native is not None:
        raise _invalid("the content is embedded; a package signature is detached")
    signer_infos = sd["signer_infos"]
    if len(signer_infos) != 1:
        raise _invalid(f"{len(signer_infos)} signers, expected exactly one")
    certs: list[x509.Certificate] = []
    asn1_certs: list[Any] = []
    choices = sd["certificates"]
    if choices.native is None or len(choices) == 0:
        raise _invalid("no certificates")
    if len(choices) > _MAX_CERTS:
        raise _invalid(f"{len(choices)} certificates, limit {_MAX_CERTS}")
    for choice in choices:
        if choice.name != "certificate":
            raise _invalid(f"unsupported certificate choice {choice.name}")
        der = choice.chosen.dump()
        certs.append(x509.load_der_x509_certificate(der))
        asn1_certs.append(choice.chosen)
    si = signer_infos[0]
    sid = si["sid"]
    attrs_field = si["signed_attrs"]
    signed_attrs: bytes | None = None
    attributes: list[tuple[str, list[Any]]] = []
    if attrs_field.native is not None:
        # The signature covers the attributes as an explicit SET OF (tag 0x31),
        # not as the [0] IMPLICIT field they are stored in (RFC 5652, 5.4).
        contents = attrs_field.contents
        signed_attrs = b"\x31" + _der_length(len(contents)) + contents
        for attr in attrs_field:
            attributes.append((attr["type"].dotted, list(attr["values"])))
    return _Parsed(
        certs=certs,
        asn1_certs=asn1_certs,
        sid_kind=sid.name,
        sid=sid.chosen,
        digest_oid=si["digest_algorithm"]["algorithm"].dotted,
        signature_oid=si["signature_algorithm"]["algorithm"].dotted,
        signature=si["signature"].native,
        signed_attrs=signed_attrs,
        attributes=attributes,
    )


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _find_signer(p: _Parsed) -> x509.Certificate:
    for cert, acert in zip(p.certs, p.asn1_certs, strict=True):
        tbs = acert["tbs_certificate"]
        if p.sid_kind == "issuer_and_serial_number":
            if (
                tbs["issuer"].dump() == p.sid["issuer"].dump()
                and tbs["serial_number"].native == p.sid["serial_number"].native
            ):
                return cert
        elif p.sid_kind == "subject_key_identifier":
            try:
                ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
            except x509.ExtensionNotFound:
                continue
            if ski.value.digest == p.sid.native:
                return cert
    raise _invalid("the signer's certificate is not in the block")


def _check_key(key: Any, *, who: str, legacy: bool) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        floor = _MIN_RSA_LEGACY if legacy else _MIN_RSA
        if key.key_size < floor:
            raise WeakAlgorithmError(
                f"weak algorithm: {who} has an RSA key of {key.key_size} bits, at least "
                f"{_MIN_RSA} needed" + ("" if legacy else " (legacy mode is off)")
            )
        return "rsa"
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in _CURVES:
            raise InvalidSignatureError(f"unsupported curve: {who} uses {key.curve.name}")
        return "ec"
    raise InvalidSignatureError(f"unsupported key type: {who} has a {type(key).__name__}")


def _digest_for(oid: str, *, what: str, legacy: bool) -> hashes.HashAlgorithm:
    if oid in _WEAK_DIGESTS:
        raise WeakAlgorithmError(f"weak algorithm: {what} uses digest {oid} (MD5/MD2)")
    cls = _DIGESTS.get(oid)
    if cls is None:
        raise InvalidSignatureError(f"unsupported digest algorithm: {what} uses {oid}")
    if cls is hashes.SHA1 and not legacy:
        raise WeakAlgorithmError(f"weak algorithm: {what} uses SHA-1 (legacy mode is off)")
    return cls()


def _check_attributes(p: _Parsed, data: bytes, hash_alg: hashes.HashAlgorithm) -> None:
    seen: dict[str, list[Any]] = {}
    for oid, values in p.attributes:
        if oid in seen:
            raise _invalid(f"signed attribute {oid} appears twice")
        seen[oid] = values
    content_type = seen.get(_OID_CONTENT_TYPE)
    if content_type is None or len(content_type) != 1:
        raise _invalid("the contentType signed attribute is missing or has several values")
    if content_type[0].dotted != _OID_DATA:
        raise _invalid(f"contentType attribute {content_type[0].dotted}, expected data")
    digest = seen.get(_OID_MESSAGE_DIGEST)
    if digest is None or len(digest) != 1:
        raise _invalid("the messageDigest signed attribute is missing or has several values")
    h = hashes.Hash(hash_alg)
    h.update(data)
    if digest[0].native != h.finalize():
        raise InvalidSignatureError(
            "invalid signature: the messageDigest attribute does not match the signature file"
        )


def _check_signature(p: _Parsed, signer: x509.Certificate, data: bytes, *, legacy: bool) -> None:
    # (3) algorithms.
    hash_alg = _digest_for(p.digest_oid, what="the signature", legacy=legacy)
    sig = _SIGNATURES.get(p.signature_oid)
    if sig is None:
        raise InvalidSignatureError(f"unsupported signature algorithm {p.signature_oid}")
    key_type, sig_hash = sig
    if sig_hash is not None and sig_hash != p.digest_oid:
        raise _invalid(
            f"signature algorithm {p.signature_oid} does not use the digest {p.digest_oid}"
        )
    key = signer.public_key()
    if _check_key(key, who="the signer", legacy=legacy) != key_type:
        raise _invalid(f"signature algorithm {p.signature_oid} does not fit the signer's key")
    # (4) signed attributes.
    if p.signed_attrs is None:
        raise _invalid("no signed attributes (direct signatures are not accepted)")
    _check_attributes(p, data, hash_alg)
    # (5) the signature over them.
    _verify_math(key, p.signature, p.signed_attrs, hash_alg)


def _verify_math(key: Any, signature: bytes, data: bytes, hash_alg: hashes.HashAlgorithm) -> None:
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hash_alg)
        else:
            key.verify(signature, data, ec.ECDSA(hash_alg))
    except InvalidSignature as exc:
        raise InvalidSignatureError(
            "invalid signature: the signature does not verify with the signer's key"
        ) from exc


# --- verifying: the chain ---------------------------------------------------------------


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, TypeError):
        return False
    except (ValueError, UnsupportedAlgorithm):
        # cryptography no longer checks SHA-1 certificate signatures here: check by
        # hand, so that a SHA-1 link is reported as WEAK_ALGORITHM (or accepted in
        # legacy mode) instead of looking like a missing issuer.
        return _issued_by_by_hand(cert, issuer)
    return True


def _issued_by_by_hand(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    oid = cert.signature_algorithm_oid.dotted_string
    try:
        key = issuer.public_key()
        hash_alg = cert.signature_hash_algorithm
        if hash_alg is None:
            return False
        if isinstance(key, rsa.RSAPublicKey) and _SIGNATURES.get(oid, ("",))[0] == "rsa":
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), hash_alg)
        elif isinstance(key, ec.EllipticCurvePublicKey) and _SIGNATURES.get(oid, ("",))[0] == "ec":
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hash_alg))
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _paths(
    leaf: x509.Certificate,
    bag: Sequence[x509.Certificate],
    anchors: Sequence[tuple[x509.Certificate, AppClass]],
) -> list[tuple[list[x509.Certificate], AppClass]]:
    # Every path leaf -> ... -> anchor (bounded). An anchor ends a path either
    # because it issued the last certificate, or because it is that certificate.
    found: list[tuple[list[x509.Certificate], AppClass]] = []

    def walk(path: list[x509.Certificate]) -> None:
        if len(found) >= _MAX_PATHS:
            return
        tip = path[-1]
        for anchor, cls in anchors:
            if anchor == tip:
                found.append((list(path), cls))
            elif anchor.subject == tip.issuer and _issued_by(tip, anchor):
                found.append(([*path, anchor], cls))
        if len(path) >= _MAX_DEPTH:
            return
        for cand in bag:
            if cand in path or cand.subject != tip.issuer or any(cand == a for a, _ in anchors):
                continue
            if _issued_by(tip, cand):
                walk([*path, cand])

    walk([leaf])
    return found


def _extension(cert: x509.Certificate, cls: type[Any]) -> Any:
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None


def _check_path(path: list[x509.Certificate], *, now: datetime, legacy: bool) -> None:
    # Algorithms of every link; the root's own self-signature is not used.
    for i, cert in enumerate(path):
        who = "the signer" if i == 0 else f"CA {cert.subject.rfc4514_string()!r}"
        _check_key(cert.public_key(), who=who, legacy=legacy)
        if i + 1 < len(path):
            oid = cert.signature_algorithm_oid.dotted_string
            hash_alg = cert.signature_hash_algorithm
            if hash_alg is None or oid in ("1.2.840.113549.1.1.4", "1.2.840.113549.1.1.2"):
                if hash_alg is None and oid not in ("1.2.840.113549.1.1.4", "1.2.840.113549.1.1.2"):
                    raise InvalidSignatureError(f"unsupported certificate signature {oid} on {who}")
                raise WeakAlgorithmError(
                    f"weak algorithm: {who}'s certificate is signed with MD5/MD2"
                )
            if isinstance(hash_alg, hashes.SHA1) and not legacy:
                raise WeakAlgorithmError(
                    f"weak algorithm: {who}'s certificate is signed with SHA-1 (legacy mode is off)"
                )
    for cert in path:
        if now < cert.not_valid_before_utc:
            raise CertificateExpiredError(
                f"certificate not yet valid: {cert.subject.rfc4514_string()!r} starts "
                f"{cert.not_valid_before_utc.isoformat()}",
                subject=cert.subject.rfc4514_string(),
            )
        if now > cert.not_valid_after_utc:
            raise CertificateExpiredError(
                f"certificate expired: {cert.subject.rfc4514_string()!r} ended "
                f"{cert.not_valid_after_utc.isoformat()}",
                subject=cert.subject.rfc4514_string(),
            )
    for i, cert in enumerate(path):
        name = cert.subject.rfc4514_string()
        for ext in cert.extensions:
            if ext.critical and ext.oid not in _KNOWN_EXTENSIONS:
                raise UntrustedSignerError(
                    f"untrusted signer: {name!r} has an unhandled critical extension "
                    f"{ext.oid.dotted_string}"
                )
        eku = _extension(cert, x509.ExtendedKeyUsage)
        usage = _extension(cert, x509.KeyUsage)
        if i == 0:
            if eku is None or ExtendedKeyUsageOID.CODE_SIGNING not in eku:
                raise UntrustedSignerError(
                    f"untrusted signer: {name!r} lacks the codeSigning extended key usage"
                )
            if usage is not None and not usage.digital_signature:
                raise UntrustedSignerError(
                    f"untrusted signer: {name!r} key usage lacks digitalSignature"
                )
            continue
        if eku is not None and not (
            ExtendedKeyUsageOID.CODE_SIGNING in eku
            or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in eku
        ):
            raise UntrustedSignerError(f"untrusted signer: CA {name!r} does not allow codeSigning")
        constraints = _extension(cert, x509.BasicConstraints)
        if constraints is None or not constraints.ca:
            raise UntrustedSignerError(f"untrusted signer: issuer {name!r} is not a CA")
        below = i - 1  # CA certificates between this one and the signer
        if constraints.path_length is not None and below > constraints.path_length:
            raise UntrustedSignerError(
                f"untrusted signer: CA {name!r} path length {constraints.path_length} exceeded"
            )
        if usage is not None and not usage.key_cert_sign:
            raise UntrustedSignerError(f"untrusted signer: CA {name!r} lacks keyCertSign")


def verify_detached(
    block: bytes,
    data: bytes,
    *,
    anchors: Sequence[tuple[x509.Certificate, AppClass]],
    now: datetime | None = None,
    legacy: bool = False,
) -> SignerInfo:
    """Verify a detached signature block over ``data`` (the ``.SF``) against trusted roots.

    Args:
        block: the signature block file's bytes (untrusted).
        data: the signed bytes.
        anchors: trusted roots, each with the class it proves.
        now: the verification time (timezone-aware; default: the current time).
        legacy: accept SHA-1 and RSA keys of 1024 bits or more.

    Returns:
        The class proven (the highest among valid paths) and the signer.

    Raises:
        InvalidSignatureError: INVALID_SIGNATURE, malformed block, unsupported
            algorithm, missing signed attributes, digest or signature mismatch.
        WeakAlgorithmError: WEAK_ALGORITHM, SHA-1 or small RSA without ``legacy``.
        UntrustedSignerError: UNTRUSTED_SIGNER, no path to a root, or a path
            whose certificates may not sign code.
        CertificateExpiredError: CERTIFICATE_EXPIRED, a certificate of the path
            is outside its validity period at ``now``.
    """
    when = _now(now)
    try:
        return _verify(block, data, anchors, when, legacy)
    except (ValueError, UnsupportedAlgorithm) as exc:
        # cryptography parses certificate fields lazily (public keys, extensions):
        # a malformed or unsupported one surfaces here.
        raise _invalid(f"malformed or unsupported certificate ({exc})") from exc


def _verify(
    block: bytes,
    data: bytes,
    anchors: Sequence[tuple[x509.Certificate, AppClass]],
    when: datetime,
    legacy: bool,
) -> SignerInfo:
    # (1) structure and (2) the signer's certificate.
    parsed = _parse(block)
    signer = _find_signer(parsed)
    # (3)-(5) algorithms, signed attributes, signature math.
    _check_signature(parsed, signer, data, legacy=legacy)
    # (6) paths to a trusted root, best class first; the first sound one wins.
    paths = _paths(signer, parsed.certs, anchors)
    if not paths:
        raise UntrustedSignerError(
            f"untrusted signer: {signer.subject.rfc4514_string()!r} does not chain to a trusted "
            f"root",
            subject=signer.subject.rfc4514_string(),
        )
    paths.sort(key=lambda item: (-item[1].rank, len(item[0])))
    first_error: Exception | None = None
    for path, cls in paths:
        try:
            _check_path(path, now=when, legacy=legacy)
        except (WeakAlgorithmError, CertificateExpiredError, UntrustedSignerError) as exc:
            first_error = first_error or exc
            continue
        return SignerInfo(
            app_class=cls,
            subject=signer.subject.rfc4514_string(),
            fingerprint=certificate_fingerprint(signer),
            chain=tuple(path),
        )
    assert first_error is not None
    raise first_error
