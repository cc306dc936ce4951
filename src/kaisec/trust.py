"""The trust store: which root certificates prove which app class.

A trust directory holds ``signed/*.pem`` (store roots: a package signed
under one is a ``signed`` app) and ``core/*.pem`` (OEM/operator roots: a
package signed under one may be ``core`` when its manifest asks for it).
The home's store is ``<home>/trust``; ``kaisec verify --trust DIR`` reads
another one.

Invariants: every certificate in a store is a CA (basicConstraints cA) and
is held in a file named after its SHA-256 fingerprint when added by
``TrustStore.add``; hand-placed ``*.pem`` files are read as they are (one
or more certificates each) and refused whole (INVALID_CONFIG) if any
certificate in them is malformed or not a CA, so a broken store fails
closed instead of silently trusting less or more. Files not ending in
``.pem`` are ignored. A root present under both classes proves ``core``.
"""

from __future__ import annotations

import builtins
import logging
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from kaisec.errors import CertificateExpiredError, ConfigError, InvalidKeyError
from kaisec.types import AppClass

__all__ = ["TRUST_CLASSES", "TrustStore", "TrustedRoot"]

_log = logging.getLogger(__name__)

#: The classes a root can prove, and the sub-folders that hold them.
TRUST_CLASSES = (AppClass.SIGNED, AppClass.CORE)
_MAX_FILE = 1024 * 1024


@dataclass(frozen=True)
class TrustedRoot:
    """One trusted root certificate and the class it proves."""

    certificate: x509.Certificate
    app_class: AppClass
    path: Path | None  # the file it came from (None: in memory)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the DER, lowercase hex, no colons."""
        return self.certificate.fingerprint(hashes.SHA256()).hex()

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()

    def to_dict(self) -> dict[str, Any]:
        """JSON form for ``kaisec trust list --json``."""
        cert = self.certificate
        return {
            "class": self.app_class.value,
            "subject": self.subject,
            "fingerprint": self.fingerprint,
            "not_before": cert.not_valid_before_utc.isoformat(),
            "not_after": cert.not_valid_after_utc.isoformat(),
            "path": str(self.path) if self.path is not None else None,
        }


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    return bool(bc.ca)


def _check_class(app_class: AppClass) -> AppClass:
    cls = AppClass(app_class)
    if cls not in TRUST_CLASSES:
        raise ValueError(f"a root proves 'signed' or 'core', not {cls.value!r}")
    return cls


class TrustStore:
    """Trusted roots by class, read from a trust directory (or given in memory).

    Args:
        roots: the trusted roots.
        directory: the trust directory they come from, where ``add`` writes.
    """

    def __init__(self, roots: Iterable[TrustedRoot] = (), *, directory: Path | None = None) -> None:
        self.directory = directory
        self._roots: list[TrustedRoot] = list(roots)

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> TrustStore:
        """Read ``directory/signed/*.pem`` and ``directory/core/*.pem`` (missing folders: empty).

        Raises:
            ConfigError: INVALID_CONFIG, a ``.pem`` file is unreadable, holds
                no certificate, a malformed one, or one that is not a CA.
        """
        root_dir = Path(directory)
        roots: list[TrustedRoot] = []
        for app_class in TRUST_CLASSES:
            folder = root_dir / app_class.value
            if not folder.is_dir():
                continue
            for path in sorted(folder.glob("*.pem")):
                for cert in _read_store_file(path):
                    roots.append(TrustedRoot(cert, app_class, path))
        return cls(roots, directory=root_dir)

    @classmethod
    def from_certificates(cls, roots: Iterable[tuple[x509.Certificate, AppClass]]) -> TrustStore:
        """An in-memory store (tests, embedding).

        Raises:
            ValueError: a class other than signed or core.
        """
        return cls(TrustedRoot(cert, _check_class(c), None) for cert, c in roots)

    def list(self) -> list[TrustedRoot]:
        """Every root, core first then signed, by subject."""
        return sorted(self._roots, key=lambda r: (-r.app_class.rank, r.subject, r.fingerprint))

    def anchors(self) -> builtins.list[tuple[x509.Certificate, AppClass]]:
        """(certificate, class) pairs for the signature verifier."""
        return [(r.certificate, r.app_class) for r in self._roots]

    def __len__(self) -> int:
        return len(self._roots)

    def add(
        self,
        cert_path: str | os.PathLike[str],
        app_class: AppClass,
        *,
        now: datetime | None = None,
    ) -> TrustedRoot:
        """Copy a root certificate into ``<directory>/<class>/<sha256>.pem``.

        Adding a root already present under that class changes nothing and
        returns it.

        Raises:
            InvalidKeyError: INVALID_KEY, not exactly one readable certificate,
                or not a CA certificate.
            CertificateExpiredError: CERTIFICATE_EXPIRED, outside its validity period.
            ValueError: a class other than signed or core, or a store without a directory.
        """
        cls = _check_class(app_class)
        if self.directory is None:
            raise ValueError("this trust store has no directory to write to")
        from cryptography.hazmat.primitives.serialization import Encoding

        from kaisec.keys import load_certificates

        pem = Encoding.PEM

        certs = load_certificates(cert_path)
        where = os.fspath(cert_path)
        if len(certs) != 1:
            raise InvalidKeyError(
                f"expected one certificate in {where!r}, found {len(certs)}", path=where
            )
        cert = certs[0]
        if not _is_ca(cert):
            raise InvalidKeyError(
                f"not a CA certificate: {cert.subject.rfc4514_string()!r} (basicConstraints "
                f"cA is not set); a trust store holds roots, not signers",
                path=where,
            )
        when = now or datetime.now(UTC)
        if not cert.not_valid_before_utc <= when <= cert.not_valid_after_utc:
            raise CertificateExpiredError(
                f"certificate outside its validity period: {cert.subject.rfc4514_string()!r} "
                f"valid {cert.not_valid_before_utc.isoformat()} to "
                f"{cert.not_valid_after_utc.isoformat()}",
                path=where,
            )
        entry = TrustedRoot(cert, cls, None)
        for existing in self._roots:
            if existing.app_class is cls and existing.certificate == cert:
                return existing
        folder = self.directory / cls.value
        folder.mkdir(parents=True, exist_ok=True, mode=0o755)
        target = folder / f"{entry.fingerprint}.pem"
        tmp = folder / f".{entry.fingerprint}.{secrets.token_hex(4)}.tmp"
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644
        )
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(cert.public_bytes(pem))
            tmp.replace(target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        added = TrustedRoot(cert, cls, target)
        self._roots.append(added)
        _log.info("trusted %s root %s (%s)", cls.value, added.subject, added.fingerprint)
        return added


def _read_store_file(path: Path) -> list[x509.Certificate]:
    try:
        with path.open("rb") as fh:
            data = fh.read(_MAX_FILE + 1)
    except OSError as exc:
        raise ConfigError(f"unreadable trust store file {str(path)!r}: {exc.strerror}") from exc
    if len(data) > _MAX_FILE:
        raise ConfigError(f"trust store file {str(path)!r} is over {_MAX_FILE} bytes")
    try:
        certs = x509.load_pem_x509_certificates(data)
    except (ValueError, x509.InvalidVersion) as exc:
        raise ConfigError(
            f"malformed trust store file {str(path)!r}: not PEM certificates", path=str(path)
        ) from exc
    for cert in certs:
        if not _is_ca(cert):
            raise ConfigError(
                f"trust store file {str(path)!r} holds a certificate that is not a CA: "
                f"{cert.subject.rfc4514_string()!r}",
                path=str(path),
            )
    return certs
