"""A Python client of the kaisec gateway, shaped like the JS one (for tests and scripts).

::

    async with await Client.connect(port=8081, app="contacts") as api:
        people = await api.contacts.find(name="Ada")
        await api.telephony.dial(number="112")

It plays a page of one origin: it fetches a token the way that page would
(from the app's own origin, or for a hosted PWA from the daemon's origin with
CORS) and opens the WebSocket with that Origin. A non-browser client can of
course claim any Origin; the browser is what makes Origin trustworthy for
pages, and local processes are outside the threat model (docs/protocol.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

__all__ = ["Client", "ClosedError", "GatewayError", "PermissionDenied", "fetch_token"]


class GatewayError(Exception):
    """An error answer from the gateway."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.code = str(error.get("code"))
        self.permission: str | None = error.get("permission")
        self.reason: str | None = error.get("reason")
        self.error = error


class PermissionDenied(GatewayError):
    """PERMISSION_DENIED, with the permission's name."""


class ClosedError(Exception):
    """The connection closed; ``code`` is the WebSocket close code."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(f"connection closed ({code}: {reason})")
        self.code = code


def _app_host(app: str | None, port: int) -> str:
    return f"{app}.localhost:{port}" if app else f"localhost:{port}"


async def fetch_token(
    *, port: int, app: str | None = None, origin: str | None = None, host: str = "127.0.0.1"
) -> str:
    """A token as a page would get it: from its app's origin, or (PWA) by CORS from the daemon."""
    headers = {"Host": _app_host(app, port), "X-Kaisec-Token-Request": "1"}
    if app:
        headers["Sec-Fetch-Site"] = "same-origin"
    if origin:
        headers["Origin"] = origin
    async with httpx.AsyncClient(trust_env=False) as http:
        response = await http.get(f"http://{host}:{port}/.kaisec/token", headers=headers)
    if response.status_code != 200:
        raise GatewayError({"code": "AUTH_REQUIRED", "message": f"HTTP {response.status_code}"})
    return str(response.json()["token"])


class _Service:
    def __init__(self, client: Client, name: str) -> None:
        self._client = client
        self._name = name

    def __getattr__(self, method: str) -> Callable[..., Awaitable[Any]]:
        async def call(**params: Any) -> Any:
            return await self._client.call(self._name, method, params)

        return call


class Client:
    """One gateway session."""

    def __init__(self, ws: ClientConnection, ready: dict[str, Any]) -> None:
        self.ws = ws
        self.ready = ready
        self._next = 0
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._listeners: dict[tuple[str, str], list[Callable[[Any], None]]] = {}
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.close_code: int | None = None
        self.error: Exception | None = None
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def connect(
        cls,
        *,
        port: int,
        app: str | None = None,
        origin: str | None = None,
        host: str = "127.0.0.1",
        token: str | None = None,
    ) -> Client:
        """Open a session as a page of ``app`` (a packaged app's name) or of ``origin`` (a PWA).

        Raises:
            ClosedError: the gateway refused the token (close code 4401) or timed out.
        """
        page_origin = origin or f"http://{app}.localhost:{port}"
        if token is None:
            token = await fetch_token(port=port, app=app, origin=origin, host=host)
        # the URI names the site (Host header); host/port say where to connect
        ws = await connect(
            f"ws://{_app_host(app, port)}/.kaisec/ws",
            origin=page_origin,  # type: ignore[arg-type]
            max_size=None,
            host=host,
            port=port,
        )
        await ws.send(json.dumps({"token": token}))
        try:
            ready = json.loads(await ws.recv())
        except Exception as exc:
            code = ws.close_code
            raise ClosedError(code, ws.close_reason or "") from exc
        return cls(ws, ready)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                msg = json.loads(raw)
                if "event" in msg:
                    await self.events.put(msg)
                    for cb in self._listeners.get((msg.get("service"), msg["event"]), []):
                        cb(msg.get("data"))
                    continue
                fut = self._waiting.pop(msg.get("id"), None) if msg.get("id") is not None else None
                if fut is None:
                    await self.events.put(msg)  # errors without an id (malformed, rate limit)
                    continue
                if "error" in msg:
                    cls = (
                        PermissionDenied
                        if msg["error"].get("code") == "PERMISSION_DENIED"
                        else GatewayError
                    )
                    fut.set_exception(cls(msg["error"]))
                else:
                    fut.set_result(msg.get("result"))
        except Exception as exc:  # the connection died; waiters learn below
            self.error = exc
        finally:
            self.close_code = self.ws.close_code
            for fut in self._waiting.values():
                if not fut.done():
                    fut.set_exception(ClosedError(self.close_code, self.ws.close_reason or ""))
            self._waiting.clear()

    async def call(self, service: str, method: str, params: dict[str, Any] | None = None) -> Any:
        """Call a method: its result, or GatewayError / PermissionDenied / ClosedError."""
        self._next += 1
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[self._next] = fut
        try:
            await self.ws.send(
                json.dumps(
                    {"id": self._next, "service": service, "method": method, "params": params or {}}
                )
            )
        except Exception as exc:
            self._waiting.pop(self._next, None)
            raise ClosedError(self.ws.close_code) from exc
        return await fut

    def on(self, service: str, event: str, callback: Callable[[Any], None]) -> None:
        self._listeners.setdefault((service, event), []).append(callback)

    def __getattr__(self, service: str) -> _Service:
        if service.startswith("_"):
            raise AttributeError(service)
        return _Service(self, service)

    async def wait_closed(self) -> int | None:
        await self._reader
        return self.close_code

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        with contextlib.suppress(Exception):
            await self._reader

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
