"""Fetching what lives on the web: hosted-app manifests, store update manifests, packages.

The seed: a hosted app's manifest must be served with the web-app manifest
MIME type from the app's own origin, so that nobody can trick a website into
hosting an app manifest. Every fetch here is bounded: redirects only within
the first URL's origin (at most 5), a size limit enforced while streaming,
and timeouts on connect and read.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from kaisec.errors import (
    DownloadError,
    InvalidManifestError,
    InvalidOriginError,
    ManifestMimeTypeError,
    PackageTooLargeError,
)

__all__ = [
    "MANIFEST_MIME_TYPES",
    "FetchLimits",
    "StoreUpdateManifest",
    "fetch_document",
    "fetch_package",
    "origin_of",
]

#: What a hosted manifest (or store update manifest) must be served as.
MANIFEST_MIME_TYPES = frozenset(
    {"application/manifest+json", "application/x-web-app-manifest+json"}
)


@dataclass(frozen=True)
class FetchLimits:
    """Bounds on anything fetched."""

    max_manifest: int = 256 * 1024
    max_package: int = 1024 * 1024 * 1024
    timeout: float = 15.0
    max_redirects: int = 5


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of an http(s) URL (default ports dropped).

    Raises:
        InvalidOriginError: not an absolute http(s) URL with a host.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidOriginError(f"expected an http(s) URL, got {url!r}", url=url)
    if parts.username or parts.password:
        raise InvalidOriginError(f"credentials in URL are not allowed: {url!r}", url=url)
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidOriginError(f"malformed port in {url!r}", url=url) from exc
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def _client(timeout: float) -> httpx.Client:
    return httpx.Client(
        follow_redirects=False,
        timeout=httpx.Timeout(timeout),
        headers={"User-Agent": "kaisec", "Accept": "application/manifest+json, */*;q=0.1"},
        trust_env=False,
    )


def _open(client: httpx.Client, url: str, limits: FetchLimits) -> tuple[str, httpx.Response]:
    """GET ``url``, following redirects only within its origin; returns the final URL."""
    origin = origin_of(url)
    current = url
    for _ in range(limits.max_redirects + 1):
        try:
            request = client.build_request("GET", current)
            response = client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise DownloadError(f"cannot fetch {current}: {exc}", url=current) from exc
        if response.is_redirect:
            location = response.headers.get("location", "")
            response.close()
            target = urljoin(current, location)
            if origin_of(target) != origin:
                raise InvalidOriginError(
                    f"{current} redirects to another origin ({origin_of(target)}); "
                    "redirects must stay on the app's origin",
                    url=current,
                )
            current = target
            continue
        if response.status_code != 200:
            response.close()
            raise DownloadError(
                f"{current}: HTTP {response.status_code}", url=current, status=response.status_code
            )
        return current, response
    raise DownloadError(f"{url}: more than {limits.max_redirects} redirects", url=url)


def fetch_document(url: str, *, limits: FetchLimits | None = None) -> tuple[str, bytes]:
    """Fetch a manifest (hosted web manifest or store update manifest).

    Returns the final URL (same origin as ``url``) and the body.

    Raises:
        InvalidOriginError: not an http(s) URL, or a redirect leaves the origin.
        ManifestMimeTypeError: the response is not served as a web-app manifest.
        InvalidManifestError: larger than the manifest limit.
        DownloadError: network failure, timeout or a non-200 status.
    """
    lim = limits or FetchLimits()
    with _client(lim.timeout) as client:
        final, response = _open(client, url, lim)
        with contextlib.closing(response):
            media = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if media not in MANIFEST_MIME_TYPES:
                raise ManifestMimeTypeError(
                    f"{final} is served as {media or 'nothing'!r}; a manifest must be "
                    "application/manifest+json or application/x-web-app-manifest+json",
                    url=final,
                    content_type=media,
                )
            body = bytearray()
            try:
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > lim.max_manifest:
                        raise InvalidManifestError(
                            f"{final}: manifest larger than {lim.max_manifest} bytes",
                            problems=[f"(root): larger than {lim.max_manifest} bytes"],
                        )
            except httpx.HTTPError as exc:
                raise DownloadError(f"cannot fetch {final}: {exc}", url=final) from exc
    return final, bytes(body)


def fetch_package(
    url: str,
    dest: Path,
    *,
    expected_size: int | None = None,
    limits: FetchLimits | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> str:
    """Download a package to ``dest`` (a new file); returns its SHA-256 hex.

    Raises:
        InvalidOriginError: a redirect leaves the origin.
        PackageTooLargeError: larger than declared or than the limit.
        DownloadError: network failure, timeout or a non-200 status.
    """
    lim = limits or FetchLimits()
    cap = lim.max_package if expected_size is None else min(expected_size, lim.max_package)
    digest = hashlib.sha256()
    with _client(lim.timeout) as client:
        final, response = _open(client, url, lim)
        with contextlib.closing(response), open(dest, "xb") as out:
            got = 0
            try:
                for chunk in response.iter_bytes(1 << 20):
                    got += len(chunk)
                    if got > cap:
                        raise PackageTooLargeError(
                            f"{final}: package larger than {cap} bytes", url=final
                        )
                    out.write(chunk)
                    digest.update(chunk)
                    if progress is not None:
                        progress(got, expected_size)
            except httpx.HTTPError as exc:
                raise DownloadError(f"cannot fetch {final}: {exc}", url=final) from exc
            out.flush()
            os.fsync(out.fileno())
    if expected_size is not None and got != expected_size:
        raise DownloadError(
            f"{final}: got {got} bytes, the update manifest says {expected_size}", url=final
        )
    return digest.hexdigest()


@dataclass(frozen=True)
class StoreUpdateManifest:
    """A store's update ("mini") manifest, as KaiOS's apps service reads it."""

    url: str
    name: str
    package_url: str
    version: str | None
    size: int | None
    developer_name: str | None
    developer_url: str | None
    origin: str | None

    @staticmethod
    def looks_like(doc: Any) -> bool:
        return isinstance(doc, dict) and "package_path" in doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any], *, url: str) -> StoreUpdateManifest:
        """Validate an update manifest; ``package_path`` resolves against ``url``.

        Raises:
            InvalidManifestError: a field is missing or of the wrong type.
            InvalidOriginError: the package URL is not http(s).
        """
        problems: list[str] = []

        def text(key: str, *, required: bool = False, src: dict[str, Any] = doc) -> str | None:
            value = src.get(key)
            if value is None:
                if required:
                    problems.append(f"{key}: required")
                return None
            if not isinstance(value, str) or not value:
                problems.append(f"{key}: must be a non-empty string")
                return None
            return value

        name = text("name", required=True)
        package_path = text("package_path", required=True)
        version = text("version")
        size = doc.get("size", doc.get("packaged_size"))
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            problems.append("size: must be a non-negative integer")
            size = None
        developer = doc.get("developer")
        dev_name = dev_url = None
        if developer is not None:
            if not isinstance(developer, dict):
                problems.append("developer: must be an object")
            else:
                dev_name = text("name", src=developer)
                dev_url = text("url", src=developer)
        b2g = doc.get("b2g_features")
        origin = text("origin")
        if origin is None and isinstance(b2g, dict) and isinstance(b2g.get("origin"), str):
            origin = b2g["origin"]
        if problems:
            raise InvalidManifestError(
                f"{url}: invalid update manifest: {problems[0]}", problems=problems
            )
        assert name is not None and package_path is not None
        package_url = urljoin(url, package_path)
        origin_of(package_url)
        return cls(url, name, package_url, version, size, dev_name, dev_url, origin)
