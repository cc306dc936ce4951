"""HTML checks: what the class's Content-Security-Policy blocks, each with its line.

The parser is html5lib's tokenizer (the WHATWG tokenizer html5lib's own
tree builder runs on). It is used directly, without the tree builder,
because positions are what this module needs and html5lib exposes them
only there: ``stream.position()`` is read when the tokenizer enters its
"tag open" state (just after a ``<``) and again when the start tag is
emitted (just after its ``>``), which gives the exact source span of every
start tag. Attributes are then located inside that span by the HTML
attribute grammar (``_attribute_offsets``), never by searching the document.
(selectolax's lexbor nodes carry no source positions, so it could not say
where a problem is.)

What the tree builder would otherwise do for the tokenizer is done here:
switching to the script-data, raw-text, RCDATA and plaintext states after
the start tags that need them, except inside ``<svg>``/``<math>`` foreign
content (tracked with the spec's breakout and integration-point rules, best
effort). ``<noscript>`` is raw text, as in a browser with scripting on, so
markup inside it is not reported.
"""

from __future__ import annotations

from collections.abc import Callable

from html5lib._tokenizer import HTMLTokenizer
from html5lib.constants import tokenTypes

from kaisec.lint._js import lint_js
from kaisec.lint._model import Finding, LineIndex, LintContext, Severity

__all__ = ["lint_html"]

_START, _END = tokenTypes["StartTag"], tokenTypes["EndTag"]
_TEXT = (tokenTypes["Characters"], tokenTypes["SpaceCharacters"])
_RAWTEXT = frozenset({"style", "xmp", "iframe", "noembed", "noframes", "noscript"})
_RCDATA = frozenset({"textarea", "title"})
_BREAKOUT = frozenset(
    [
        "b",
        "big",
        "blockquote",
        "body",
        "br",
        "center",
        "code",
        "dd",
        "div",
        "dl",
        "dt",
        "em",
        "embed",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "head",
        "hr",
        "i",
        "img",
        "li",
        "listing",
        "menu",
        "meta",
        "nobr",
        "ol",
        "p",
        "pre",
        "ruby",
        "s",
        "small",
        "span",
        "strong",
        "strike",
        "sub",
        "sup",
        "table",
        "tt",
        "u",
        "ul",
        "var",
    ]
)
_INTEGRATION = {
    "svg": frozenset({"foreignobject", "desc", "title"}),
    "math": frozenset({"mi", "mo", "mn", "ms", "mtext", "annotation-xml"}),
}
#: Attributes holding a URL that a browser may navigate to or load.
_URL_ATTRS = frozenset(
    [
        "href",
        "src",
        "action",
        "formaction",
        "data",
        "xlink:href",
        "poster",
        "background",
        "codebase",
        "cite",
        "longdesc",
        "lowsrc",
        "dynsrc",
        "ping",
        "manifest",
        "icon",
        "usemap",
    ]
)
#: <script type> values that run (HTML: "JavaScript MIME type essence match", module, importmap).
_JS_TYPES = frozenset(
    [
        "application/ecmascript",
        "application/javascript",
        "application/x-ecmascript",
        "application/x-javascript",
        "text/ecmascript",
        "text/javascript",
        "text/javascript1.0",
        "text/javascript1.1",
        "text/javascript1.2",
        "text/javascript1.3",
        "text/javascript1.4",
        "text/javascript1.5",
        "text/jscript",
        "text/livescript",
        "text/x-ecmascript",
        "text/x-javascript",
        "module",
        "importmap",
        "speculationrules",
    ]
)
_WS = " \t\n\f\r"
_SRCDOC_DEPTH = 3


class _Tokenizer(HTMLTokenizer):
    """html5lib's tokenizer, remembering where the last tag opened."""

    tag_open: tuple[int, int] = (1, 0)

    def tagOpenState(self) -> bool:
        self.tag_open = self.stream.position()  # just after the "<"
        return super().tagOpenState()


def _attribute_offsets(tag: str) -> dict[str, int]:
    """Offset (in ``tag``, the raw ``<name ...>`` text) of each attribute name; first one wins.

    Follows the tokenizer's attribute states: names end at white space, "/",
    ">" or "="; values are quoted (to the same quote) or run to white space
    or ">".
    """
    out: dict[str, int] = {}
    n = len(tag)
    i = 1
    while i < n and tag[i] not in _WS + "/>":
        i += 1
    while i < n:
        while i < n and tag[i] in _WS + "/":
            i += 1
        if i >= n or tag[i] == ">":
            break
        start = i
        i += 1  # a name may start with "="
        while i < n and tag[i] not in _WS + "/>=":
            i += 1
        out.setdefault(tag[start:i].lower(), start)
        while i < n and tag[i] in _WS:
            i += 1
        if i < n and tag[i] == "=":
            i += 1
            while i < n and tag[i] in _WS:
                i += 1
            if i < n and tag[i] in "\"'":
                end = tag.find(tag[i], i + 1)
                i = n if end < 0 else end + 1
            else:
                while i < n and tag[i] not in _WS + ">":
                    i += 1
    return out


