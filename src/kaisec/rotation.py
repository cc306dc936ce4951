"""Signer rotation records: how an app moves to a new signing key without a silent swap.

An update must be signed by the installed version's signer, unless that
signer has named a successor. A rotation record is that statement, signed
with the OLD key::

    {
      "format": "kaisec-rotation/1",
      "payload": "<base64 of canonical JSON>",
      "certificate": "<PEM of the old signer certificate>",
      "signature": "<base64 signature of the payload bytes by the old key>"
    }

    payload = {"app": "http://contacts.localhost",   # the origin it is valid for
               "from": "<sha256 of the old signer certificate>",
               "to": "<sha256 of the new signer certificate>",
               "issued": "2026-11-24T12:00:00Z"}

RSA keys sign with PKCS#1 v1.5 + SHA-256, EC keys with ECDSA + SHA-256.
:func:`check_rotation` accepts the record only when the certificate's
fingerprint is the installed signer's, the signature verifies with that
certificate's key, the origin is the app's, and ``to`` is the update's
signer. The old certificate's validity period is not checked: rotation is
often done because a key is about to expire, and the new package's own
signature is verified in full against the trust store. Records chain: each
one names one step, and the installed signer then becomes the new key.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from kaisec.errors import SignerMismatchError

__all__ = ["FORMAT", "check_rotation", "make_rotation"]

FORMAT = "kaisec-rotation/1"
_MAX_RECORD = 64 * 1024


def _fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def make_rotation(
    *,
    app_origin: str,
    old_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    old_cert: x509.Certificate,
    new_cert: x509.Certificate,
    now: datetime | None = None,
) -> bytes:
    """A signed rotation record naming ``new_cert`` as the successor of ``old_cert``.

    Raises:
        ValueError: ``old_key`` does not belong to ``old_cert``, or an unsupported key.
    """
    from cryptography.hazmat.primitives import serialization

    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if old_key.public_key().public_bytes(der, pub) != old_cert.public_key().public_bytes(der, pub):
        raise ValueError("the old key does not belong to the old certificate")
    when = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    payload = json.dumps(
        {
            "app": app_origin.rstrip("/"),
            "from": _fingerprint(old_cert),
            "to": _fingerprint(new_cert),
            "issued": when,
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    if isinstance(old_key, rsa.RSAPrivateKey):
        signature = old_key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(old_key, ec.EllipticCurvePrivateKey):
        signature = old_key.sign(payload, ec.ECDSA(hashes.SHA256()))
    else:  # pragma: no cover - typed out
        raise ValueError("unsupported key type")
    record = {
        "format": FORMAT,
        "payload": base64.b64encode(payload).decode(),
        "certificate": old_cert.public_bytes(serialization.Encoding.PEM).decode(),
        "signature": base64.b64encode(signature).decode(),
    }
    return json.dumps(record, indent=2).encode()


def check_rotation(record: bytes, *, app_origin: str, installed: str, new_signer: str) -> None:
    """Accept a rotation from ``installed`` to ``new_signer`` for ``app_origin``, or raise.

    Raises:
        SignerMismatchError: the record is malformed, not signed by the installed
            signer, for another app, or names another successor.
    """

    def refuse(why: str) -> SignerMismatchError:
        return SignerMismatchError(
            f"signer mismatch: the rotation record does not hold: {why}",
            installed=installed,
            signer=new_signer,
        )

    if len(record) > _MAX_RECORD:
        raise refuse("larger than 64 KiB")
    try:
        outer: Any = json.loads(record)
        if not isinstance(outer, dict) or outer.get("format") != FORMAT:
            raise refuse(f"format is not {FORMAT}")
        payload = base64.b64decode(outer["payload"], validate=True)
        signature = base64.b64decode(outer["signature"], validate=True)
        cert = x509.load_pem_x509_certificate(str(outer["certificate"]).encode())
        claims: Any = json.loads(payload)
    except SignerMismatchError:
        raise
    except (
        ValueError,
        KeyError,
        TypeError,
        binascii.Error,
        UnicodeDecodeError,
        x509.InvalidVersion,
    ) as exc:
        raise refuse(f"malformed ({exc})") from exc
    if _fingerprint(cert) != installed:
        raise refuse("it is not signed by the installed version's signer")
    key = cert.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        else:
            raise refuse("unsupported key type")
    except InvalidSignature as exc:
        raise refuse("bad signature") from exc
    if not isinstance(claims, dict):
        raise refuse("payload is not an object")
    if claims.get("from") != installed:
        raise refuse("'from' is not the installed signer")
    if claims.get("app") != app_origin.rstrip("/"):
        raise refuse(f"it is for {claims.get('app')!r}, not {app_origin!r}")
    if claims.get("to") != new_signer:
        raise refuse("it names another successor")
