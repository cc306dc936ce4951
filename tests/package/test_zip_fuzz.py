"""Property tests: mutated and random archives raise nothing but kaisec errors.

A longer run lives in ``fuzz/fuzz_zip.py``; this one stays fast (about 200
examples per property).
"""

from __future__ import annotations

import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kaisec._internal.zipsafe import SafeZipReader, check_entry_name, check_name_set
from kaisec._internal.zipwrite import write_zip
from kaisec.errors import KaisecError

from .zipcraft import SIGNATURES, exercise, mutate, seed_archives, structured_archives

SEEDS = seed_archives()
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ops = st.lists(
    st.tuples(st.integers(0, 6), st.integers(0, 1 << 16), st.integers(0, 255)),
    min_size=1,
    max_size=6,
)


def test_seeds_are_valid() -> None:
    for seed in SEEDS:
        exercise(seed)


@FAST
@given(seed=st.sampled_from(SEEDS), mutations=ops)
def test_mutated_archives(seed: bytes, mutations: list[tuple[int, int, int]]) -> None:
    exercise(mutate(seed, mutations))


@FAST
@given(data=st.binary(max_size=4096))
def test_random_bytes(data: bytes) -> None:
    exercise(data)


@FAST
@given(parts=st.lists(st.one_of(st.sampled_from(SIGNATURES), st.binary(max_size=64)), max_size=24))
def test_signature_soup(parts: list[bytes]) -> None:
    exercise(b"".join(parts))


@FAST
@given(seed=st.sampled_from(SEEDS), cut=st.integers(0, 1 << 16))
def test_every_truncation(seed: bytes, cut: int) -> None:
    exercise(seed[: cut % (len(seed) + 1)])


@FAST
@given(data=structured_archives())
def test_structured_archives(data: bytes) -> None:
    exercise(data)


safe_names = st.lists(
    st.text(alphabet="abcXYZé0-_.", min_size=1, max_size=8), min_size=1, max_size=3
).map("/".join)


@FAST
@given(files=st.dictionaries(safe_names, st.binary(max_size=2000), max_size=8))
def test_write_zip_round_trip(files: dict[str, bytes]) -> None:
    items = sorted(files.items())
    try:
        check_name_set(name for name, _ in items)
        for name, _ in items:
            check_entry_name(name)
    except KaisecError:
        return  # write_zip refuses these too (tested elsewhere)
    buf = io.BytesIO()
    write_zip(buf, items)
    with SafeZipReader(io.BytesIO(buf.getvalue())) as reader:
        assert [e.name for e in reader.entries] == [name for name, _ in items]
        assert {e.name: reader.read(e, max_size=1 << 20) for e in reader.entries} == files
    exercise(buf.getvalue())  # and zipfile agrees
