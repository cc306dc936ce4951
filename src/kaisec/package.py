"""Packages: pack an app folder, sign a package, verify one.

The recipes of the package layer; the CLI and the installer call only these.
A package is a ZIP (``kaisec._internal.zipsafe`` reads it, refusing every
ambiguity) with the app manifest at its root and a JAR signature in
``META-INF/`` (``_internal.jarsig`` for the text files, ``_internal.pkcs7``
for the signature block). docs/signing.md describes the format.

Invariants of ``verify_package``:

* it returns only when every check holds, and raises the first problem in
  the order of its numbered steps (deterministically, whatever the threads
  do); it writes nothing anywhere;
* one streaming pass over the entry data: each entry is inflated once and
  fed, chunk by chunk, to every digest it needs (SHA-256, plus any other
  algorithm the manifest names), in constant memory whatever the package's
  size, on two threads (the inflater and hashlib release the GIL) while the main
  thread parses the signature files, checks the signature and validates the
  app manifest;
* the bytes it parses (signature files, app manifest) are the bytes it
  verified: each is read once from the package, so a file changed on disk
  during verification cannot split what was checked from what was used.

Keep this module's imports light: ``kaisec verify`` pays for each one at
start-up. ``cryptography``, ``asn1crypto`` and the manifest validator
(msgspec) are imported inside the functions, once the entry data is being
hashed.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, BinaryIO, Literal

from kaisec._internal import jarsig
from kaisec._internal.zipsafe import SafeZipReader, ZipEntry, ZipLimits
from kaisec.errors import (
    EntryMissingError,
    InvalidManifestError,
    InvalidSecurityLevelError,
    InvalidSignatureError,
    KaisecError,
    MissingManifestError,
    ModifiedEntryError,
    NotSignedError,
    PackageTooLargeError,
    UnsignedEntryError,
)
from kaisec.types import AppClass

if TYPE_CHECKING:
    from cryptography import x509

    from kaisec._internal.pkcs7 import SignerInfo, SigningKey
    from kaisec.manifest import AppManifest
    from kaisec.trust import TrustStore

__all__ = [
    "Layout",
    "PackageLimits",
    "VerifiedPackage",
    "pack",
    "read_unsigned_package",
    "sign_package",
    "verify_package",
]

_log = logging.getLogger(__name__)

#: Where a package keeps its app manifest (root of the ZIP); see kaisec.manifest.
_MANIFEST_FILENAMES = ("manifest.webmanifest", "manifest.webapp")
_CHUNK = 1 << 20
_MANIFEST_SPELLINGS = ("META-INF/MANIFEST.MF", "META-INF/manifest.mf")
_BLOCK_SUFFIXES = (".RSA", ".EC")

Layout = Literal["jar", "kaios"]


@dataclass(frozen=True)
class PackageLimits:
    """Every bound applied to an untrusted package, in one place."""

    zip: ZipLimits = field(default_factory=ZipLimits)
    signature_files: jarsig.SignatureFileLimits = field(default_factory=jarsig.SignatureFileLimits)
    max_signature_block: int = 256 * 1024
    max_app_manifest: int = 256 * 1024


@dataclass(frozen=True)
class VerifiedPackage:
    """What a package's signature proves. Built only by :func:`verify_package`."""

    app_class: AppClass
    signer_subject: str  # RFC 4514
    signer_fingerprint: str  # SHA-256 of the signer's certificate, lowercase hex, no colons
    manifest: AppManifest
    manifest_name: str  # manifest.webmanifest or manifest.webapp
    manifest_bytes: bytes = field(repr=False)
    entries: Mapping[str, str] = field(repr=False)  # signed entry -> SHA-256 hex of its content

    def to_dict(self) -> dict[str, object]:
        """The ``kaisec verify --json`` shape for a valid package."""
        return {
            "valid": True,
            "class": self.app_class.value,
            "signer": {"subject": self.signer_subject, "fingerprint": self.signer_fingerprint},
            "error": None,
        }


# --- locating things in a package ---------------------------------------------------


@dataclass(frozen=True)
class _SignatureLayout:
    manifest: ZipEntry
    signature_file: ZipEntry
    block: ZipEntry


