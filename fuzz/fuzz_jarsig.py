"""Long-running fuzz target for the JAR signature parsers and whole signed packages.

Properties, on any input:

* ``jarsig.parse_manifest`` / ``parse_signature_file`` / ``check_signature_file``
  raise nothing but ``kaisec.errors.KaisecError`` subclasses;
* a manifest written by ``build_manifest`` for any safe entry name reads back
  with the same names and digests (writer and reader agree);
* ``pkcs7.verify_detached`` on a mutated signature block, and
  ``package.verify_package`` on a mutated signed package, raise nothing but
  kaisec errors, and a mutated package that still verifies still proves the
  signed class.

Run from the repository root:

    .venv/bin/python fuzz/fuzz_jarsig.py                    # 20,000 examples per target
    .venv/bin/python fuzz/fuzz_jarsig.py --examples 200000  # longer
    .venv/bin/python fuzz/fuzz_jarsig.py --only manifest    # manifest, names, block or package

The strategies are the in-suite ones (``tests/signing/test_fuzz.py``) with
more examples and longer mutation chains.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20_000, help="examples per target")
    parser.add_argument(
        "--only", choices=["manifest", "names", "block", "package"], default=None, help="one target"
    )
    args = parser.parse_args(argv)

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from tests.package.zipcraft import mutate
    from tests.signing import test_fuzz as tf
    from tests.signing.conftest import pki as pki_fixture
    from tests.signing.conftest import signed_package

    from kaisec._internal import jarsig
    from kaisec._internal.pkcs7 import sign_detached, verify_detached
    from kaisec._internal.zipsafe import check_entry_name
    from kaisec.errors import KaisecError
    from kaisec.package import verify_package
    from kaisec.types import AppClass

    pki = pki_fixture._get_wrapped_function()()  # type: ignore[attr-defined]
    trust = pki.trust()
    with tempfile.TemporaryDirectory() as tmp:
        seed_package = signed_package(Path(tmp), signer=pki.store).read_bytes()
    block = sign_detached(b"data", key=pki.store.key, chain=[pki.store.cert, pki.store_root])
    long_ops = st.lists(
        st.tuples(st.integers(0, 6), st.integers(0, 1 << 16), st.integers(0, 255)),
        min_size=1,
        max_size=12,
    )
    cfg = settings(
        max_examples=args.examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )

    seeds = [tf._SEED_MF, jarsig.build_signature_file(
        jarsig.parse_manifest(tf._SEED_MF), algorithms=["sha1", "sha256"], created_by="fuzz"
    )]  # fmt: skip

    @cfg
    @given(
        data=st.one_of(
            st.binary(max_size=8192),
            tf.manifest_texts(),
            st.builds(mutate, st.sampled_from(seeds), long_ops),
        )
    )
    def manifest(data: bytes) -> None:
        tf._parse_all(data)
        tf._parse_all(b"Manifest-Version: 1.0\r\n" + data)

    @cfg
    @given(name=st.text(min_size=1, max_size=1024), value=st.binary(min_size=32, max_size=32))
    def names(name: str, value: bytes) -> None:
        try:
            check_entry_name(name)
        except KaisecError:
            return
        data = jarsig.build_manifest(
            [(name, {"sha256": value})], algorithms=["sha256"], created_by="f"
        )
        parsed = jarsig.parse_manifest(data)
        assert list(parsed.sections) == [name] and parsed.digests[name]["sha256"] == value

    @cfg
    @given(ops=long_ops)
    def block_target(ops: list[tuple[int, int, int]]) -> None:
        with contextlib.suppress(KaisecError):
            verify_detached(mutate(block, ops), b"data", anchors=trust.anchors())

    @cfg
    @given(ops=long_ops)
    def package(ops: list[tuple[int, int, int]]) -> None:
        try:
            result = verify_package(io.BytesIO(mutate(seed_package, ops)), trust=trust)
        except KaisecError:
            return
        assert result.app_class is AppClass.SIGNED

    targets = {"manifest": manifest, "names": names, "block": block_target, "package": package}
    for label, target in targets.items():
        if args.only and label != args.only:
            continue
        start = time.monotonic()
        target()
        print(f"{label}: {args.examples} examples, no failure ({time.monotonic() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
