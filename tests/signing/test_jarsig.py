"""MANIFEST.MF / .SF parsing and writing (kaisec._internal.jarsig)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from kaisec._internal import jarsig
from kaisec.errors import (
    DuplicateEntryError,
    InvalidSignatureError,
    KaisecError,
    WeakAlgorithmError,
)

D256 = base64.b64encode(hashlib.sha256(b"x").digest()).decode()
D256_Y = base64.b64encode(hashlib.sha256(b"y").digest()).decode()
D1 = base64.b64encode(hashlib.sha1(b"x").digest()).decode()


def mf(*sections: str, eol: str = "\r\n", main: str = "Manifest-Version: 1.0") -> bytes:
    parts = [main, *sections]
    return (eol + eol).join(p.replace("\n", eol) for p in parts).encode() + (eol * 2).encode()


def test_round_trip_and_spans() -> None:
    data = jarsig.build_manifest(
        [("a.js", {"sha256": hashlib.sha256(b"x").digest()}), ("b/c.html", {"sha256": b"\0" * 32})],
        algorithms=["sha256"],
        created_by="test",
    )
    parsed = jarsig.parse_manifest(data)
    assert list(parsed.sections) == ["a.js", "b/c.html"]
    assert parsed.digests["a.js"]["sha256"] == hashlib.sha256(b"x").digest()
    section = parsed.sections["a.js"]
    assert data[section.start : section.end] == (
        f"Name: a.js\r\nSHA-256-Digest: {D256}\r\n\r\n".encode()
    )
    assert data[parsed.main.start : parsed.main.end].endswith(b"\r\n\r\n")


@pytest.mark.parametrize("eol", ["\r\n", "\n", "\r"])
def test_line_terminators(eol: str) -> None:
    parsed = jarsig.parse_manifest(mf(f"Name: a\nSHA-256-Digest: {D256}", eol=eol))
    assert parsed.digests["a"] == {"sha256": hashlib.sha256(b"x").digest()}


@pytest.mark.parametrize(
    "label", ["SHA-256-Digest", "SHA256-Digest", "sha-256-digest", "Sha256-DIGEST"]
)
def test_both_digest_spellings_any_case(label: str) -> None:
    parsed = jarsig.parse_manifest(mf(f"Name: a\n{label}: {D256}"))
    assert set(parsed.digests["a"]) == {"sha256"}


def test_unknown_headers_and_algorithms_are_ignored() -> None:
    parsed = jarsig.parse_manifest(
        mf(
            f"Name: a\nDigest-Algorithms: SHA1 SHA256\nMD5-Digest: AAAA\nX-Foo: bar\nSHA256-Digest: {D256}"
        )
    )
    assert set(parsed.digests["a"]) == {"sha256"}


def test_agreeing_duplicate_spellings_accepted() -> None:
    parsed = jarsig.parse_manifest(mf(f"Name: a\nSHA-256-Digest: {D256}\nSHA256-Digest: {D256}"))
    assert set(parsed.digests["a"]) == {"sha256"}


def test_continuation_lines_join_bytes_before_decoding() -> None:
    name = "dossier/" + "é" * 60 + ".js"  # forces wrapping around multi-byte characters
    header = jarsig.format_header("Name", name)
    lines = header.split(b"\r\n")[:-1]
    assert all(len(line) <= 72 for line in lines)
    assert all(line.startswith(b" ") for line in lines[1:])
    for line in lines:  # never split inside a UTF-8 sequence
        line.decode("utf-8")
    parsed = jarsig.parse_manifest(
        b"Manifest-Version: 1.0\r\n\r\n" + header + f"SHA-256-Digest: {D256}\r\n\r\n".encode()
    )
    assert name in parsed.sections


def test_java_style_mid_character_split_still_reads() -> None:
    raw = "Name: " + "é" * 40
    enc = raw.encode()
    cut = 71 if (enc[71] & 0xC0) == 0x80 else 72  # split inside a character, as old JDKs did
    data = (
        b"Manifest-Version: 1.0\r\n\r\n" + enc[:cut] + b"\r\n " + enc[cut:] + b"\r\n"
        + f"SHA-256-Digest: {D256}\r\n\r\n".encode()
    )  # fmt: skip
    assert "é" * 40 in jarsig.parse_manifest(data).sections


def test_format_header_refuses_bad_input() -> None:
    with pytest.raises(ValueError):
        jarsig.format_header("Bad Name", "x")
    with pytest.raises(ValueError):
        jarsig.format_header("Name", "a\nb")
    with pytest.raises(ValueError):
        jarsig.build_manifest([], algorithms=["md5"], created_by="x")


BAD_MANIFESTS: dict[str, bytes] = {
    "empty": b"",
    "no version": b"Created-By: x\r\n\r\n",
    "version 2.0": b"Manifest-Version: 2.0\r\n\r\n",
    "no trailing newline": b"Manifest-Version: 1.0",
    "last line unterminated": f"Manifest-Version: 1.0\r\n\r\nName: a\r\nSHA-256-Digest: {D256}".encode(),
    "leading blank line": b"\r\nManifest-Version: 1.0\r\n\r\n",
    "two blank lines": f"Manifest-Version: 1.0\r\n\r\n\r\nName: a\r\nSHA-256-Digest: {D256}\r\n\r\n".encode(),
    "name in main": b"Manifest-Version: 1.0\r\nName: a\r\n\r\n",
    "section without name": f"Manifest-Version: 1.0\r\n\r\nSHA-256-Digest: {D256}\r\nName: a\r\n\r\n".encode(),
    "empty name": b"Manifest-Version: 1.0\r\n\r\nName: \r\n\r\n",
    "no colon space": b"Manifest-Version:1.0\r\n\r\n",
    "bad header name": b"Manifest-Version: 1.0\r\nBad Header: x\r\n\r\n",
    "header name too long": b"Manifest-Version: 1.0\r\n" + b"X" * 71 + b": y\r\n\r\n",
    "continuation first": b" Manifest-Version: 1.0\r\n\r\n",
    "repeated header": b"Manifest-Version: 1.0\r\nManifest-Version: 1.0\r\n\r\n",
    "repeated header other case": b"Manifest-Version: 1.0\r\nmanifest-version: 1.0\r\n\r\n",
    "not utf-8": b"Manifest-Version: 1.0\r\nX: \xff\xfe\r\n\r\n",
    "nul in value": b"Manifest-Version: 1.0\r\nX: a\x00b\r\n\r\n",
    "line over 512 bytes": b"Manifest-Version: 1.0\r\nX: " + b"a" * 510 + b"\r\n\r\n",
    "digest not base64": b"Manifest-Version: 1.0\r\n\r\nName: a\r\nSHA-256-Digest: !!!!\r\n\r\n",
    "digest wrong length": f"Manifest-Version: 1.0\r\n\r\nName: a\r\nSHA-256-Digest: {D1}\r\n\r\n".encode(),
    "two sha256 digests disagree": (
        f"Manifest-Version: 1.0\r\n\r\nName: a\r\nSHA-256-Digest: {D256}\r\n"
        f"SHA256-Digest: {D256_Y}\r\n\r\n"
    ).encode(),
}


@pytest.mark.parametrize("case", sorted(BAD_MANIFESTS))
def test_bad_manifest_refused(case: str) -> None:
    with pytest.raises(InvalidSignatureError):
        jarsig.parse_manifest(BAD_MANIFESTS[case])


def test_duplicate_sections_are_duplicate_entry() -> None:
    data = mf(f"Name: a\nSHA-256-Digest: {D256}", f"Name: a\nSHA-256-Digest: {D256_Y}")
    with pytest.raises(DuplicateEntryError) as info:
        jarsig.parse_manifest(data)
    assert info.value.details["entry"] == "a"


def test_limits() -> None:
    small = jarsig.SignatureFileLimits(max_size=100, max_sections=2, max_headers=3)
    with pytest.raises(InvalidSignatureError, match="bytes, limit 100"):
        jarsig.parse_manifest(
            b"Manifest-Version: 1.0\r\nX: " + b"a" * 100 + b"\r\n\r\n", limits=small
        )
    many = mf("Name: a\nX: 1", "Name: b\nX: 1", "Name: c\nX: 1")
    with pytest.raises(InvalidSignatureError, match="sections"):
        jarsig.parse_manifest(many, limits=jarsig.SignatureFileLimits(max_sections=2))
    headers = mf("Name: a\nA: 1\nB: 1\nC: 1")
    with pytest.raises(InvalidSignatureError, match="headers"):
        jarsig.parse_manifest(headers, limits=jarsig.SignatureFileLimits(max_headers=3))
    long_value = b"Manifest-Version: 1.0\r\nX: a\r\n" + b" " + b"b" * 500 + b"\r\n" * 1
    with pytest.raises(InvalidSignatureError, match="over 100 bytes"):
        jarsig.parse_manifest(
            long_value + b"\r\n", limits=jarsig.SignatureFileLimits(max_value_length=100)
        )


def test_entry_algorithms() -> None:
    assert jarsig.entry_algorithms({"sha256": b""}, where="a", legacy=False) == {"sha256"}
    assert jarsig.entry_algorithms({"sha1": b"", "sha256": b""}, where="a", legacy=False) == {
        "sha1",
        "sha256",
    }
    with pytest.raises(WeakAlgorithmError):
        jarsig.entry_algorithms({"sha1": b""}, where="a", legacy=False)
    assert jarsig.entry_algorithms({"sha1": b""}, where="a", legacy=True) == {"sha1"}
    with pytest.raises(InvalidSignatureError):
        jarsig.entry_algorithms({}, where="a", legacy=True)


# --- .SF ---------------------------------------------------------------------------------


def _pair(algorithms: tuple[str, ...] = ("sha256",)) -> tuple[jarsig.JarManifest, bytes]:
    data = jarsig.build_manifest(
        [("a", {a: hashlib.new(a, b"1").digest() for a in algorithms}),
         ("b", {a: hashlib.new(a, b"2").digest() for a in algorithms})],
        algorithms=algorithms,
        created_by="test",
    )  # fmt: skip
    manifest = jarsig.parse_manifest(data)
    return manifest, jarsig.build_signature_file(manifest, algorithms=algorithms, created_by="t")


def test_signature_file_matches() -> None:
    manifest, sf_bytes = _pair()
    sf = jarsig.parse_signature_file(sf_bytes)
    assert set(sf.manifest_digests) == {"sha256"}
    assert set(sf.main_attributes_digests) == {"sha256"}
    jarsig.check_signature_file(sf, manifest, legacy=False)


def _drop_whole_digest(sf_bytes: bytes) -> bytes:
    lines = sf_bytes.split(b"\r\n")
    out, skip = [], False
    for line in lines:
        if line.startswith(b"SHA-256-Digest-Manifest:") or line.startswith(
            b"SHA1-Digest-Manifest:"
        ):
            skip = True
            continue
        if skip and line.startswith(b" "):
            continue
        skip = False
        out.append(line)
    return b"\r\n".join(out)


def test_per_section_fallback_when_whole_digest_absent() -> None:
    manifest, sf_bytes = _pair()
    sf = jarsig.parse_signature_file(_drop_whole_digest(sf_bytes))
    assert not sf.manifest_digests
    jarsig.check_signature_file(sf, manifest, legacy=False)
    # A changed section is caught by its own digest.
    changed = jarsig.parse_manifest(manifest.data.replace(b"Name: b", b"Name: c"))
    with pytest.raises(InvalidSignatureError, match="no section for 'c'"):
        jarsig.check_signature_file(sf, changed, legacy=False)


def test_per_section_sf_naming_unknown_entry() -> None:
    manifest, sf_bytes = _pair()
    extra = _drop_whole_digest(sf_bytes) + f"Name: zzz\r\nSHA-256-Digest: {D256}\r\n\r\n".encode()
    sf = jarsig.parse_signature_file(extra)
    with pytest.raises(InvalidSignatureError, match="not in the manifest"):
        jarsig.check_signature_file(sf, manifest, legacy=False)


def test_whole_digest_mismatch_is_not_rescued_by_sections() -> None:
    manifest, sf_bytes = _pair()
    sf = jarsig.parse_signature_file(sf_bytes)
    other = jarsig.parse_manifest(
        manifest.data + f"Name: new\r\nSHA-256-Digest: {D256}\r\n\r\n".encode()
    )
    with pytest.raises(InvalidSignatureError, match="whole manifest"):
        jarsig.check_signature_file(sf, other, legacy=False)


def test_sha1_only_signature_file_is_weak_without_legacy() -> None:
    manifest, sf_bytes = _pair(("sha1",))
    sf = jarsig.parse_signature_file(sf_bytes)
    with pytest.raises(WeakAlgorithmError):
        jarsig.check_signature_file(sf, manifest, legacy=False)
    jarsig.check_signature_file(sf, manifest, legacy=True)


def test_sha1_next_to_sha256_is_checked_too() -> None:
    manifest, sf_bytes = _pair(("sha1", "sha256"))
    bad_sha1 = base64.b64encode(hashlib.sha1(b"other").digest())
    text = sf_bytes.split(b"\r\n")
    text = [
        b"SHA1-Digest-Manifest: " + bad_sha1 if t.startswith(b"SHA1-Digest-Manifest:") else t
        for t in text
    ]
    sf = jarsig.parse_signature_file(b"\r\n".join(text))
    with pytest.raises(InvalidSignatureError, match="sha1 digest of the whole manifest"):
        jarsig.check_signature_file(sf, manifest, legacy=False)


def test_signature_file_needs_version() -> None:
    with pytest.raises(InvalidSignatureError, match="Signature-Version"):
        jarsig.parse_signature_file(b"Created-By: x\r\n\r\n")


def test_mozilla_spelling_written() -> None:
    data = jarsig.build_manifest(
        [("a", {"sha1": b"\1" * 20, "sha256": b"\2" * 32})],
        algorithms=["sha1", "sha256"],
        created_by="t",
        spelling="mozilla",
    )
    assert b"Digest-Algorithms: SHA1 SHA256\r\n" in data
    assert b"SHA1-Digest: " in data and b"SHA256-Digest: " in data
    assert jarsig.parse_manifest(data).digests["a"]["sha1"] == b"\1" * 20


@pytest.mark.parametrize(
    ("entry", "kind"),
    [
        ("META-INF/MANIFEST.MF", "manifest"),
        ("META-INF/manifest.mf", "manifest"),
        ("meta-inf/Manifest.Mf", "manifest"),
        ("META-INF/zigbert.sf", "sf"),
        ("META-INF/CERT.RSA", "block"),
        ("META-INF/A.EC", "block"),
        ("META-INF/A.DSA", "block"),
        ("META-INF/SIG-X", "other"),
        ("META-INF/id.json", None),
        ("META-INF/sub/A.SF", None),
        ("a/META-INF/A.SF", None),
        ("index.html", None),
    ],
)
def test_signature_file_kind(entry: str, kind: str | None) -> None:
    assert jarsig.signature_file_kind(entry) == kind


def test_only_kaisec_errors_from_garbage() -> None:
    for blob in (b"\xff" * 10, b"Manifest-Version: 1.0\r\n\r\n" + b"\x00" * 50 + b"\r\n"):
        with pytest.raises(KaisecError):
            jarsig.parse_manifest(blob)
