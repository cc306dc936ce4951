"""Serving packaged apps: the bytes served are the bytes verified.

Files come straight out of the stored package (verified at install, its
SHA-256 checked by ``doctor``) through the hardened ZIP reader, which checks
each entry's CRC-32 as it inflates. Paths resolve as ``app://`` URLs do:
nothing can leave the package. Every response carries the class's CSP and
the manifest's (two headers, both enforced), ``nosniff``, a same-origin
resource policy and an ETag keyed to the package digest.
"""

from __future__ import annotations

import mimetypes
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from kaisec._internal.zipsafe import SafeZipReader
from kaisec.appurl import normalize_entry_path
from kaisec.daemon.csp import class_policy
from kaisec.errors import KaisecError
from kaisec.registry import AppRecord

__all__ = ["AppServer"]

_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".webapp": "application/x-web-app-manifest+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".wasm": "application/wasm",
    ".txt": "text/plain; charset=utf-8",
}
_SMALL = 256 * 1024
_CACHE_BYTES = 32 * 1024 * 1024
_MAX_READERS = 64


def content_type(name: str) -> str:
    """The Content-Type of a served file (by extension; unknown -> octet-stream)."""
    dot = name.rfind(".")
    ext = name[dot:].lower() if dot >= 0 else ""
    if ext in _TYPES:
        return _TYPES[ext]
    guess, _ = mimetypes.guess_type(name)
    return guess or "application/octet-stream"


class AppServer:
    """Files of packaged apps, with their security headers."""

    def __init__(self, apps_dir: Path, *, shared_origin: str, system_origin: str) -> None:
        self.apps_dir = apps_dir
        self.shared_origin = shared_origin
        self.system_origin = system_origin
        self._lock = threading.Lock()
        self._readers: OrderedDict[str, SafeZipReader] = OrderedDict()
        self._cache: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._cache_bytes = 0

    def _reader(self, app: AppRecord) -> SafeZipReader:
        digest = app.package_digest or ""
        with self._lock:
            reader = self._readers.get(digest)
            if reader is not None:
                self._readers.move_to_end(digest)
                return reader
        reader = SafeZipReader(self.apps_dir / app.id / f"{digest}.zip")
        with self._lock:
            self._readers[digest] = reader
            while len(self._readers) > _MAX_READERS:
                _, old = self._readers.popitem(last=False)
                old.close()
        return reader

    def headers(self, app: AppRecord) -> list[tuple[str, str]]:
        """Security headers for every file of ``app``."""
        out = [
            (
                "content-security-policy",
                class_policy(app.app_class, shared=self.shared_origin, system=self.system_origin),
            ),
            ("x-content-type-options", "nosniff"),
            ("cross-origin-resource-policy", "same-origin"),
            ("cross-origin-opener-policy", "same-origin"),
            ("referrer-policy", "no-referrer"),
        ]
        features = app.manifest.get("b2g_features")
        csp = app.manifest.get("csp")
        if csp is None and isinstance(features, dict):
            csp = features.get("csp")
        if isinstance(csp, str) and csp:
            out.append(("content-security-policy", csp))
        return out

    def serve(self, request: Request, app: AppRecord) -> Response:
        """The response for a GET/HEAD of ``request.url.path`` on ``app``'s origin."""
        try:
            name = normalize_entry_path(request.scope.get("raw_path", b"").decode("latin-1")
                                        .split("?", 1)[0] or "/")  # fmt: skip
        except KaisecError:
            return Response("not found", status_code=404)
        if name.upper().startswith("META-INF/"):
            return Response("not found", status_code=404)  # signature files are not app content
        try:
            reader = self._reader(app)
        except (KaisecError, OSError):
            return Response("package unavailable", status_code=503)
        entry = reader.get(name)
        if entry is None or entry.is_dir:
            return Response("not found", status_code=404, headers=dict(self.headers(app)[1:2]))
        etag = f'"{(app.package_digest or "")[:20]}-{entry.crc32:08x}"'
        headers = self.headers(app)
        base = [
            ("etag", etag),
            ("cache-control", "no-cache"),
            ("content-type", content_type(name)),
        ]
        if request.headers.get("if-none-match") == etag:
            return _with_headers(Response(status_code=304), base[:2] + headers)
        if request.method == "HEAD":
            resp = Response(status_code=200)
            resp.headers["content-length"] = str(entry.size)
            return _with_headers(resp, base + headers)
        if entry.size <= _SMALL:
            key = (app.package_digest or "", name)
            with self._lock:
                body = self._cache.get(key)
                if body is not None:
                    self._cache.move_to_end(key)
            if body is None:
                try:
                    body = reader.read(entry, max_size=_SMALL)
                except KaisecError:
                    return Response("corrupt package entry", status_code=500)
                with self._lock:
                    self._cache[key] = body
                    self._cache_bytes += len(body)
                    while self._cache_bytes > _CACHE_BYTES:
                        _, old = self._cache.popitem(last=False)
                        self._cache_bytes -= len(old)
            return _with_headers(Response(body), base + headers)

        def chunks() -> Iterator[bytes]:
            yield from reader.iter_chunks(entry)

        resp = StreamingResponse(chunks())
        resp.headers["content-length"] = str(entry.size)
        return _with_headers(resp, base + headers)

    def close(self) -> None:
        with self._lock:
            for reader in self._readers.values():
                reader.close()
            self._readers.clear()


def _with_headers(resp: Response, headers: list[tuple[str, str]]) -> Response:
    # raw header list: a second Content-Security-Policy must stay a second header
    resp.raw_headers = [
        (k, v)
        for k, v in resp.raw_headers
        if k.lower() not in {b"content-type"} or not any(h[0] == "content-type" for h in headers)
    ] + [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    return resp
