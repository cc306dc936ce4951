"""JAR signature text files: ``META-INF/MANIFEST.MF`` and the signature file (``.SF``).

This module owns the two text formats of the JAR File Specification ("JAR
Manifest", "Signed JAR File") as jarsigner, apksigner and Mozilla's/KaiOS's
signing tools write them: parsing (strict, bounded) and writing (72-byte lines,
CRLF), plus the check that a ``.SF`` vouches for a manifest. It knows nothing
of ZIP files or PKCS#7: ``kaisec.package`` puts the pieces together.

Hand-written: no maintained Python library reads or writes JAR manifests
(``zipfile`` and ``cryptography`` do not touch them), and the format is small.

Reading rules (where readers disagree, the strict choice; every refusal is
``INVALID_SIGNATURE`` unless said otherwise):

* lines end with CRLF, LF or a lone CR, as ``java.util.jar.Manifest`` reads
  them; a physical line is at most 512 bytes (Java's own limit); the file
  must end with a line terminator (Java silently drops an unterminated last
  line, so such a line could mean two things);
* a line starting with one space continues the previous header; the bytes
  are joined before UTF-8 decoding (Java joins bytes too);
* headers are ``Name: value`` (a colon and one space) with a name of 1-70
  letters, digits, ``-``, ``_``; header names are case-insensitive (as in
  Java) and may appear once per section: Java keeps the last of two, other
  readers the first, so a repeat is refused;
* sections are separated by exactly one blank line; two blank lines in a row
  are refused (no writer emits them, and readers split them differently);
* the main section needs ``Manifest-Version: 1.0`` (``Signature-Version:
  1.0`` in a ``.SF``) and must not hold ``Name``; every other section starts
  with ``Name`` and a name appears in one section only (``DUPLICATE_ENTRY``:
  Java merges repeated sections, the last digest winning);
* digests: ``<ALG>-Digest`` with ALG in both spellings, ``SHA-256`` as
  jarsigner writes it and ``SHA256`` as Mozilla and KaiOS write it (also
  SHA-1, SHA-384, SHA-512); unknown algorithms are ignored, as jarsigner
  does; two digests of one algorithm in one section that disagree (e.g.
  ``SHA-256-Digest`` and ``SHA256-Digest``) are refused at parse time as
  ``INVALID_SIGNATURE``: the file contradicts itself, whatever the entry holds;
* unknown headers are kept and ignored (apksigner's ``X-Android-APK-Signed``,
  Mozilla's ``Digest-Algorithms``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from kaisec.errors import DuplicateEntryError, InvalidSignatureError, WeakAlgorithmError

__all__ = [
    "DIGEST_LABELS",
    "DIGEST_SIZES",
    "STRONG_ALGORITHMS",
    "JarManifest",
    "Section",
    "SignatureFile",
    "SignatureFileLimits",
    "Spelling",
    "build_manifest",
    "build_signature_file",
    "check_signature_file",
    "entry_algorithms",
    "format_header",
    "parse_manifest",
    "parse_signature_file",
    "signature_file_kind",
]

#: Digest algorithms kaisec knows, by hashlib name, with their digest sizes.
DIGEST_SIZES: Mapping[str, int] = MappingProxyType(
    {"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64}
)
#: The ones accepted without the legacy option.
STRONG_ALGORITHMS = frozenset({"sha256", "sha384", "sha512"})

#: Header spellings of each algorithm, lower-cased (header names are case-insensitive).
DIGEST_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "sha1": "sha1",
        "sha-1": "sha1",
        "sha256": "sha256",
        "sha-256": "sha256",
        "sha384": "sha384",
        "sha-384": "sha384",
        "sha512": "sha512",
        "sha-512": "sha512",
    }
)
_ALG_BY_LABEL = DIGEST_LABELS
# Output spellings: jarsigner's ("SHA-256-Digest") or Mozilla/KaiOS ("SHA256-Digest").
_LABELS = {
    "jar": {"sha1": "SHA1", "sha256": "SHA-256", "sha384": "SHA-384", "sha512": "SHA-512"},
    "mozilla": {"sha1": "SHA1", "sha256": "SHA256", "sha384": "SHA384", "sha512": "SHA512"},
}
Spelling = Literal["jar", "mozilla"]

_EOL = re.compile(rb"\r\n|\r|\n")
_HEADER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,69}")
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f]")
_HEADER_LINE = re.compile(rb"([A-Za-z0-9][A-Za-z0-9_-]{0,69}): ([^\x00-\x08\x0a-\x1f\x7f]*)", re.S)
_MAX_WRITE_LINE = 72  # bytes per line, without the CRLF (JAR spec, "Line length")


@dataclass(frozen=True)
class SignatureFileLimits:
    """Bounds on an untrusted ``MANIFEST.MF`` or ``.SF`` (over a bound: INVALID_SIGNATURE)."""

    max_size: int = 16 * 1024 * 1024
    max_line_length: int = 512  # physical line, without its terminator (Java's limit)
    max_value_length: int = 16 * 1024  # one header after joining continuation lines
    max_sections: int = 10_001  # ZipLimits.max_entries + the main section
    max_headers: int = 64  # per section


@dataclass(frozen=True, slots=True)
class Section:
    """One section: its headers (lower-cased names) and its byte span in the file.

    ``start``/``end`` cover the section's lines and the blank line that ends it
    (what the ``.SF`` per-section digests are computed over, as jarsigner does).
    """

    headers: Mapping[str, str]
    start: int
    end: int

    @property
    def name(self) -> str | None:
        return self.headers.get("name")

    def digests(self, suffix: str = "-digest") -> dict[str, bytes]:
        """The section's known digests ending in ``suffix``: algorithm -> raw digest.

        Raises:
            InvalidSignatureError: INVALID_SIGNATURE, a digest is not base64 of
                the right length, or two digests of one algorithm disagree.
        """
        out: dict[str, bytes] = {}
        cut = len(suffix)
        for key, value in self.headers.items():
            if not key.endswith(suffix):
                continue
            alg = _ALG_BY_LABEL.get(key[:-cut])
            if alg is None:
                continue  # unknown algorithm: ignored, as jarsigner does
            try:
                raw = binascii.a2b_base64(value, strict_mode=True)
            except (binascii.Error, ValueError) as exc:
                raise InvalidSignatureError(
                    f"malformed digest: {key} in {self._where()} is not base64: {value[:80]!r}"
                ) from exc
            if len(raw) != DIGEST_SIZES[alg]:
                raise InvalidSignatureError(
                    f"malformed digest: {key} in {self._where()} has {len(raw)} bytes, expected "
                    f"{DIGEST_SIZES[alg]}"
                )
            if alg in out and out[alg] != raw:
                raise InvalidSignatureError(
                    f"conflicting digests: two {alg} digests in {self._where()} disagree"
                )
            out[alg] = raw
        return out

    def _where(self) -> str:
        name = self.headers.get("name")
        return f"section {name!r}" if name is not None else "main section"


@dataclass(frozen=True)
class JarManifest:
    """A parsed ``META-INF/MANIFEST.MF``: main section and one section per listed entry."""

    data: bytes = field(repr=False)
    main: Section
    sections: Mapping[str, Section]  # entry name -> section, in file order
    digests: Mapping[str, Mapping[str, bytes]]  # entry name -> algorithm -> digest


@dataclass(frozen=True)
class SignatureFile:
    """A parsed signature file (``.SF``)."""

    data: bytes = field(repr=False)
    main: Section
    sections: Mapping[str, Section]
    manifest_digests: Mapping[str, bytes]  # <ALG>-Digest-Manifest
    main_attributes_digests: Mapping[str, bytes]  # <ALG>-Digest-Manifest-Main-Attributes


def signature_file_kind(name: str) -> Literal["manifest", "sf", "block", "other"] | None:
    """What a ZIP entry is to a JAR verifier: a signature-related file, or None.

    The rule of ``java.util.jar`` (``SignatureFileVerifier.isSigningRelated``),
    case-insensitive: directly in ``META-INF/``, ``MANIFEST.MF``, ``*.SF``,
    ``*.RSA``/``*.EC``/``*.DSA`` (signature blocks) or ``SIG-*``. Every other
    entry, in ``META-INF/`` or not, is content that must be signed.
    """
    upper = name.upper()
    if not upper.startswith("META-INF/"):
        return None
    rest = upper[9:]
    if not rest or "/" in rest:
        return None
    if rest == "MANIFEST.MF":
        return "manifest"
    if rest.endswith(".SF"):
        return "sf"
    if rest.endswith((".RSA", ".EC", ".DSA")):
        return "block"
    if rest.startswith("SIG-"):
        return "other"
    return None


# --- parsing --------------------------------------------------------------------


def _bad(what: str, message: str) -> InvalidSignatureError:
    return InvalidSignatureError(f"malformed {what}: {message}", file=what)


def _split_sections(
    data: bytes, what: str, limits: SignatureFileLimits
) -> list[tuple[list[tuple[int, bytes]], int, int]]:
    # -> [(lines as (line number, content), start, end)] per section.
    if len(data) > limits.max_size:
        raise _bad(what, f"{len(data)} bytes, limit {limits.max_size}")
    if not data:
        raise _bad(what, "empty file")
    if data[-1] not in (0x0A, 0x0D):
        raise _bad(what, "the last line has no line terminator")
    # bytes.splitlines splits on exactly CRLF, LF and CR, as java.util.jar does.
    raw_lines = data.splitlines(keepends=True)
    max_line = limits.max_line_length + 2
    sections: list[tuple[list[tuple[int, bytes]], int, int]] = []
    lines: list[tuple[int, bytes]] = []
    start = pos = 0
    blank_before = False
    for number, raw in enumerate(raw_lines, 1):
        line_start = pos
        pos += len(raw)
        if raw[0] in (0x0A, 0x0D):  # a blank line ends a section
            if blank_before or not lines:
                raise _bad(what, f"unexpected blank line {number}")
            sections.append((lines, start, pos))
            lines = []
            blank_before = True
            continue
        content = raw.rstrip(b"\r\n")
        if len(raw) > max_line and len(content) > limits.max_line_length:
            raise _bad(
                what, f"line {number} has {len(content)} bytes, limit {limits.max_line_length}"
            )
        if not lines:
            start = line_start
            if len(sections) >= limits.max_sections:
                raise _bad(what, f"more than {limits.max_sections} sections")
        lines.append((number, content))
        blank_before = False
    if lines:
        sections.append((lines, start, pos))
    return sections


def _parse_section(
    lines: list[tuple[int, bytes]], start: int, end: int, what: str, limits: SignatureFileLimits
) -> Section:
    # Logical headers: a header line plus its continuation lines, joined as bytes
    # before decoding.
    raw_headers: list[tuple[int, bytes]] = []
    for number, content in lines:
        if content[0] == 0x20:
            if not raw_headers:
                raise _bad(what, f"line {number} continues nothing")
            first, joined = raw_headers[-1]
            joined += content[1:]
            if len(joined) > limits.max_value_length:
                raise _bad(what, f"header at line {first} over {limits.max_value_length} bytes")
            raw_headers[-1] = (first, joined)
        else:
            raw_headers.append((number, content))
    if len(raw_headers) > limits.max_headers:
        raise _bad(what, f"section at line {lines[0][0]} has over {limits.max_headers} headers")
    headers: dict[str, str] = {}
    for number, raw in raw_headers:
        # One match checks the name grammar, the ": " and the absence of control
        # characters (UTF-8 never uses bytes under 0x80 inside a character).
        match = _HEADER_LINE.fullmatch(raw)
        if match is None:
            raise _bad(what, _header_problem(raw, number))
        key_raw, value_raw = match.groups()
        try:
            value = value_raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _bad(what, f"line {number} is not UTF-8") from exc
        lower = key_raw.decode("ascii").lower()
        if lower in headers:
            raise _bad(
                what, f"line {number}: header {key_raw.decode()} appears twice in one section"
            )
        headers[lower] = value
    return Section(headers=headers, start=start, end=end)


def _header_problem(raw: bytes, number: int) -> str:
    text = raw.decode("utf-8", "replace")
    key, sep, _ = text.partition(": ")
    if sep and _HEADER_NAME.fullmatch(key):
        return f"line {number}: control character in the value of {key}"
    return f"line {number} is not a 'Name: value' header: {text[:80]!r}"


def _parse(
    data: bytes, what: str, version_key: str, limits: SignatureFileLimits
) -> tuple[Section, dict[str, Section]]:
    parts = _split_sections(data, what, limits)
    main = _parse_section(*parts[0], what=what, limits=limits)
    if "name" in main.headers:
        raise _bad(what, "the main section holds a Name header")
    version = main.headers.get(version_key)
    if version != "1.0":
        label = "-".join(p.capitalize() for p in version_key.split("-"))
        raise _bad(what, f"expected '{label}: 1.0' in the main section, got {version!r}")
    sections: dict[str, Section] = {}
    for lines, start, end in parts[1:]:
        first = lines[0][1]
        if first[:6].lower() != b"name: ":
            raise _bad(what, f"section at line {lines[0][0]} does not start with a Name header")
        section = _parse_section(lines, start, end, what, limits)
        name = section.headers.get("name")
        if not name:
            raise _bad(what, f"empty Name at line {lines[0][0]}")
        if name in sections:
            raise DuplicateEntryError(
                f"duplicate section: {what} lists {name!r} twice", entry=name, file=what
            )
        sections[name] = section
    return main, sections


def parse_manifest(
    data: bytes, *, what: str = "META-INF/MANIFEST.MF", limits: SignatureFileLimits | None = None
) -> JarManifest:
    """Parse a JAR manifest (untrusted bytes).

    Args:
        data: the file's bytes.
        what: the file's name, for messages.
        limits: size and shape bounds.

    Raises:
        InvalidSignatureError: INVALID_SIGNATURE, malformed, over a limit, or a
            section whose digests are malformed or contradict each other.
        DuplicateEntryError: DUPLICATE_ENTRY, an entry listed in two sections.
    """
    main, sections = _parse(data, what, "manifest-version", limits or SignatureFileLimits())
    digests = {name: MappingProxyType(sec.digests()) for name, sec in sections.items()}
    return JarManifest(
        data=data,
        main=main,
        sections=MappingProxyType(sections),
        digests=MappingProxyType(digests),
    )


def parse_signature_file(
    data: bytes, *, what: str = "META-INF/SIGNER.SF", limits: SignatureFileLimits | None = None
) -> SignatureFile:
    """Parse a signature file (untrusted bytes).

    Raises:
        InvalidSignatureError: INVALID_SIGNATURE, malformed or over a limit.
        DuplicateEntryError: DUPLICATE_ENTRY, an entry in two sections.
    """
    main, sections = _parse(data, what, "signature-version", limits or SignatureFileLimits())
    for sec in sections.values():
        sec.digests()  # malformed or conflicting digests fail now, not later
    return SignatureFile(
        data=data,
        main=main,
        sections=MappingProxyType(sections),
        manifest_digests=MappingProxyType(main.digests("-digest-manifest")),
        main_attributes_digests=MappingProxyType(main.digests("-digest-manifest-main-attributes")),
    )


# --- checks ---------------------------------------------------------------------


def entry_algorithms(digests: Mapping[str, bytes], *, where: str, legacy: bool) -> frozenset[str]:
    """The algorithms to check for one section's digests: every known one listed.

    Every digest a section carries is checked, SHA-1 too when a strong one is
    present: a reader that prefers SHA-1 (KaiOS does) must not see other bytes
    than one that prefers SHA-256.

    Raises:
        InvalidSignatureError: INVALID_SIGNATURE, no digest of a known algorithm.
        WeakAlgorithmError: WEAK_ALGORITHM, only SHA-1, and ``legacy`` is off.
    """
    if not digests:
        raise InvalidSignatureError(
            f"no supported digest for {where} (expected SHA-256-Digest or SHA256-Digest)",
            entry=where,
        )
    if not legacy and not STRONG_ALGORITHMS.intersection(digests):
        raise WeakAlgorithmError(
            f"weak algorithm: {where} has only a SHA-1 digest (legacy mode is off)", entry=where
        )
    return frozenset(digests)


def _check_digests(expected: Mapping[str, bytes], data: bytes, *, where: str, legacy: bool) -> None:
    for alg in sorted(entry_algorithms(expected, where=where, legacy=legacy)):
        if hashlib.new(alg, data).digest() != expected[alg]:
            raise InvalidSignatureError(
                f"signature file does not match the manifest: {alg} digest of {where} differs",
                entry=where,
            )


def check_signature_file(sf: SignatureFile, mf: JarManifest, *, legacy: bool) -> None:
    """Check that the ``.SF`` vouches for the whole manifest, section by section if need be.

    (1) If the ``.SF`` has a whole-manifest digest (``<ALG>-Digest-Manifest``),
    every known one must match the manifest's bytes; nothing else is needed.
    (2) Otherwise (as jarsigner falls back) a main-attributes digest, if any,
    must match the main section, and every manifest section must have a
    ``.SF`` section whose digests match its bytes; a ``.SF`` section naming
    no manifest section is refused. Unlike jarsigner, a whole-manifest digest
    that is present but wrong is not rescued by the per-section digests: a
    package has one signer here, and a changed manifest is a changed package.

    Raises:
        InvalidSignatureError: INVALID_SIGNATURE, a digest differs or is missing.
        WeakAlgorithmError: WEAK_ALGORITHM, only SHA-1 digests without ``legacy``.
    """
    if sf.manifest_digests:
        _check_digests(sf.manifest_digests, mf.data, where="the whole manifest", legacy=legacy)
        return
    if sf.main_attributes_digests:
        main = mf.data[mf.main.start : mf.main.end]
        _check_digests(
            sf.main_attributes_digests, main, where="the manifest's main section", legacy=legacy
        )
    for name, section in mf.sections.items():
        signed = sf.sections.get(name)
        if signed is None:
            raise InvalidSignatureError(
                f"signature file does not match the manifest: no section for {name!r}", entry=name
            )
        _check_digests(
            signed.digests(), mf.data[section.start : section.end], where=name, legacy=legacy
        )
    for name in sf.sections:
        if name not in mf.sections:
            raise InvalidSignatureError(
                f"signature file does not match the manifest: {name!r} is not in the manifest",
                entry=name,
            )


# --- writing --------------------------------------------------------------------


def format_header(name: str, value: str) -> bytes:
    """One header as CRLF lines of at most 72 bytes, continuation lines starting with a space.

    Lines are never split inside a UTF-8 character, so a reader that decodes
    line by line reads the same text as one that joins bytes first.

    Raises:
        ValueError: a header name outside the JAR grammar, or a line break or
            control character in the value.
    """
    if not _HEADER_NAME.fullmatch(name):
        raise ValueError(f"invalid manifest header name {name!r}")
    if _CONTROL.search(value) or "\r" in value:
        raise ValueError(f"control character in manifest header value {value!r}")
    raw = f"{name}: {value}".encode()
    out = bytearray()
    limit = _MAX_WRITE_LINE
    while True:
        if len(raw) <= limit:
            out += raw + b"\r\n"
            return bytes(out)
        cut = limit
        while cut > 0 and (raw[cut] & 0xC0) == 0x80:  # inside a UTF-8 sequence
            cut -= 1
        out += raw[:cut] + b"\r\n "
        raw = raw[cut:]
        limit = _MAX_WRITE_LINE - 1


def _digest_headers(
    digests: Mapping[str, bytes], algorithms: Sequence[str], spelling: Spelling, suffix: str
) -> bytes:
    labels = _LABELS[spelling]
    return b"".join(
        format_header(f"{labels[alg]}{suffix}", base64.b64encode(digests[alg]).decode("ascii"))
        for alg in algorithms
    )


def _check_algorithms(algorithms: Sequence[str]) -> None:
    if not algorithms or any(a not in DIGEST_SIZES for a in algorithms):
        raise ValueError(f"unsupported digest algorithms {algorithms!r}")


def build_manifest(
    entries: Iterable[tuple[str, Mapping[str, bytes]]],
    *,
    algorithms: Sequence[str],
    created_by: str,
    spelling: Spelling = "jar",
) -> bytes:
    """A ``MANIFEST.MF`` listing each entry with its digests (in ``algorithms`` order).

    ``mozilla`` spelling also writes ``Digest-Algorithms``, which KaiOS reads.

    Raises:
        ValueError: an unknown algorithm, a digest missing for an entry, or a
            name that cannot be written.
    """
    _check_algorithms(algorithms)
    parts = [
        format_header("Manifest-Version", "1.0"),
        format_header("Created-By", created_by),
        b"\r\n",
    ]
    labels = " ".join(_LABELS[spelling][a] for a in algorithms)
    for name, digests in entries:
        parts.append(format_header("Name", name))
        if spelling == "mozilla":
            parts.append(format_header("Digest-Algorithms", labels))
        parts.append(_digest_headers(digests, algorithms, spelling, "-Digest"))
        parts.append(b"\r\n")
    return b"".join(parts)


def build_signature_file(
    manifest: JarManifest,
    *,
    algorithms: Sequence[str],
    created_by: str,
    spelling: Spelling = "jar",
) -> bytes:
    """The ``.SF`` for a manifest: whole-manifest, main-section and per-section digests.

    Raises:
        ValueError: an unknown algorithm.
    """
    _check_algorithms(algorithms)
    data = manifest.data

    def hashes(chunk: bytes) -> dict[str, bytes]:
        return {alg: hashlib.new(alg, chunk).digest() for alg in algorithms}

    parts = [
        format_header("Signature-Version", "1.0"),
        format_header("Created-By", created_by),
        _digest_headers(hashes(data), algorithms, spelling, "-Digest-Manifest"),
        _digest_headers(
            hashes(data[manifest.main.start : manifest.main.end]),
            algorithms,
            spelling,
            "-Digest-Manifest-Main-Attributes",
        ),
        b"\r\n",
    ]
    for name, section in manifest.sections.items():
        parts.append(format_header("Name", name))
        parts.append(
            _digest_headers(
                hashes(data[section.start : section.end]), algorithms, spelling, "-Digest"
            )
        )
        parts.append(b"\r\n")
    return b"".join(parts)
