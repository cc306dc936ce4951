"""The CSP parser used for manifest ``csp`` values."""

from __future__ import annotations

import pytest

from kaisec._internal.csp import CspProblem, parse_csp

GOOD = [
    "default-src 'self'",
    "default-src * data: blob:; script-src 'self' http://shared.localhost:8081; object-src 'none'",
    "script-src 'self' 'sha256-abc+/=' 'nonce-r4nd0m'; style-src 'self' 'unsafe-inline'",
    "img-src https://*.example.com:443/path/; frame-ancestors 'none'; upgrade-insecure-requests",
    "sandbox allow-scripts allow-forms",
]
BAD = [
    ("", "empty"),
    ("   ;  ", "empty"),
    ("script-src 'self', default-src *", "comma"),
    ("script-src 'self'\nX-Evil: 1", "character"),
    ("made-up-src 'self'", "unknown directive"),
    ("script-src 'self'; script-src *", "twice"),
    ("script-src", "source list"),
    ("script-src 'none' 'self'", "stand alone"),
    ("script-src 'selfish'", "malformed"),
    ("script-src http://exa mple.com'", "malformed"),
    ("upgrade-insecure-requests yes", "no value"),
    ("sandbox allow-everything;x", "unknown"),
    ("default-src é", "character"),
]


@pytest.mark.parametrize("policy", GOOD)
def test_good_policies_parse(policy: str) -> None:
    assert parse_csp(policy)


@pytest.mark.parametrize(("policy", "why"), BAD)
def test_bad_policies_are_refused(policy: str, why: str) -> None:
    with pytest.raises(CspProblem, match=why):
        parse_csp(policy)