def _signature_layout(entries: Sequence[ZipEntry]) -> _SignatureLayout:
    found: dict[str, list[ZipEntry]] = {"manifest": [], "sf": [], "block": [], "other": []}
    for entry in entries:
        kind = jarsig.signature_file_kind(entry.name)
        if kind is not None and not entry.is_dir:
            found[kind].append(entry)
    if not (found["sf"] or found["block"] or found["other"]):
        raise NotSignedError("not signed: the package has no META-INF/*.SF signature file")
    names = ", ".join(e.name for group in found.values() for e in group)
    for key, label in (("manifest", "manifest"), ("sf", ".SF file"), ("block", "signature block")):
        if len(found[key]) != 1:
            raise InvalidSignatureError(
                f"invalid signature files: expected exactly one {label}, found "
                f"{len(found[key])} (signature files: {names})"
            )
    if found["other"]:
        raise InvalidSignatureError(
            f"invalid signature files: unexpected {found['other'][0].name!r}"
        )
    manifest, sf, block = found["manifest"][0], found["sf"][0], found["block"][0]
    if manifest.name not in _MANIFEST_SPELLINGS:
        raise InvalidSignatureError(
            f"invalid signature files: manifest spelled {manifest.name!r}, expected "
            f"META-INF/MANIFEST.MF or META-INF/manifest.mf"
        )
    base, _, _ = sf.name.rpartition(".")
    block_base, _, block_ext = block.name.rpartition(".")
    if not sf.name.startswith("META-INF/") or not block.name.startswith("META-INF/"):
        raise InvalidSignatureError(
            f"invalid signature files: {sf.name!r} / {block.name!r} outside META-INF/"
        )
    if block_base != base:
        raise InvalidSignatureError(
            f"invalid signature files: block {block.name!r} does not belong to {sf.name!r}"
        )
    if f".{block_ext.upper()}" not in _BLOCK_SUFFIXES:
        raise InvalidSignatureError(
            f"invalid signature files: unsupported signature block {block.name!r} (DSA)"
        )
    return _SignatureLayout(manifest, sf, block)


def _find_app_manifest(reader: SafeZipReader, limits: PackageLimits) -> ZipEntry:
    present = [reader.get(n) for n in _MANIFEST_FILENAMES]
    found = [e for e in present if e is not None and not e.is_dir]
    if not found:
        raise MissingManifestError(
            "missing manifest: the package root holds neither manifest.webmanifest nor "
            "manifest.webapp"
        )
    if len(found) > 1:
        raise InvalidManifestError(
            "ambiguous manifest: the package holds both manifest.webmanifest and manifest.webapp",
            problems=["(root): both manifest.webmanifest and manifest.webapp are present"],
        )
    entry = found[0]
    if entry.size > limits.max_app_manifest:
        raise InvalidManifestError(
            f"{entry.name}: {entry.size} bytes, limit {limits.max_app_manifest}",
            problems=[f"(root): over {limits.max_app_manifest} bytes"],
        )
    return entry


# --- the streaming pass -------------------------------------------------------------


