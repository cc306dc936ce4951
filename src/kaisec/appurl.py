"""``app://<uuid>/<path>``: the seed's URLs of resources inside a packaged app.

:func:`resolve_app_url` is the one place that turns such a URL into an entry
of that app's verified package; the daemon serves files through it. Paths
are resolved as URLs are (``.`` and ``..`` segments, percent-decoding), and
a ``..`` at the root stays at the root: nothing can climb out of the
package, and an entry of another app is never reachable.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from kaisec.errors import AppNotFoundError, InvalidOriginError, ResourceNotFoundError
from kaisec.registry import AppRecord, find_app
from kaisec.store import Store

__all__ = ["ResolvedResource", "normalize_entry_path", "resolve_app_url"]


@dataclass(frozen=True)
class ResolvedResource:
    """An entry inside an installed app's package."""

    app: AppRecord
    entry: str
    package: Path
    size: int

    def to_dict(self) -> dict[str, object]:
        return {
            "app": self.app.name,
            "id": self.app.id,
            "origin": self.app.origin,
            "entry": self.entry,
            "size": self.size,
        }


def normalize_entry_path(path: str) -> str:
    """A URL path as a package entry name: decoded, dot-segments resolved, clamped at root.

    Raises:
        ResourceNotFoundError: control characters, backslashes or an empty result.
    """
    try:
        decoded = unquote(path, errors="strict")
    except UnicodeDecodeError as exc:
        raise ResourceNotFoundError(f"path is not UTF-8: {path!r}", path=path) from exc
    if any(ord(c) < 0x20 or c in "\\\x7f" for c in decoded):
        raise ResourceNotFoundError(f"unsafe characters in path {path!r}", path=path)
    parts: list[str] = []
    for seg in decoded.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if parts:
                parts.pop()
            continue
        parts.append(seg)
    if not parts:
        return "index.html"
    entry = "/".join(parts)
    if decoded.endswith("/"):
        entry += "/index.html"
    return entry


def resolve_app_url(store: Store, apps_dir: Path, url: str) -> ResolvedResource:
    """The package entry an ``app://<uuid>/<path>`` URL names.

    Raises:
        InvalidOriginError: not an ``app://`` URL with a UUID host.
        AppNotFoundError: no installed app has that UUID.
        ResourceNotFoundError: the package has no such file, or the app is hosted.
    """
    from kaisec._internal.zipsafe import SafeZipReader

    parts = urlsplit(url)
    if parts.scheme != "app" or not parts.netloc:
        raise InvalidOriginError(f"expected app://<uuid>/<path>, got {url!r}", url=url)
    try:
        app_id = str(uuid.UUID(parts.netloc))
    except ValueError as exc:
        raise InvalidOriginError(f"not a UUID: {parts.netloc!r}", url=url) from exc
    app = find_app(store, app_id)
    if app.id != app_id:  # find_app also matches names and origins
        raise AppNotFoundError(f"no installed app has id {app_id}", app=app_id)
    if not app.package_digest:
        raise ResourceNotFoundError(f"{app.name} is a hosted app: it has no package", url=url)
    entry_name = normalize_entry_path(parts.path)
    package = apps_dir / app.id / f"{app.package_digest}.zip"
    with SafeZipReader(package) as reader:
        entry = reader.get(entry_name)
        if entry is None or entry.is_dir:
            raise ResourceNotFoundError(f"{app.name} has no {entry_name!r}", url=url)
        return ResolvedResource(app, entry.name, package, entry.size)
