"""Long-running fuzz target for kaisec's hardened ZIP reader.

Property: on any input, ``SafeZipReader`` plus reading every entry raises
nothing but ``kaisec.errors.KaisecError`` subclasses, and whenever it accepts
an archive Python's ``zipfile`` reads the same names and bytes (no parser
differential).

Run from the repository root:

    .venv/bin/python fuzz/fuzz_zip.py                     # hypothesis, 20,000 examples
    .venv/bin/python fuzz/fuzz_zip.py --examples 200000   # longer
    .venv/bin/python fuzz/fuzz_zip.py --atheris -atheris_runs=1000000  # needs `pip install atheris`

The seeds, mutator and checker are shared with the in-suite property tests
(``tests/package/zipcraft.py``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.package.zipcraft import (  # noqa: E402
    SIGNATURES,
    exercise,
    mutate,
    seed_archives,
    structured_archives,
)


def run_hypothesis(examples: int) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    seeds = seed_archives()
    ops = st.lists(
        st.tuples(st.integers(0, 6), st.integers(0, 1 << 16), st.integers(0, 255)),
        min_size=1,
        max_size=12,
    )
    inputs = st.one_of(
        st.builds(mutate, st.sampled_from(seeds), ops),
        st.binary(max_size=8192),
        st.lists(st.one_of(st.sampled_from(SIGNATURES), st.binary(max_size=64)), max_size=48).map(
            b"".join
        ),
        structured_archives(),
    )

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(inputs)
    def target(data: bytes) -> None:
        exercise(data)

    target()
    print(f"ok: {examples} examples, no foreign exception, no differential")


def run_atheris(argv: list[str]) -> None:
    import atheris  # type: ignore[import-untyped, unused-ignore]

    seeds = seed_archives()

    def one_input(data: bytes) -> None:
        fdp = atheris.FuzzedDataProvider(data)
        if fdp.ConsumeBool():
            seed = seeds[fdp.ConsumeIntInRange(0, len(seeds) - 1)]
            count = fdp.ConsumeIntInRange(1, 12)
            ops = [
                (
                    fdp.ConsumeIntInRange(0, 6),
                    fdp.ConsumeIntInRange(0, 1 << 16),
                    fdp.ConsumeIntInRange(0, 255),
                )
                for _ in range(count)
            ]
            exercise(mutate(seed, ops))
        else:
            exercise(fdp.ConsumeBytes(fdp.remaining_bytes()))

    atheris.Setup(argv, one_input)
    atheris.Fuzz()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20_000)
    parser.add_argument("--atheris", action="store_true", help="use atheris (libFuzzer)")
    args, rest = parser.parse_known_args()
    if args.atheris:
        run_atheris([sys.argv[0], *rest])
    else:
        run_hypothesis(args.examples)


if __name__ == "__main__":
    main()