class _HashPass:
    """Inflate each entry once and feed it to every digest of ``algorithms``, on worker threads.

    Jobs are taken in order; a failing job (bad deflate data, CRC, size)
    stops the workers from starting any later job while earlier ones finish,
    so the lowest failing index is the same on every run. The bytes of job 0
    (the app manifest) are kept: ``captured()`` waits for them.
    """

    def __init__(
        self,
        reader: SafeZipReader,
        entries: Sequence[ZipEntry],
        *,
        algorithms: frozenset[str],
        threads: int,
    ) -> None:
        self._reader = reader
        self._entries = entries
        self._algorithms = sorted(algorithms)
        self._captured: bytes | None = None
        self._capture_done = threading.Event()
        self._next = itertools.count()
        self._lock = threading.Lock()
        self._stop_at = len(entries)
        self._cancelled = False
        self._failures: dict[int, BaseException] = {}
        self.digests: list[dict[str, bytes] | None] = [None] * len(entries)
        self._threads = [
            threading.Thread(target=self._work, name=f"kaisec-hash-{i}", daemon=True)
            for i in range(max(1, threads))
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        while not self._cancelled:
            index = next(self._next)  # atomic under the GIL
            if index >= self._stop_at:
                return
            try:
                self._hash(index)
            except BaseException as exc:  # recorded, re-raised by the main thread
                with self._lock:
                    self._failures[index] = exc
                    self._stop_at = min(self._stop_at, index)
            finally:
                if index == 0:
                    self._capture_done.set()

    def _hash(self, index: int) -> None:
        hashers = [hashlib.new(alg) for alg in self._algorithms]
        updates = [h.update for h in hashers]
        keep: list[bytes] | None = [] if index == 0 else None
        for chunk in self._reader.iter_chunks(self._entries[index], _CHUNK):
            if self._cancelled:
                return
            for update in updates:
                update(chunk)
            if keep is not None:
                keep.append(chunk)
        self.digests[index] = {
            alg: h.digest() for alg, h in zip(self._algorithms, hashers, strict=True)
        }
        if keep is not None:
            self._captured = b"".join(keep)

    def captured(self) -> tuple[bytes, dict[str, bytes]] | None:
        """Job 0's bytes and digests, once hashed; None if it failed (``finish`` says why)."""
        self._capture_done.wait()
        digests = self.digests[0]
        if self._captured is None or digests is None:
            return None
        return self._captured, digests

    def cancel(self) -> None:
        self._cancelled = True

    def join(self) -> None:
        for thread in self._threads:
            thread.join()

    def finish(self, expected: Sequence[Mapping[str, bytes]]) -> None:
        """Wait for the workers; raise the first problem in job order.

        Raises:
            CorruptPackageError, PackageTooLargeError: an entry's data (from zipsafe).
            ModifiedEntryError: MODIFIED_ENTRY, a digest differs from ``expected``.
        """
        self.join()
        for index, entry in enumerate(self._entries):
            failure = self._failures.get(index)
            if failure is not None:
                raise failure
            got = self.digests[index]
            if got is None:  # pragma: no cover - only after a failure, raised above
                raise RuntimeError(f"entry {entry.name!r} was not hashed")
            _compare(entry.name, expected[index], got)


def _compare(name: str, expected: Mapping[str, bytes], got: Mapping[str, bytes]) -> None:
    for alg, digest in expected.items():
        if got[alg] != digest:
            raise ModifiedEntryError(
                f"modified entry: {alg} digest of {name!r} does not match the signed manifest",
                entry=name,
            )


def _scan_algorithms(manifest: bytes) -> frozenset[str]:
    # Which digests the pass must compute, decided before the manifest is parsed
    # (so that hashing starts at once): SHA-256 always, others when a header names
    # them. Header names start a line and are never split, so this can only
    # over-count; step (6) checks that every entry's algorithms are covered.
    lower = manifest.lower()
    found = {"sha256"}
    for label, alg in jarsig.DIGEST_LABELS.items():
        if label.encode() + b"-digest:" in lower:
            found.add(alg)
    return frozenset(found)


def _parse_app_manifest(data: bytes, name: str) -> AppManifest:
    from kaisec.manifest import parse_manifest

    return parse_manifest(data, filename=name)


def _decide_class(proven: AppClass, manifest: AppManifest) -> AppClass:
    requested = manifest.requested_class
    if requested is not None and requested.rank > proven.rank:
        raise InvalidSecurityLevelError(
            f"invalid security level: the manifest asks for {requested.value!r} but the "
            f"signature proves {proven.value!r}",
            requested=requested.value,
            proven=proven.value,
        )
    if requested is AppClass.CORE:
        return AppClass.CORE
    if requested is AppClass.PWA:
        return AppClass.PWA  # legacy type "web": the app asked for no more
    return AppClass.SIGNED


# --- verify -------------------------------------------------------------------------


def verify_package(
    path: str | os.PathLike[str] | BinaryIO,
    *,
    trust: TrustStore | str | os.PathLike[str],
    now: datetime | None = None,
    legacy: bool = False,
    limits: PackageLimits | None = None,
    threads: int = 2,
) -> VerifiedPackage:
    """Verify a signed package and decide its class.

    Args:
        path: the package file (or a binary file object).
        trust: the trusted roots, or a trust directory (``signed/``,
            ``core/``) to read while the entries are being hashed.
        now: the verification time for validity periods (timezone-aware;
            default: the current time).
        legacy: accept SHA-1 digests and RSA keys of 1024 bits or more
            (KaiOS 2.5 packages). Logged when it is used.
        limits: bounds on the package (default: ``PackageLimits()``).
        threads: worker threads for inflating and hashing.

    Returns:
        The proven class, the signer, the validated manifest and the SHA-256
        of every signed entry.

    Raises:
        CorruptPackageError, UnsafePathError, DuplicateEntryError,
        PackageTooLargeError: the ZIP container (CORRUPT_PACKAGE, UNSAFE_PATH,
            DUPLICATE_ENTRY, PACKAGE_TOO_LARGE).
        NotSignedError: NOT_SIGNED, no signature at all.
        InvalidSignatureError: INVALID_SIGNATURE, malformed or inconsistent
            signature files, or a signature that does not verify.
        WeakAlgorithmError: WEAK_ALGORITHM, SHA-1 or small RSA without ``legacy``.
        UntrustedSignerError: UNTRUSTED_SIGNER, no trusted root reached, or a
            signer not allowed to sign code.
        CertificateExpiredError: CERTIFICATE_EXPIRED.
        UnsignedEntryError: UNSIGNED_ENTRY, an entry the manifest does not list.
        EntryMissingError: ENTRY_MISSING, a listed entry the package lacks.
        ModifiedEntryError: MODIFIED_ENTRY, an entry's content differs.
        MissingManifestError, InvalidManifestError, InvalidOriginError: the app manifest.
        InvalidSecurityLevelError: INVALID_SECURITY_LEVEL, the manifest asks
            for more than the signature proves.
        ConfigError: INVALID_CONFIG, a trust directory that cannot be read.
    """
    lim = limits or PackageLimits()
    sig_limits = lim.signature_files
    # (1) ZIP hardening: the whole container is validated before anything is read.
    with SafeZipReader(path, limits=lim.zip) as reader:
        # (2) Signature files: exactly one manifest, one .SF, one block of the same
        # name; each read once (bounded), so what is parsed is what is verified.
        layout = _signature_layout(reader.entries)
        mf_bytes = reader.read(layout.manifest, max_size=sig_limits.max_size)
        sf_bytes = reader.read(layout.signature_file, max_size=sig_limits.max_size)
        block = reader.read(layout.block, max_size=lim.max_signature_block)
        # (3) One app manifest at the root. It is hashed first, so that it can be
        # validated while the other entries are still being hashed.
        app_entry = _find_app_manifest(reader, lim)
        content = [
            e for e in reader.entries if not e.is_dir and jarsig.signature_file_kind(e.name) is None
        ]
        content.sort(key=lambda e: e is not app_entry)
        # (4) Start the streaming pass; steps (5)-(9) run while it goes.
        algorithms = _scan_algorithms(mf_bytes)
        hash_pass = _HashPass(reader, content, algorithms=algorithms, threads=threads)
        hash_pass.start()
        try:
            result = _check_signature(
                hash_pass, content, layout, mf_bytes, sf_bytes, block, algorithms,
                trust=trust, now=now, legacy=legacy, limits=lim,
            )  # fmt: skip
        except BaseException:
            hash_pass.cancel()
            hash_pass.join()
            raise
    signer, manifest, manifest_bytes = result
    # (11) The class: what the signature proves, capped by what the manifest asks.
    app_class = _decide_class(signer.app_class, manifest)
    if legacy:
        _log.warning("verified a package in legacy mode (SHA-1 and RSA 1024 accepted)")
    digests = {
        entry.name: got["sha256"].hex()
        for entry, got in zip(content, hash_pass.digests, strict=True)
        if got is not None
    }
    return VerifiedPackage(
        app_class=app_class,
        signer_subject=signer.subject,
        signer_fingerprint=signer.fingerprint,
        manifest=manifest,
        manifest_name=app_entry.name,
        manifest_bytes=manifest_bytes,
        entries=MappingProxyType(dict(sorted(digests.items()))),
    )


def _check_signature(
    hash_pass: _HashPass,
    content: Sequence[ZipEntry],
    layout: _SignatureLayout,
    mf_bytes: bytes,
    sf_bytes: bytes,
    block: bytes,
    algorithms: frozenset[str],
    *,
    trust: TrustStore | str | os.PathLike[str],
    now: datetime | None,
    legacy: bool,
    limits: PackageLimits,
) -> tuple[SignerInfo, AppManifest, bytes]:
    # Steps (5)-(10) of verify_package, on the main thread while the pass runs.
    # (5) Parse MANIFEST.MF and the .SF (bounded).
    mf = jarsig.parse_manifest(mf_bytes, what=layout.manifest.name, limits=limits.signature_files)
    sf = jarsig.parse_signature_file(
        sf_bytes, what=layout.signature_file.name, limits=limits.signature_files
    )
    # (6) Coverage: every content entry listed, every listed entry present, each
    # with a digest we accept (and compute).
    for entry in content:
        if entry.name not in mf.sections:
            raise UnsignedEntryError(
                f"unsigned entry: {entry.name!r} is not listed in {layout.manifest.name}",
                entry=entry.name,
            )
    if len(mf.sections) != len(content):
        present = {e.name for e in content}
        for name in mf.sections:
            if name not in present:
                raise EntryMissingError(
                    f"entry missing: {layout.manifest.name} lists {name!r}, which the package "
                    f"does not hold as a file",
                    entry=name,
                )
    expected: list[dict[str, bytes]] = []
    for entry in content:
        listed = mf.digests[entry.name]
        wanted = jarsig.entry_algorithms(listed, where=entry.name, legacy=legacy)
        if not wanted <= algorithms:  # pragma: no cover - _scan_algorithms over-counts
            raise RuntimeError(f"digest pass misses {sorted(wanted - algorithms)}")
        expected.append({alg: listed[alg] for alg in wanted})
    # (7) The .SF vouches for MANIFEST.MF.
    jarsig.check_signature_file(sf, mf, legacy=legacy)
    # (8) The signature block: PKCS#7 math over the .SF, chain to a trusted root.
    from kaisec._internal.pkcs7 import verify_detached

    store = _load_trust(trust)
    signer = verify_detached(block, sf.data, anchors=store.anchors(), now=now, legacy=legacy)
    # (9) The app manifest, as hashed in the pass, once its digests matched.
    manifest: AppManifest | None = None
    manifest_error: KaisecError | None = None
    captured = hash_pass.captured()
    manifest_bytes = b""
    if captured is not None:
        manifest_bytes, got = captured
        try:
            _compare(content[0].name, expected[0], got)
            manifest = _parse_app_manifest(manifest_bytes, content[0].name)
        except KaisecError as exc:
            manifest_error = exc
    # (10) Every entry's digests (MODIFIED_ENTRY) and data (CORRUPT_PACKAGE), in order.
    hash_pass.finish(expected)
    if manifest_error is not None:
        raise manifest_error
    if manifest is None:  # pragma: no cover - finish() raised the manifest entry's failure
        raise RuntimeError("the app manifest was not read")
    return signer, manifest, manifest_bytes


def _load_trust(trust: TrustStore | str | os.PathLike[str]) -> TrustStore:
    from kaisec.trust import TrustStore

    if isinstance(trust, TrustStore):
        return trust
    return TrustStore.load(trust)


# --- read without a signature (developer mode) --------------------------------------


def read_unsigned_package(
    path: str | os.PathLike[str] | BinaryIO, *, limits: PackageLimits | None = None
) -> AppManifest:
    """UNVERIFIED: the app manifest of a package, for a developer-mode install as a PWA.

    Applies the full ZIP hardening and validates the manifest, but checks no
    signature: the caller (the installer, only in developer mode, after
    ``verify_package`` said NOT_SIGNED) must treat the app as ``pwa``. Logged
    at warning level.

    Raises:
        CorruptPackageError, UnsafePathError, DuplicateEntryError,
        PackageTooLargeError: the ZIP container.
        MissingManifestError, InvalidManifestError, InvalidOriginError: the app manifest.
        InvalidSecurityLevelError: INVALID_SECURITY_LEVEL, the manifest asks
            for more than ``pwa``.
    """
    lim = limits or PackageLimits()
    with SafeZipReader(path, limits=lim.zip) as reader:
        entry = _find_app_manifest(reader, lim)
        manifest = _parse_app_manifest(
            reader.read(entry, max_size=lim.max_app_manifest), entry.name
        )
    _decide_class(AppClass.PWA, manifest)
    _log.warning("read an UNVERIFIED package (developer mode): %r", manifest.name)
    return manifest


# --- pack -----------------------------------------------------------------------------


def pack(
    src_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    limits: PackageLimits | None = None,
) -> Path:
    """Pack an app folder into a deterministic, unsigned package.

    Regular files only, sorted by name, fixed timestamps and modes (see
    ``kaisec._internal.zipwrite``); the app manifest is validated first.
    The output is written to a temporary file and renamed into place.

    Raises:
        UnsafePathError: UNSAFE_PATH, a symlink, device or unsafe/colliding name.
        MissingManifestError, InvalidManifestError, InvalidOriginError: the app manifest.
        InvalidSignatureError: INVALID_SIGNATURE, the folder holds JAR signature
            files (``META-INF/*.SF`` and the like) from an earlier signature.
        PackageTooLargeError: PACKAGE_TOO_LARGE, over the package limits.
        NotADirectoryError: ``src_dir`` is not a folder.
    """
    from kaisec._internal.zipwrite import collect_app_files, write_zip

    lim = limits or PackageLimits()
    files = collect_app_files(Path(src_dir))
    by_name = dict(files)
    for name in by_name:
        if jarsig.signature_file_kind(name) is not None:
            raise InvalidSignatureError(
                f"signature file in the app folder: {name!r}; remove old META-INF signature "
                f"files before packing",
                entry=name,
            )
    found = [n for n in _MANIFEST_FILENAMES if n in by_name]
    if not found:
        raise MissingManifestError(
            f"missing manifest: {os.fspath(src_dir)!r} holds neither manifest.webmanifest nor "
            f"manifest.webapp"
        )
    if len(found) > 1:
        raise InvalidManifestError(
            "ambiguous manifest: the folder holds both manifest.webmanifest and manifest.webapp",
            problems=["(root): both manifest.webmanifest and manifest.webapp are present"],
        )
    if len(files) > lim.zip.max_entries:
        raise PackageTooLargeError(
            f"package too large: {len(files)} files, limit {lim.zip.max_entries}"
        )
    total = 0
    for name, file_path in files:
        size = file_path.stat().st_size
        total += size
        if size > lim.zip.max_entry_size:
            raise PackageTooLargeError(
                f"entry too large: {name!r} is {size} bytes, limit {lim.zip.max_entry_size}",
                entry=name,
            )
    if total > lim.zip.max_total_size:
        raise PackageTooLargeError(
            f"package too large: {total} bytes, limit {lim.zip.max_total_size}"
        )
    manifest_path = by_name[found[0]]
    with manifest_path.open("rb") as fh:
        data = fh.read(lim.max_app_manifest + 1)
    if len(data) > lim.max_app_manifest:
        raise InvalidManifestError(
            f"{found[0]}: over {lim.max_app_manifest} bytes",
            problems=[f"(root): over {lim.max_app_manifest} bytes"],
        )
    _parse_app_manifest(data, found[0])
    target = Path(out)
    write_zip(target, files)
    return target


# --- sign -----------------------------------------------------------------------------


def _block_names(layout: Layout, key: SigningKey) -> tuple[str, str, str]:
    from cryptography.hazmat.primitives.asymmetric import rsa

    from kaisec.errors import InvalidKeyError

    is_rsa = isinstance(key, rsa.RSAPrivateKey)
    if layout == "kaios":
        if not is_rsa:
            raise InvalidKeyError(
                "the KaiOS layout (zigbert.rsa) needs an RSA key; KaiOS devices verify RSA only"
            )
        return "META-INF/manifest.mf", "META-INF/zigbert.sf", "META-INF/zigbert.rsa"
    if layout != "jar":
        raise ValueError(f"unknown layout {layout!r}: use 'jar' or 'kaios'")
    ext = "RSA" if is_rsa else "EC"
    return "META-INF/MANIFEST.MF", "META-INF/KAISEC.SF", f"META-INF/KAISEC.{ext}"


def sign_package(
    pkg: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    key: SigningKey,
    cert_chain: Sequence[x509.Certificate],
    legacy_sha1: bool = False,
    layout: Layout = "jar",
    now: datetime | None = None,
    limits: PackageLimits | None = None,
) -> Path:
    """Sign a package: MANIFEST.MF, a ``.SF`` and a PKCS#7 block; any old signature replaced.

    The manifest lists every file with its SHA-256 digest (and SHA-1 with
    ``legacy_sha1``, for KaiOS 2.5 and for KaiOS 3's ``SHA1-Digest-Manifest``
    check); the ``.SF`` carries the whole-manifest, main-section and
    per-section digests, as jarsigner writes them. ``layout="jar"`` writes
    ``META-INF/MANIFEST.MF``, ``KAISEC.SF``, ``KAISEC.RSA``/``.EC`` (what
    jarsigner and apksigner read); ``layout="kaios"`` writes KaiOS's
    ``manifest.mf``, ``zigbert.sf``, ``zigbert.rsa`` with Mozilla's digest
    spelling (RSA keys only). The package is read through the full ZIP
    hardening and its app manifest validated before anything is signed.

    Args:
        pkg: the package to sign.
        out: where to write the signed package (default: replace ``pkg``,
            through a temporary file and a rename).
        key: the signer's private key (RSA 2048+, ECDSA P-256/P-384).
        cert_chain: the signer's certificate first, then any intermediates
            (and the root, optionally), all carried in the signature block.
        legacy_sha1: add SHA-1 digests next to SHA-256 ones.
        layout: ``jar`` or ``kaios`` signature file names.
        now: the signing time written in the block (default: now).
        limits: bounds on the input package.

    Returns:
        The path of the signed package.

    Raises:
        CorruptPackageError, UnsafePathError, DuplicateEntryError,
        PackageTooLargeError: the input ZIP.
        MissingManifestError, InvalidManifestError, InvalidOriginError: the app manifest.
        InvalidKeyError: INVALID_KEY, the key does not match the certificate,
            an unsupported key, or a non-RSA key with the KaiOS layout.
        WeakAlgorithmError: WEAK_ALGORITHM, an RSA key under 2048 bits.
    """
    from kaisec import __version__
    from kaisec._internal.pkcs7 import check_signing_key, sign_detached
    from kaisec._internal.zipwrite import write_zip
    from kaisec.errors import InvalidKeyError

    lim = limits or PackageLimits()
    try:
        key = check_signing_key(key)
    except TypeError as exc:
        raise InvalidKeyError(f"unsupported signing key: {exc}") from exc
    if not cert_chain:
        raise InvalidKeyError("no signer certificate given")
    mf_name, sf_name, block_name = _block_names(layout, key)
    target = Path(out) if out is not None else Path(pkg)
    algorithms = ("sha1", "sha256") if legacy_sha1 else ("sha256",)
    spelling: jarsig.Spelling = "mozilla" if layout == "kaios" else "jar"
    created_by = f"kaisec {__version__}"
    with SafeZipReader(pkg, limits=lim.zip) as reader:
        # Old signature files go; everything else is content and gets signed.
        keep = [e for e in reader.entries if jarsig.signature_file_kind(e.name) is None]
        app_entry = _find_app_manifest(reader, lim)
        _parse_app_manifest(reader.read(app_entry, max_size=lim.max_app_manifest), app_entry.name)
        listed: list[tuple[str, dict[str, bytes]]] = []
        for entry in keep:
            if entry.is_dir:
                continue
            hashers = {alg: hashlib.new(alg) for alg in algorithms}
            for chunk in reader.iter_chunks(entry, _CHUNK):
                for h in hashers.values():
                    h.update(chunk)
            listed.append((entry.name, {alg: h.digest() for alg, h in hashers.items()}))
        mf_bytes = jarsig.build_manifest(
            listed, algorithms=algorithms, created_by=created_by, spelling=spelling
        )
        # Our own output must read back under the verifier's rules.
        mf = jarsig.parse_manifest(mf_bytes, what=mf_name, limits=lim.signature_files)
        sf_bytes = jarsig.build_signature_file(
            mf, algorithms=algorithms, created_by=created_by, spelling=spelling
        )
        try:
            block = sign_detached(sf_bytes, key=key, chain=cert_chain, now=now)
        except ValueError as exc:
            raise InvalidKeyError(f"cannot sign: {exc}") from exc
        _warn_if_not_code_signing(cert_chain[0])

        def files() -> Iterator[tuple[str, bytes]]:
            yield mf_name, mf_bytes
            yield sf_name, sf_bytes
            yield block_name, block
            for entry in keep:
                yield entry.name, b"" if entry.is_dir else reader.read(entry, max_size=entry.size)

        write_zip(target, files())
    return target


def _warn_if_not_code_signing(cert: x509.Certificate) -> None:
    from cryptography import x509 as _x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    try:
        eku = cert.extensions.get_extension_for_class(_x509.ExtendedKeyUsage).value
    except _x509.ExtensionNotFound:
        eku = None
    if eku is None or ExtendedKeyUsageOID.CODE_SIGNING not in eku:
        _log.warning(
            "the signer certificate %s lacks the codeSigning extended key usage: "
            "kaisec verify will refuse this package (UNTRUSTED_SIGNER)",
            cert.subject.rfc4514_string(),
        )