class _Page:
    """The state of one HTML document being checked."""

    def __init__(
        self,
        text: str,
        file: str,
        ctx: LintContext,
        pin: tuple[int, int] | None,
        depth: int,
    ) -> None:
        self.text = text
        self.file = file
        self.ctx = ctx
        self.lines = LineIndex(text)
        self.pin = pin  # report everything here (an iframe's srcdoc)
        self.depth = depth
        self.findings: list[Finding] = []

    def at(self, offset: int) -> tuple[int, int]:
        return self.pin if self.pin is not None else self.lines.position(offset)

    def add(self, severity: Severity, code: str, offset: int, message: str, hint: str = "") -> None:
        line, column = self.at(offset)
        self.findings.append(Finding(severity, code, self.file, line, column, message, hint))

    # -- one start tag --

    def start_tag(self, name: str, attrs: dict[str, str], start: int, end: int) -> None:
        offsets = _attribute_offsets(self.text[start:end])

        def attr_at(attr: str) -> int:
            return start + offsets.get(attr, 0)

        for attr, value in attrs.items():
            low = attr.lower()
            if low.startswith("on") and len(low) > 2:
                self.add(
                    "error",
                    "INLINE_HANDLER",
                    attr_at(low),
                    f"inline event handler {low}= on <{name}> is blocked (script-src has no "
                    f"'unsafe-inline')",
                    f"move the code to a .js file: element.addEventListener({low[2:]!r}, ...)",
                )
            elif low in _URL_ATTRS and self.ctx.classify(value) == "javascript":
                self.add(
                    "error",
                    "JAVASCRIPT_URL",
                    attr_at(low),
                    f"javascript: URL in {low}= on <{name}> is blocked (script-src has no "
                    f"'unsafe-inline')",
                    "use a real URL, or a click listener added from a .js file",
                )
            elif low == "style" and value.strip(_WS):
                blocker = self.ctx.inline_style_blocked_by(element=False)
                if blocker is not None:
                    self.add(
                        "error",
                        "INLINE_STYLE",
                        attr_at(low),
                        f"style= attribute on <{name}> is blocked by {blocker}",
                        "move the rules to a .css file of the app and use a class",
                    )
        if name == "script":
            self._script_tag(attrs, attr_at)
        elif name in ("object", "embed", "applet"):
            self.add(
                "error",
                "PLUGIN",
                start,
                f"<{name}> is blocked (object-src 'none')",
                "plugins do not run in kaisec apps; use <img>, <video> or <iframe>",
            )
        elif name == "base" and "href" in attrs:
            self.add(
                "error",
                "BASE_TAG",
                attr_at("href"),
                "<base href> is blocked (base-uri 'none')",
                "remove it and use URLs relative to the page",
            )
        elif name == "meta" and attrs.get("http-equiv", "").strip(_WS).lower() == (
            "content-security-policy"
        ):
            self.add(
                "warning",
                "META_CSP",
                start,
                "<meta> Content-Security-Policy: a third policy on top of the class's and the "
                "manifest's; it can only tighten them",
                "put the policy in the manifest's csp field instead",
            )
        elif name == "link":
            rels = attrs.get("rel", "").lower().split()
            if "stylesheet" in rels and "href" in attrs:
                self._resource(attrs["href"], attr_at("href"), "stylesheet")
        elif name == "iframe" and "srcdoc" in attrs and self.depth < _SRCDOC_DEPTH:
            # srcdoc documents inherit the page's policy; report at the attribute.
            inner = _Page(
                attrs["srcdoc"].replace("\r\n", "\n").replace("\r", "\n"),
                self.file,
                self.ctx,
                self.at(attr_at("srcdoc")),
                self.depth + 1,
            )
            inner.run()
            self.findings.extend(inner.findings)

    def _script_tag(self, attrs: dict[str, str], attr_at: Callable[[str], int]) -> None:
        kind = attrs.get("type", "").strip(_WS).lower() or "text/javascript"
        if kind not in _JS_TYPES:
            return
        if "src" in attrs:
            self._resource(attrs["src"], attr_at("src"), "script")

    def _resource(self, url: str, offset: int, what: str) -> None:
        kind = self.ctx.classify(url)
        if kind == "remote":
            code = "REMOTE_SCRIPT" if what == "script" else "REMOTE_STYLE"
            directive = "script-src" if what == "script" else "style-src"
            self.add(
                "error",
                code,
                offset,
                f"{what} from another origin is blocked ({directive} 'self' <shared>): {url!r}",
                f"ship the {what} inside the app package",
            )
        elif kind in ("data", "other") and what == "script":  # javascript: is JAVASCRIPT_URL
            self.add(
                "error",
                "BLOCKED_SCRIPT_URL",
                offset,
                f"script URL is blocked by script-src 'self' <shared>: {url[:80]!r}",
                "ship the script as a file inside the app package",
            )
        elif kind in ("local", "self"):
            entry = self.ctx.local_entry(url, self.file)
            if entry is not None and entry not in self.ctx.files:
                severity: Severity = "error" if what == "script" else "warning"
                self.add(
                    severity,
                    "MISSING_FILE",
                    offset,
                    f"{what} {url!r} names {entry!r}, which is not in the app",
                    "add the file, or fix the path (URLs are relative to the page)",
                )

    # -- raw text bodies (<script>, <style>) --

    def script_body(
        self, attrs: dict[str, str], tag_start: int, body_start: int, body: str
    ) -> None:
        kind = attrs.get("type", "").strip(_WS).lower() or "text/javascript"
        if kind not in _JS_TYPES or "src" in attrs or not body.strip(_WS):
            return
        label = {"module": "inline module script", "importmap": "inline import map"}.get(
            kind, "inline script"
        )
        self.add(
            "error",
            "INLINE_SCRIPT",
            tag_start,
            f"{label} is blocked (script-src has no 'unsafe-inline')",
            "move the code to a .js file of the app and load it with <script src>",
        )
        if kind in ("importmap", "speculationrules"):
            return

        def position(offset: int) -> tuple[int, int]:
            return self.at(body_start + offset)

        self.findings.extend(lint_js(body, self.file, self.ctx, position=position))

    def style_body(self, tag_start: int, body: str) -> None:
        blocker = self.ctx.inline_style_blocked_by(element=True)
        if blocker is not None and body.strip(_WS):
            self.add(
                "error",
                "INLINE_STYLE",
                tag_start,
                f"<style> element is blocked by {blocker}",
                "move the rules to a .css file of the app and load it with <link>",
            )

    # -- the token loop --

    def run(self) -> None:
        tok = _Tokenizer(self.text)
        stack: list[str] = []  # open svg/math and their HTML integration points
        raw: tuple[str, dict[str, str], int, int] | None = None  # (name, attrs, start, body)
        body: list[str] = []
        for token in tok:
            ttype = token["type"]
            if ttype in _TEXT:
                if raw is not None:
                    chars = token.get("data", "")
                    body.append(chars if isinstance(chars, str) else "")
                continue
            if ttype == _END:
                name = token.get("name", "")
                if raw is not None and name == raw[0]:
                    text = "".join(body)
                    if raw[0] == "script":
                        self.script_body(raw[1], raw[2], raw[3], text)
                    else:
                        self.style_body(raw[2], text)
                    raw, body = None, []
                elif stack and stack[-1] == name:
                    stack.pop()
                continue
            if ttype != _START:
                continue
            name = token.get("name", "")
            data: object = token.get("data")  # a dict once emitted (the stubs say otherwise)
            attrs: dict[str, str] = {}
            if isinstance(data, dict):
                attrs = {str(k).lower(): str(v) for k, v in data.items()}
            line, col0 = tok.tag_open
            start = self.lines.offset(line, col0 - 1)
            end_line, end_col0 = tok.stream.position()
            end = self.lines.offset(end_line, end_col0)
            foreign = bool(stack) and stack[-1] in _INTEGRATION
            if foreign and (
                name in _BREAKOUT or (name == "font" and attrs.keys() & {"color", "face", "size"})
            ):
                while stack and stack[-1] in _INTEGRATION:
                    stack.pop()
                foreign = bool(stack) and stack[-1] in _INTEGRATION
            self.start_tag(name, attrs, start, end)
            closing = bool(token.get("selfClosing"))
            if foreign:
                ns = next((s for s in reversed(stack) if s in _INTEGRATION), "svg")
                if not closing and (name in _INTEGRATION or name in _INTEGRATION[ns]):
                    stack.append(name)
                if name == "script" and not closing:
                    raw, body = ("script", attrs, start, end), []
                continue
            if name in _INTEGRATION and not closing:
                stack.append(name)
            elif name == "script":
                tok.state = tok.scriptDataState
                raw, body = ("script", attrs, start, end), []
            elif name in _RAWTEXT:
                tok.state = tok.rawtextState
                if name == "style":
                    raw, body = ("style", attrs, start, end), []
            elif name in _RCDATA:
                tok.state = tok.rcdataState
            elif name == "plaintext":
                tok.state = tok.plaintextState


def lint_html(text: str, file: str, ctx: LintContext) -> list[Finding]:
    """Check one HTML document; each finding with its line and column.

    Never raises on malformed markup: the tokenizer recovers as browsers do.
    """
    page = _Page(text.replace("\r\n", "\n").replace("\r", "\n"), file, ctx, None, 0)
    page.run()
    return page.findings
