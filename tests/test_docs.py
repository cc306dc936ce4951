"""Docs stay current with the code."""

from __future__ import annotations

import re
from pathlib import Path

from kaisec.errors import error_codes

ROOT = Path(__file__).resolve().parents[1]


def test_every_error_code_is_documented_and_nothing_else() -> None:
    text = (ROOT / "docs" / "errors.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", text, flags=re.M))
    assert documented == set(error_codes())


def test_design_codes_exist() -> None:
    design = ROOT.parent / "shared" / "DESIGN.md"
    codes = set(error_codes())
    for code in (
        "NOT_SIGNED INVALID_SIGNATURE UNTRUSTED_SIGNER CERTIFICATE_EXPIRED WEAK_ALGORITHM "
        "MODIFIED_ENTRY UNSIGNED_ENTRY ENTRY_MISSING DUPLICATE_ENTRY UNSAFE_PATH "
        "PACKAGE_TOO_LARGE CORRUPT_PACKAGE MISSING_MANIFEST INVALID_MANIFEST "
        "INVALID_SECURITY_LEVEL INVALID_ORIGIN DUPLICATE_ORIGIN MANIFEST_MIME_TYPE "
        "SIGNER_MISMATCH VERSION_DOWNGRADE APP_NOT_FOUND PERMISSION_DENIED "
        "IMPLICIT_PERMISSION UNKNOWN_PERMISSION AUTH_REQUIRED"
    ).split():
        assert code in codes, code
    if design.exists():  # the contract beside the repository, when present
        listed = re.search(r"## Error codes.*?\n\n(.*?)\n\n", design.read_text(), flags=re.S)
        assert listed is not None
        for code in re.findall(r"[A-Z_]{4,}", listed.group(1)):
            assert code in codes, code
