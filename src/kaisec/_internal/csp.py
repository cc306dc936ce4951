"""A small Content-Security-Policy parser (CSP Level 3 grammar, serialized form).

Used to check a manifest's ``csp`` before it is ever sent as a header and by
``kaisec lint``. No maintained Python library parses CSP; this follows the
grammar of https://www.w3.org/TR/CSP3/#parse-serialized-policy and is
stricter: unknown directives, duplicate directives, malformed source
expressions, commas (which would splice a second policy into the header) and
control characters are all refused.
"""

from __future__ import annotations

import re

__all__ = ["DIRECTIVES", "CspProblem", "parse_csp"]


class CspProblem(ValueError):
    """The policy does not parse; the message says where."""


#: Directives of CSP Level 3 (fetch, document, navigation, reporting) kaisec accepts.
DIRECTIVES = frozenset(
    {
        "default-src", "script-src", "script-src-elem", "script-src-attr", "style-src",
        "style-src-elem", "style-src-attr", "img-src", "font-src", "connect-src", "media-src",
        "object-src", "frame-src", "child-src", "worker-src", "manifest-src", "prefetch-src",
        "base-uri", "form-action", "frame-ancestors", "sandbox", "report-uri", "report-to",
        "upgrade-insecure-requests", "block-all-mixed-content", "trusted-types",
        "require-trusted-types-for",
    }
)  # fmt: skip
_SOURCE_LIST = {d for d in DIRECTIVES if d.endswith("-src")} | {
    "base-uri",
    "form-action",
    "frame-ancestors",
}
_NO_VALUE = {"upgrade-insecure-requests", "block-all-mixed-content"}
_KEYWORDS = {
    "'self'", "'none'", "'unsafe-inline'", "'unsafe-eval'", "'strict-dynamic'",
    "'unsafe-hashes'", "'report-sample'", "'unsafe-allow-redirects'", "'wasm-unsafe-eval'",
}  # fmt: skip
_NAME = re.compile(r"^[a-z0-9-]+$")
_NONCE_HASH = re.compile(r"^'(nonce-[A-Za-z0-9+/_=-]+|sha(256|384|512)-[A-Za-z0-9+/_-]+=*)'$")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:$")
_HOST = re.compile(
    r"^(?:[a-z][a-z0-9+.-]*://)?"  # scheme
    r"(?:\*|(?:\*\.)?[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*)"
    r"(?::(?:\d{1,5}|\*))?"  # port
    r"(?:/[A-Za-z0-9._~!$&'()*+;=:@%/-]*)?$"  # path (no quotes or commas)
)
_SANDBOX_TOKENS = re.compile(r"^allow-[a-z-]+$")


def _check_source(directive: str, token: str) -> None:
    low = token.lower()
    if low in _KEYWORDS or _NONCE_HASH.match(token):
        return
    if token == "*" or _SCHEME.match(low) or _HOST.match(low):  # noqa: S105 - not a secret
        return
    raise CspProblem(f"{directive}: malformed source expression {token!r}")


def parse_csp(text: str) -> dict[str, list[str]]:
    """Parse a serialized policy into ``{directive: [values]}`` (names lower-cased).

    Raises:
        CspProblem: the policy is empty, has a comma or control character, an
            unknown or repeated directive, or a malformed value.
    """
    if not isinstance(text, str) or not text.strip():
        raise CspProblem("empty policy")
    if len(text) > 8192:
        raise CspProblem(f"policy longer than 8192 characters ({len(text)})")
    for ch in text:
        if ord(ch) < 0x20 or ord(ch) >= 0x7F:
            raise CspProblem(f"character U+{ord(ch):04X} is not allowed in a policy")
    if "," in text:
        raise CspProblem("a comma would start a second policy; use one policy")
    out: dict[str, list[str]] = {}
    for part in text.split(";"):
        tokens = part.split()
        if not tokens:
            continue
        name = tokens[0].lower()
        if not _NAME.match(name) or name not in DIRECTIVES:
            raise CspProblem(f"unknown directive {tokens[0]!r}")
        if name in out:
            raise CspProblem(f"directive {name!r} given twice")
        values = tokens[1:]
        if name in _NO_VALUE and values:
            raise CspProblem(f"{name} takes no value")
        if name in _SOURCE_LIST:
            if not values:
                raise CspProblem(f"{name}: needs a source list (use 'none' to block all)")
            if "'none'" in (v.lower() for v in values) and len(values) > 1:
                raise CspProblem(f"{name}: 'none' must stand alone")
            for value in values:
                _check_source(name, value)
        elif name == "sandbox":
            for value in values:
                if not _SANDBOX_TOKENS.match(value):
                    raise CspProblem(f"sandbox: unknown token {value!r}")
        out[name] = values
    if not out:
        raise CspProblem("empty policy")
    return out
