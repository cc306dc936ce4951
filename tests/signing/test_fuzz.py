"""Property tests: the MANIFEST.MF/.SF parser, the signature block and whole signed packages
raise nothing but kaisec's own errors.

A longer run lives in ``fuzz/fuzz_jarsig.py``; these stay fast (a few
hundred examples per property).
"""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kaisec._internal import jarsig
from kaisec._internal.pkcs7 import verify_detached
from kaisec._internal.zipsafe import check_entry_name
from kaisec.errors import KaisecError
from kaisec.package import verify_package
from kaisec.types import AppClass
from tests.package.zipcraft import mutate

from .conftest import Pki, signed_package

FAST = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

D = base64.b64encode(hashlib.sha256(b"x").digest()).decode()
EOL = st.sampled_from(["\r\n", "\n", "\r"])
HEADER_NAMES = st.sampled_from(
    ["Name", "name", "Manifest-Version", "Signature-Version", "SHA-256-Digest", "SHA256-Digest",
     "SHA1-Digest", "SHA-256-Digest-Manifest", "Digest-Algorithms", "X-Android-APK-Signed",
     "Bad Name", "", "Created-By", "SHA-512-Digest", "MD5-Digest"]
)  # fmt: skip
VALUES = st.one_of(
    st.just(D),
    st.just("1.0"),
    st.text(max_size=80),
    st.sampled_from(["a.js", "dir/é.html", "../x", "", " ", "=" * 3, "Zm9v"]),
)


@st.composite
def manifest_texts(draw: st.DrawFn) -> bytes:
    eol = draw(EOL)
    lines: list[str] = []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.integers(0, 4))
        if kind == 0:
            lines.append("")
        elif kind == 1:
            lines.append(" " + draw(st.text(max_size=40)))
        else:
            lines.append(f"{draw(HEADER_NAMES)}: {draw(VALUES)}")
    text = eol.join(lines) + draw(st.sampled_from([eol, eol * 2, ""]))
    return text.encode("utf-8", "surrogatepass")


def _parse_all(data: bytes) -> None:
    try:
        mf = jarsig.parse_manifest(data)
    except KaisecError:
        mf = None
    try:
        sf = jarsig.parse_signature_file(data)
    except KaisecError:
        return
    if mf is not None:
        for legacy in (False, True):
            try:
                jarsig.check_signature_file(sf, mf, legacy=legacy)
            except KaisecError:
                pass


@FAST
@given(data=st.binary(max_size=2048))
def test_random_bytes(data: bytes) -> None:
    _parse_all(data)


@FAST
@given(data=manifest_texts())
def test_grammar_soup(data: bytes) -> None:
    _parse_all(b"Manifest-Version: 1.0\r\n" + data)
    _parse_all(b"Signature-Version: 1.0\r\n" + data)
    _parse_all(data)


@FAST
@given(
    seed=st.sampled_from(["mf", "sf"]),
    mutations=st.lists(
        st.tuples(st.integers(0, 6), st.integers(0, 1 << 12), st.integers(0, 255)), max_size=5
    ),
)
def test_mutated_real_files(seed: str, mutations: list[tuple[int, int, int]]) -> None:
    manifest = jarsig.parse_manifest(_SEED_MF)
    data = (
        _SEED_MF
        if seed == "mf"
        else jarsig.build_signature_file(manifest, algorithms=["sha1", "sha256"], created_by="t")
    )
    _parse_all(mutate(data, mutations))


_SEED_MF = jarsig.build_manifest(
    [
        (f"dir/{i}/file-é-{i}.js" + "x" * i * 7, {"sha1": b"\1" * 20, "sha256": b"\2" * 32})
        for i in range(8)
    ],
    algorithms=["sha1", "sha256"],
    created_by="t",
)


@FAST
@given(name=st.text(min_size=1, max_size=300), value=st.binary(min_size=32, max_size=32))
def test_written_names_read_back(name: str, value: bytes) -> None:
    try:
        check_entry_name(name)
    except KaisecError:
        return
    data = jarsig.build_manifest([(name, {"sha256": value})], algorithms=["sha256"], created_by="t")
    parsed = jarsig.parse_manifest(data)
    assert list(parsed.sections) == [name]
    assert parsed.digests[name]["sha256"] == value
    sf = jarsig.parse_signature_file(
        jarsig.build_signature_file(parsed, algorithms=["sha256"], created_by="t")
    )
    jarsig.check_signature_file(sf, parsed, legacy=False)


# --- the signature block and whole packages ------------------------------------------------------


@pytest.fixture(scope="module")
def seed_package(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return signed_package(tmp_path_factory.mktemp("fuzz"), signer=pki.store).read_bytes()


@FAST
@given(
    mutations=st.lists(
        st.tuples(st.integers(0, 6), st.integers(0, 1 << 16), st.integers(0, 255)),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_signed_packages(
    seed_package: bytes, pki: Pki, mutations: list[tuple[int, int, int]]
) -> None:
    data = mutate(seed_package, mutations)
    try:
        result = verify_package(io.BytesIO(data), trust=pki.trust(), threads=2)
    except KaisecError:
        return
    # Whatever survives the mutations still carries the same signed content.
    assert result.app_class is AppClass.SIGNED


@FAST
@given(
    mutations=st.lists(
        st.tuples(st.integers(0, 6), st.integers(0, 1 << 12), st.integers(0, 255)),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_signature_blocks(pki: Pki, mutations: list[tuple[int, int, int]]) -> None:
    block = _block(pki)
    try:
        verify_detached(
            mutate(block, mutations), b"data", anchors=[(pki.store_root, AppClass.SIGNED)]
        )
    except KaisecError:
        pass


def _block(pki: Pki) -> bytes:
    cached = pki.cache.get("fuzz_block")
    if cached is None:
        from kaisec._internal.pkcs7 import sign_detached

        cached = sign_detached(b"data", key=pki.store.key, chain=[pki.store.cert, pki.store_root])  # type: ignore[arg-type]
        pki.cache["fuzz_block"] = cached
    assert isinstance(cached, bytes)
    return cached


def test_seed_package_is_valid(seed_package: bytes, pki: Pki, tmp_path: Path) -> None:
    assert verify_package(io.BytesIO(seed_package), trust=pki.trust()).app_class is AppClass.SIGNED
