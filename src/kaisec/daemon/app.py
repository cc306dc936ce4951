"""``kaisec serve``: the runtime daemon (Starlette under uvicorn).

One ASGI application answers every Host it knows (see ``sites``): packaged
apps' files, the shared origin's JS client, the token endpoints and the
WebSocket gateway. The :class:`Runtime` holds what the sessions share: the
permission manager, the installer, the simulated device, tokens, prompts,
the audit writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from kaisec.daemon.appserver import AppServer
from kaisec.daemon.audit import AuditWriter
from kaisec.daemon.config import DaemonConfig
from kaisec.daemon.gateway import run_session
from kaisec.daemon.prompts import PromptBroker
from kaisec.daemon.sites import Sites
from kaisec.daemon.tokens import TokenError, TokenStore
from kaisec.home import Home
from kaisec.installer import InstallResult
from kaisec.manager import PermissionManager
from kaisec.registry import AppRecord

__all__ = ["Runtime", "create_app", "uvicorn_options"]

log = logging.getLogger(__name__)
TOKEN_HEADER = "x-kaisec-token-request"  # noqa: S105 - a header name


class Runtime:
    """Everything the daemon's sessions share."""

    def __init__(self, home: Home, config: DaemonConfig) -> None:
        from kaisec.device import DeviceConfig, open_device

        self.home = home.ensure()
        self.config = config
        self.manager = PermissionManager.open(home)
        self.manager.start_session()  # session-only answers of an earlier run lapse
        self.sites = Sites(self.manager, port=config.port)
        self.tokens = TokenStore(ttl=config.token_ttl, max_per_origin=config.max_tokens_per_origin)
        self.prompts = PromptBroker(timeout=config.prompt_timeout)
        self.audit = AuditWriter(self.manager.store, flush_interval=config.audit_flush)
        self.device = open_device(
            home,
            config=DeviceConfig(
                emergency_numbers=("112", "911", *config.emergency_numbers),
                premium_prefixes=config.premium_prefixes,
            ),
        )
        self.appserver = AppServer(
            home.apps_dir,
            shared_origin=self.sites.shared_origin,
            system_origin=self.sites.system_origin,
        )
        self.sessions: dict[int, Any] = {}
        self._unsubscribe: Callable[[], None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.audit.start()
        self._unsubscribe = self.device.subscribe(self._device_event)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        await self.audit.stop()
        self.appserver.close()
        self.device.close()
        self.manager.close()

    # -- device events -> sessions ------------------------------------------------

    def _device_event(self, event: Any) -> None:
        loop = self.loop
        if loop is not None:
            loop.call_soon_threadsafe(self._route_event, event)

    def _route_event(self, event: Any) -> None:
        from kaisec.daemon.services import SERVICES

        service = SERVICES.get(event.service)
        for session in list(self.sessions.values()):
            if event.owner is not None and event.owner != session.origin:
                continue
            if event.owner is None and event.service not in session.services:
                continue
            gate = service.gate if service else None
            if (
                gate is not None
                and self.manager.check(session.origin, gate, use=False).value != "allow"
            ):
                continue
            session.queue_event(event.service, event.name, event.data)

    # -- apps (the apps service and the CLI share the installer) -------------------

    def install(self, url: str, progress: Callable[[str, float], None]) -> InstallResult:
        from kaisec.installer import Installer

        with Installer(self.home, manager=self.manager) as inst:
            return inst.install(url, progress=progress)

    def uninstall(self, key: str) -> AppRecord:
        from kaisec.installer import Installer

        with Installer(self.home, manager=self.manager) as inst:
            return inst.uninstall(key)


# --- HTTP endpoints ----------------------------------------------------------------


def _runtime(request: Request | WebSocket) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def _not_found() -> Response:
    return Response("not found", status_code=404, headers={"x-content-type-options": "nosniff"})


async def token_endpoint(request: Request) -> Response:
    """``/.kaisec/token``: a token for the page's own origin.

    On an app's origin: same-origin only (a custom header forces a CORS
    preflight, which is never granted there; ``Sec-Fetch-Site`` must say
    same-origin where the browser sends it). On the daemon's own origin:
    for installed hosted PWAs, through CORS.
    """
    rt = _runtime(request)
    site = rt.sites.site(request.headers.get("host"))
    if site is None or site.kind == "shared":
        return _not_found()
    if request.method == "OPTIONS":
        return _preflight(rt, request, site.kind)
    if request.headers.get(TOKEN_HEADER) != "1":
        return JSONResponse({"error": {"code": "AUTH_REQUIRED", "message": "missing header"}},
                            status_code=403)  # fmt: skip
    fetch_site = request.headers.get("sec-fetch-site")
    headers = {"cache-control": "no-store", "x-content-type-options": "nosniff"}
    if site.kind == "app":
        assert site.app is not None
        if fetch_site is not None and fetch_site != "same-origin":
            rt.audit.record(site.app.origin, "token", "refused", actor="gateway",
                            detail=f"Sec-Fetch-Site: {fetch_site}")  # fmt: skip
            return JSONResponse({"error": {"code": "AUTH_REQUIRED", "message": "same-origin only"}},
                                status_code=403, headers=headers)  # fmt: skip
        origin = site.app.origin
    else:
        origin = rt.sites.registry_origin(request.headers.get("origin")) or ""
        app = rt.sites.app_by_origin(origin) if origin else None
        if app is None or app.package_digest:  # hosted PWAs only, by their real Origin
            return JSONResponse({"error": {"code": "AUTH_REQUIRED", "message": "not installed"}},
                                status_code=403, headers=headers)  # fmt: skip
        headers |= {"access-control-allow-origin": request.headers["origin"], "vary": "Origin"}
    try:
        token = rt.tokens.issue(origin)
    except TokenError as exc:
        rt.audit.record(origin, "token", "refused", actor="gateway", detail=str(exc))
        return JSONResponse({"error": {"code": "RATE_LIMITED", "message": "too many tokens"}},
                            status_code=429, headers=headers)  # fmt: skip
    return JSONResponse({"token": token, "expires_in": rt.config.token_ttl, "origin": origin},
                        headers=headers)  # fmt: skip


def _preflight(rt: Runtime, request: Request, kind: str) -> Response:
    origin_header = request.headers.get("origin", "")
    origin = rt.sites.registry_origin(origin_header)
    app = rt.sites.app_by_origin(origin) if origin else None
    if kind != "daemon" or app is None or app.package_digest:
        return Response(status_code=403)
    return Response(
        status_code=204,
        headers={
            "access-control-allow-origin": origin_header,
            "access-control-allow-methods": "GET",
            "access-control-allow-headers": "X-Kaisec-Token-Request",
            "access-control-max-age": "60",
            "vary": "Origin",
        },
    )


def _client_js() -> bytes:
    return resources.files("kaisec.daemon").joinpath("static/kaisec.js").read_bytes()


async def files_endpoint(request: Request) -> Response:
    rt = _runtime(request)
    site = rt.sites.site(request.headers.get("host"))
    if site is None:
        return _not_found()
    if site.kind == "shared":
        if request.url.path in ("/kaisec.js", "/js/kaisec.js"):
            return Response(
                _client_js(),
                media_type="text/javascript; charset=utf-8",
                headers={
                    "x-content-type-options": "nosniff",
                    "cross-origin-resource-policy": "cross-origin",
                    "access-control-allow-origin": "*",
                    "cache-control": "no-cache",
                },
            )
        return _not_found()
    if site.kind == "daemon":
        if request.url.path == "/":
            return JSONResponse({"kaisec": "daemon", "system": rt.sites.system_origin + "/"})
        return _not_found()
    assert site.app is not None
    if request.url.path == "/.kaisec/kaisec.js":  # the client, also from the app's own origin
        return Response(
            _client_js(),
            media_type="text/javascript; charset=utf-8",
            headers={"x-content-type-options": "nosniff", "cache-control": "no-cache"},
        )
    return rt.appserver.serve(request, site.app)


async def ws_endpoint(websocket: WebSocket) -> None:
    rt = _runtime(websocket)
    if rt.sites.site(websocket.headers.get("host")) is None:
        await websocket.close(code=4404)
        return
    await run_session(rt, websocket)


def create_app(home: Home, config: DaemonConfig | None = None) -> Starlette:
    """The daemon as an ASGI application (the runtime starts with the app's lifespan)."""
    cfg = config or DaemonConfig()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runtime = Runtime(home, cfg)
        app.state.runtime = runtime
        runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    return Starlette(
        routes=[
            Route("/.kaisec/token", token_endpoint, methods=["GET", "OPTIONS"]),
            WebSocketRoute("/.kaisec/ws", ws_endpoint),
            Route("/{path:path}", files_endpoint, methods=["GET", "HEAD"]),
        ],
        lifespan=lifespan,
    )


def ws_implementation() -> str:
    """uvicorn's WebSocket protocol: the sans-I/O websockets one where available."""
    from uvicorn.config import WS_PROTOCOLS

    return "websockets-sansio" if "websockets-sansio" in WS_PROTOCOLS else "websockets"


def uvicorn_options(config: DaemonConfig) -> dict[str, Any]:
    """uvicorn's settings for the daemon (the benchmark's peers run with the same ones)."""
    return {
        "host": config.host,
        "port": config.port,
        "ws": ws_implementation(),
        "ws_max_size": config.max_message,
        # no per-message compression: it leaks secrets through sizes (CRIME-style)
        "ws_per_message_deflate": False,
        "ws_ping_interval": 20.0,
        "ws_ping_timeout": 20.0,
        "log_level": "warning",
        "server_header": False,
    }


def serve(home: Home, config: DaemonConfig) -> None:
    """Run the daemon until interrupted."""
    import uvicorn

    uvicorn.run(create_app(home, config), **uvicorn_options(config))
