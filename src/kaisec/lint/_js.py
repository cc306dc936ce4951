"""JavaScript checks: what ``script-src 'self' <shared>`` (no 'unsafe-eval') blocks.

Found: ``eval(...)``, ``Function(...)``/``new Function(...)``,
``setTimeout``/``setInterval`` with a string or template literal first
argument, WebAssembly compilation, and module imports (``import ... from``,
``import(...)``, ``export ... from``, ``importScripts(...)``) of other
origins. ``window.eval(`` and the like (``self``, ``globalThis``, ``top``,
``parent``, ``frames``) count; ``obj.eval(`` does not.

Why a small tokenizer and not a JS parser from PyPI: the maintained pure
Python parsers are either unmaintained (esprima 4.0.1, 2018, ES2017) or
young forks, and all of them give up on syntax they do not know, which is
exactly the code a developer is about to ship. The checks only need to know
what is code and what is not: this tokenizer skips strings, template
literals (with ``${}`` nesting), comments and regular expression literals,
so ``"eval("`` in a string or ``// eval(`` in a comment is never reported.
Regex-versus-division is decided from the previous token (the usual
heuristic); a wrong guess cannot swallow more than the rest of one line,
since neither a regex literal nor a string may span lines.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from kaisec.lint._model import Finding, LineIndex, LintContext

__all__ = ["Token", "lint_js", "tokenize"]

Kind = Literal["ident", "punct", "string", "template", "regex", "number"]

_IDENT = re.compile(r"(?:[A-Za-z0-9_$\u200c\u200d]|\\u[0-9A-Fa-f{}]+|[^\x00-\x7f\s])+")
_NUMBER = re.compile(r"\.?[0-9](?:[0-9A-Za-z_.]|(?<=[eE])[+-])*")
_SPACE = re.compile(r"[ \t\n\r\f\v]+")
# After these keywords an expression starts, so a "/" opens a regex literal.
_REGEX_AFTER = frozenset(
    [
        "return",
        "typeof",
        "instanceof",
        "in",
        "of",
        "new",
        "delete",
        "void",
        "throw",
        "case",
        "do",
        "else",
        "yield",
        "await",
    ]
)
#: Global objects through which ``X.eval(`` is still the global eval.
_GLOBALS = frozenset({"window", "self", "globalThis", "top", "parent", "frames"})
_WASM = frozenset({"compile", "instantiate", "compileStreaming", "instantiateStreaming", "Module"})


@dataclass(frozen=True, slots=True)
class Token:
    """One token: its kind, its text (a string's raw body, without quotes), its offset."""

    kind: Kind
    value: str
    offset: int


def _scan_string(text: str, i: int, quote: str) -> int:
    n = len(text)
    j = i + 1
    while j < n:
        ch = text[j]
        if ch == "\\":
            j += 2
            continue
        if ch == quote:
            return j + 1
        if ch == "\n":  # unterminated: stop at the line's end
            return j
        j += 1
    return n


def _scan_template(text: str, j: int) -> tuple[int, bool]:
    """Scan a template part: (index past "`", True) at its end, (index past "${", False)."""
    n = len(text)
    while j < n:
        ch = text[j]
        if ch == "\\":
            j += 2
        elif ch == "`":
            return j + 1, True
        elif ch == "$" and text.startswith("${", j):
            return j + 2, False
        else:
            j += 1
    return n, True


def _scan_regex(text: str, i: int) -> int | None:
    n = len(text)
    j = i + 1
    in_class = False
    while j < n:
        ch = text[j]
        if ch == "\\":
            j += 2
            continue
        if ch == "\n":
            return None
        if ch == "[":
            in_class = True
        elif ch == "]":
            in_class = False
        elif ch == "/" and not in_class:
            j += 1
            m = _IDENT.match(text, j)
            return m.end() if m else j
        j += 1
    return None


def _regex_allowed(prev: Token | None) -> bool:
    if prev is None:
        return True
    if prev.kind == "punct":
        return prev.value not in (")", "]")
    if prev.kind == "ident":
        return prev.value in _REGEX_AFTER
    return False


def tokenize(text: str) -> list[Token]:
    """The significant tokens of a script (comments and white space dropped).

    Never raises on malformed input: an unterminated string, template, comment
    or regex ends at the end of its line or of the text.
    """
    out: list[Token] = []
    n = len(text)
    i = 0
    depth = 0  # open "{" not counting template substitutions
    templates: list[int] = []  # the brace depth at each open "${"
    prev: Token | None = None
    no_regex_before = 0  # a failed regex scan reached this line's end: keeps the scan linear
    if text.startswith("#!"):
        i = n if (nl := text.find("\n")) < 0 else nl
    while i < n:
        ch = text[i]
        tok: Token | None = None
        if ch in " \t\n\r\f\v":
            m = _SPACE.match(text, i)
            i = m.end() if m else i + 1
            continue
        if ch == "/":
            nxt = text[i + 1 : i + 2]
            if nxt == "/":
                nl = text.find("\n", i)
                i = n if nl < 0 else nl
                continue
            if nxt == "*":
                end = text.find("*/", i + 2)
                i = n if end < 0 else end + 2
                continue
            end_re = None
            if i >= no_regex_before and _regex_allowed(prev):
                end_re = _scan_regex(text, i)
                if end_re is None:  # no end on this line: no regex literal starts here
                    nl = text.find("\n", i)
                    no_regex_before = n if nl < 0 else nl
            if end_re is not None:
                tok = Token("regex", text[i:end_re], i)
                i = end_re
            else:
                tok = Token("punct", "/", i)
                i += 1
        elif ch in "'\"":
            end = _scan_string(text, i, ch)
            body_end = end - 1 if end > i + 1 and text[end - 1] == ch else end
            tok = Token("string", text[i + 1 : body_end], i)
            i = end
        elif ch == "`":
            end, closed = _scan_template(text, i + 1)
            tok = Token("template", text[i:end], i)
            if not closed:
                templates.append(depth)
            i = end
        elif ch == "}" and templates and depth == templates[-1]:
            templates.pop()
            end, closed = _scan_template(text, i + 1)
            tok = Token("template", text[i:end], i)
            if not closed:
                templates.append(depth)
            i = end
        elif ch.isdigit() or (ch == "." and text[i + 1 : i + 2].isdigit()):
            m = _NUMBER.match(text, i)
            end = m.end() if m else i + 1
            tok = Token("number", text[i:end], i)
            i = end
        elif ch == "<" and text.startswith("<!--", i):  # HTML-like comment (classic scripts)
            nl = text.find("\n", i)
            i = n if nl < 0 else nl
            continue
        elif ch.isspace():  # Unicode white space (NBSP, ideographic space, line separators)
            i += 1
            continue
        elif (m := _IDENT.match(text, i)) is not None:
            tok = Token("ident", m.group(), i)
            i = m.end()
        else:
            if text.startswith("...", i):
                value = "..."
            elif text.startswith("?.", i) and not text[i + 2 : i + 3].isdigit():
                value = "?."
            else:
                value = ch
            if value == "{":
                depth += 1
            elif value == "}":
                depth = max(0, depth - 1)
            tok = Token("punct", value, i)
            i += len(value)
        out.append(tok)
        prev = tok
    return out


# --- the checks ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Hit:
    code: str
    offset: int
    message: str
    hint: str


_EVAL_HINT = (
    "kaisec apps run under script-src without 'unsafe-eval'; parse data with JSON.parse and "
    "call functions directly instead of building code from strings"
)


def _is(tok: Token | None, kind: Kind, *values: str) -> bool:
    return tok is not None and tok.kind == kind and (not values or tok.value in values)


def _global_ref(toks: list[Token], k: int) -> bool:
    """Whether toks[k] is a global name: not a member of something other than a global object."""
    prev = toks[k - 1] if k else None
    if _is(prev, "punct", ".", "?."):
        owner = toks[k - 2] if k >= 2 else None
        before = toks[k - 3] if k >= 3 else None
        return _is(owner, "ident", *_GLOBALS) and not _is(before, "punct", ".", "?.")
    return not _is(prev, "ident", "function", "class", "let", "const", "var")


def _call_at(toks: list[Token], k: int) -> int | None:
    """The index of the "(" that calls toks[k] (``f(`` or ``f?.(``), else None."""
    j = k + 1
    if _is(toks[j] if j < len(toks) else None, "punct", "?."):
        j += 1
    return j if j < len(toks) and _is(toks[j], "punct", "(") else None


def _import_start(toks: list[Token], k: int) -> Token | bool:
    """What an ``import``/``export`` at toks[k] is: its specifier, True if a ``from`` follows."""
    name = toks[k].value
    nxt = toks[k + 1] if k + 1 < len(toks) else None
    if nxt is None or _is(nxt, "punct", ".", "?."):  # import.meta
        return False
    if name == "import" and _is(nxt, "string"):  # import "x"
        return nxt
    if name == "import" and _is(nxt, "punct", "("):  # import("x")
        arg = toks[k + 2] if k + 2 < len(toks) else None
        return arg if arg is not None and arg.kind == "string" else False
    return name == "import" or _is(nxt, "punct", "*", "{")  # export * / export { } from


def _checks(toks: list[Token], ctx: LintContext) -> list[_Hit]:
    hits: list[_Hit] = []
    awaiting_from = False  # inside an import/export clause, before its ``from "x"``
    for k, tok in enumerate(toks):
        if awaiting_from:
            if _is(tok, "punct", ";", "(", ")"):
                awaiting_from = False
            elif _is(tok, "ident", "from") and k + 1 < len(toks) and toks[k + 1].kind == "string":
                _check_import(toks[k + 1], ctx, hits)
                awaiting_from = False
        if tok.kind != "ident":
            continue
        name = tok.value
        if name in ("eval", "Function", "setTimeout", "setInterval", "importScripts"):
            if not _global_ref(toks, k):
                continue
            call = _call_at(toks, k)
            if call is None:
                continue
            arg = toks[call + 1] if call + 1 < len(toks) else None
            if name == "eval":
                hits.append(
                    _Hit("EVAL", tok.offset, "eval() is blocked (no 'unsafe-eval')", _EVAL_HINT)
                )
            elif name == "Function":
                before = toks[k - 3] if k >= 3 and _is(toks[k - 1], "punct", ".") else None
                new = _is(toks[k - 1] if k else None, "ident", "new") or _is(before, "ident", "new")
                what = "new Function()" if new else "Function()"
                hits.append(
                    _Hit(
                        "NEW_FUNCTION",
                        tok.offset,
                        f"{what} is blocked (no 'unsafe-eval')",
                        _EVAL_HINT,
                    )
                )
            elif name == "importScripts":
                j = call + 1
                while j < len(toks) and toks[j].kind == "string":
                    _check_import(toks[j], ctx, hits)
                    if not _is(toks[j + 1] if j + 1 < len(toks) else None, "punct", ","):
                        break
                    j += 2
            elif arg is not None and arg.kind in ("string", "template"):
                hits.append(
                    _Hit(
                        "STRING_TIMER",
                        tok.offset,
                        f"{name}() with a string is eval in disguise and is blocked "
                        f"(no 'unsafe-eval')",
                        f"pass a function: {name}(() => {{ ... }}, delay)",
                    )
                )
        elif name == "WebAssembly" and _global_ref(toks, k):
            dot = toks[k + 1] if k + 1 < len(toks) else None
            member = toks[k + 2] if k + 2 < len(toks) else None
            if _is(dot, "punct", ".") and _is(member, "ident", *_WASM):
                assert member is not None
                hits.append(
                    _Hit(
                        "WASM",
                        tok.offset,
                        f"WebAssembly.{member.value} is blocked (no 'wasm-unsafe-eval')",
                        "kaisec's class policies do not allow WebAssembly compilation",
                    )
                )
        elif name in ("import", "export") and not (k and _is(toks[k - 1], "punct", ".", "?.")):
            start = _import_start(toks, k)
            if isinstance(start, Token):
                _check_import(start, ctx, hits)
            else:
                awaiting_from = start
    return hits


def _check_import(spec: Token, ctx: LintContext, hits: list[_Hit]) -> None:
    kind = ctx.classify(spec.value)
    if kind == "remote":
        hits.append(
            _Hit(
                "REMOTE_SCRIPT",
                spec.offset,
                f"module or script from another origin is blocked: {spec.value!r}",
                "ship the module inside the app package (script-src allows only 'self' and "
                "the shared origin)",
            )
        )
    elif kind in ("data", "javascript", "other"):
        hits.append(
            _Hit(
                "BLOCKED_SCRIPT_URL",
                spec.offset,
                f"module or script URL is blocked by script-src: {spec.value[:80]!r}",
                "ship the module as a file inside the app package",
            )
        )


def lint_js(
    text: str,
    file: str,
    ctx: LintContext,
    *,
    position: Callable[[int], tuple[int, int]] | None = None,
) -> list[Finding]:
    """Check one script's text; each finding with its line and column.

    Args:
        text: the script (a .js file, or an inline script's body).
        file: the entry name findings are reported against.
        ctx: the app being linted.
        position: maps an offset in ``text`` to the (line, column) to report; by
            default the offset's own line and column in ``text``.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    hits = _checks(tokenize(text), ctx)
    if not hits:
        return []
    where = position or LineIndex(text).position
    out = []
    for hit in hits:
        line, column = where(hit.offset)
        out.append(Finding("error", hit.code, file, line, column, hit.message, hit.hint))
    return out
