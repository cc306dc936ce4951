"""Which site a request is for: an installed app, the shared origin, or the daemon itself.

Only these Host values are answered (anything else is 404, which also stops
DNS-rebinding pages, whose Host is their own name):

- ``<name>.localhost:<port>``: the packaged app registered under ``name``;
- ``shared.localhost:<port>``: the shared origin (the JS client);
- ``localhost:<port>``, ``127.0.0.1:<port>``, ``[::1]:<port>``: the daemon's own
  origin (tokens for hosted PWAs, through CORS; the WebSocket).

Origins are compared in their registry form: a packaged app's browser origin
``http://<name>.localhost:<port>`` is the registry's ``http://<name>.localhost``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from kaisec.errors import AppNotFoundError
from kaisec.manager import PermissionManager
from kaisec.registry import AppRecord, find_app

__all__ = ["Site", "Sites"]

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_DAEMON_HOSTS = ("localhost", "127.0.0.1", "[::1]")


@dataclass(frozen=True)
class Site:
    """The target of one request."""

    kind: Literal["app", "shared", "daemon"]
    app: AppRecord | None = None


class Sites:
    """Resolve Host headers and browser origins (cached; dropped on any registry change)."""

    def __init__(self, manager: PermissionManager, *, port: int) -> None:
        self.manager = manager
        self.port = port
        self._gen_seen = -1
        self._apps: dict[str, AppRecord | None] = {}
        self._by_origin: dict[str, AppRecord | None] = {}

    @property
    def shared_origin(self) -> str:
        return f"http://shared.localhost:{self.port}"

    @property
    def system_origin(self) -> str:
        return f"http://system.localhost:{self.port}"

    def _fresh(self) -> None:
        gen = self.manager.store.generation.value()
        if gen != self._gen_seen:
            self._gen_seen = gen
            self._apps.clear()
            self._by_origin.clear()

    def app_by_name(self, name: str) -> AppRecord | None:
        """The packaged app called ``name`` (None for unknown names and hosted apps)."""
        self._fresh()
        if name not in self._apps:
            try:
                rec: AppRecord | None = find_app(self.manager.store, name)
            except AppNotFoundError:
                rec = None
            if rec is not None and (rec.name != name or not rec.package_digest):
                rec = None
            self._apps[name] = rec
        return self._apps[name]

    def app_by_origin(self, origin: str) -> AppRecord | None:
        """The installed app (packaged or hosted) whose registry origin is ``origin``."""
        self._fresh()
        if origin not in self._by_origin:
            try:
                rec: AppRecord | None = find_app(self.manager.store, origin)
            except AppNotFoundError:
                rec = None
            if rec is not None and rec.origin != origin:
                rec = None
            self._by_origin[origin] = rec
        return self._by_origin[origin]

    def site(self, host_header: str | None) -> Site | None:
        """The site a Host header names, or None (answer 404)."""
        if not host_header:
            return None
        host = host_header.strip().lower()
        suffix = f":{self.port}"
        if not host.endswith(suffix):
            return None
        name = host[: -len(suffix)]
        if name in _DAEMON_HOSTS:
            return Site("daemon")
        if not name.endswith(".localhost"):
            return None
        label = name[: -len(".localhost")]
        if label == "shared":
            return Site("shared")
        if not _LABEL.match(label):
            return None
        app = self.app_by_name(label)
        return Site("app", app) if app is not None else None

    def registry_origin(self, browser_origin: str | None) -> str | None:
        """A browser Origin header in registry form (None if absent or malformed)."""
        if not browser_origin or browser_origin == "null":
            return None
        origin = browser_origin.strip().lower().rstrip("/")
        local = f".localhost:{self.port}"
        if origin.startswith("http://") and origin.endswith(local):
            label = origin[len("http://") : -len(local)]
            if _LABEL.match(label):
                return f"http://{label}.localhost"
            return None
        return origin
