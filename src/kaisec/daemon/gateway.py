"""The API gateway: one WebSocket session per page, every call checked.

Protocol (docs/protocol.md): the first message is ``{"token": "..."}``; the
token must have been issued to the connection's Origin. After that, requests
``{"id", "service", "method", "params"}`` get ``{"id", "result"}`` or
``{"id", "error": {"code", "permission", "message"}}``; events arrive as
``{"event", "service", "data"}``.

Each call: the service's gate permission and the method's permission are
checked with the permission manager for the session's origin, on every call
(a revocation takes effect at once); PROMPT suspends the call and asks the
user through the system app; every decision is audited. Malformed frames,
unknown methods, bad parameters get an error and the session goes on; floods
and oversized frames close it with a documented code; other sessions never
notice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from kaisec.daemon.services import SERVICES, check_params
from kaisec.errors import (
    DeviceError,
    InvalidRequestError,
    KaisecError,
    PermissionDeniedError,
)
from kaisec.registry import AppRecord
from kaisec.types import Action, Expiry

if TYPE_CHECKING:
    from kaisec.daemon.app import Runtime
    from kaisec.device import Device

__all__ = ["CLOSE_CODES", "CallContext", "SessionState", "run_session"]

log = logging.getLogger(__name__)

#: WebSocket close codes (documented in docs/protocol.md).
WS_AUTH_FAILED = 4401  # no, bad, used, expired or foreign token; or an unknown origin
WS_TIMEOUT = 4408  # no token in time, or idle too long
WS_RATE_LIMITED = 4429  # a sustained flood
WS_MALFORMED = 4400  # too many malformed messages
WS_TOO_BIG = 1009  # a message over the size limit
WS_GOING_AWAY = 1001  # the daemon is stopping
CLOSE_CODES = {
    WS_AUTH_FAILED: "authentication failed",
    WS_TIMEOUT: "timeout",
    WS_RATE_LIMITED: "rate limit exceeded",
    WS_MALFORMED: "too many malformed messages",
    WS_TOO_BIG: "message too big",
    WS_GOING_AWAY: "daemon stopping",
}


class SessionState(Enum):
    """Where a connection is in its life."""

    AUTHENTICATING = "authenticating"
    OPEN = "open"
    CLOSED = "closed"


class _Close(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(CLOSE_CODES.get(code, "closed"))
        self.code = code


@dataclass
class _Bucket:
    rate: float
    burst: float
    tokens: float
    stamp: float

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class CallContext:
    """What a service handler sees of the session that called it."""

    def __init__(self, session: _Session) -> None:
        self._session = session
        self.runtime = session.runtime
        self.origin = session.origin
        self.app = session.app

    @property
    def device(self) -> Device:
        return self.runtime.device

    def send_event(self, service: str, name: str, data: Any) -> None:
        self._session.queue_event(service, name, data)

    async def confirm(self, permission: str, *, reason: str) -> None:
        """Ask the user for this one call (never remembered), or raise PERMISSION_DENIED."""
        await self._session.ask(permission, reason=reason, remember_allowed=False)

    def watch_prompts(self) -> list[dict[str, Any]]:
        return self._session.watch_prompts()


class _Session:
    _ids = 0

    def __init__(self, runtime: Runtime, ws: WebSocket, origin: str, app: AppRecord) -> None:
        _Session._ids += 1
        self.key = _Session._ids
        self.runtime = runtime
        self.ws = ws
        self.origin = origin
        self.app = app
        cfg = runtime.config
        self.bucket = _Bucket(cfg.rate, cfg.burst, cfg.burst, time.monotonic())
        self.violations = 0
        self.window_start = time.monotonic()
        self.malformed = 0
        self.out: asyncio.Queue[str | None] = asyncio.Queue(maxsize=1024)
        self.services: set[str] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.pending_prompts = 0
        self.state = SessionState.OPEN
        self.last_seen = time.monotonic()
        self.idle = False

    # -- output ------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        try:
            self.out.put_nowait(json.dumps(message, separators=(",", ":")))
        except asyncio.QueueFull:
            log.warning("%s: output queue full; dropping a message", self.origin)

    def queue_event(self, service: str, name: str, data: Any) -> None:
        if self.state is SessionState.OPEN:
            self.send({"event": name, "service": service, "data": data})

    async def writer(self) -> None:
        while True:
            text = await self.out.get()
            if text is None:
                return
            await self.ws.send_text(text)

    # -- permissions ---------------------------------------------------------------

    def watch_prompts(self) -> list[dict[str, Any]]:
        return self.runtime.prompts.watch(
            self.key, lambda name, data: self.queue_event("permissions", name, data)
        )

    def _description(self, permission: str) -> str:
        features = self.app.manifest.get("b2g_features")
        perms = features.get("permissions") if isinstance(features, dict) else None
        if isinstance(perms, dict):
            row = self.runtime.manager.table.find(permission)
            entry = perms.get(row.name if row else permission)
            if isinstance(entry, dict) and isinstance(entry.get("description"), str):
                return str(entry["description"])
        return ""

    async def ask(self, permission: str, *, reason: str, remember_allowed: bool) -> None:
        if self.pending_prompts >= self.runtime.config.max_pending_prompts:
            raise PermissionDeniedError(
                f"{permission}: too many questions waiting", permission=permission
            )
        self.pending_prompts += 1
        try:
            icons = self.app.manifest.get("icons")
            icon = icons[0].get("src") if isinstance(icons, list) and icons else None
            answer = await self.runtime.prompts.ask(
                origin=self.origin,
                app_name=self.app.display_name,
                app_class=self.app.app_class.value,
                permission=permission,
                description=self._description(permission),
                icon=icon if isinstance(icon, str) else None,
                reason=reason,
                remember_allowed=remember_allowed,
            )
        finally:
            self.pending_prompts -= 1
        decision = f"prompt:{answer.action.value}" + (":remember" if answer.remember else "")
        self.runtime.audit.record(
            self.origin, permission, decision, actor="gateway", detail=answer.reason
        )
        if answer.remember and remember_allowed:
            try:
                await asyncio.to_thread(
                    self.runtime.manager.answer_prompt,
                    self.origin,
                    permission,
                    answer.action,
                    expiry=Expiry.UNTIL if answer.duration else Expiry.NEVER,
                    duration=answer.duration,
                    actor="prompt",
                )
            except KaisecError as exc:
                log.warning("could not remember the answer for %s: %s", permission, exc)
        if answer.action is not Action.ALLOW:
            raise PermissionDeniedError(
                f"{permission}: the user said no ({answer.reason})", permission=permission
            )

    async def require(self, permission: str, what: str) -> None:
        action = self.runtime.manager.check(self.origin, permission)
        if action is Action.PROMPT:
            await self.ask(permission, reason="permission", remember_allowed=True)
            return
        self.runtime.audit.record(
            self.origin, permission, action.value, actor="gateway", detail=what
        )
        if action is not Action.ALLOW:
            raise PermissionDeniedError(
                f"{self.app.display_name} may not use {permission}", permission=permission
            )

    # -- requests ------------------------------------------------------------------

    async def handle(self, text: str) -> None:
        try:
            msg = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            self._malformed(None, "malformed JSON")
            return
        if not isinstance(msg, dict):
            self._malformed(None, "a request must be a JSON object")
            return
        req_id = msg.get("id")
        if not isinstance(req_id, int | str) or isinstance(req_id, bool):
            self._malformed(None, "a request needs an id (number or string)")
            return
        service = SERVICES.get(msg.get("service"))  # type: ignore[arg-type]
        method = service.methods.get(msg.get("method")) if service else None  # type: ignore[arg-type]
        if service is None or method is None:
            self._malformed(req_id, f"unknown method {msg.get('service')}.{msg.get('method')}")
            return
        try:
            params = check_params(method, msg.get("params"))
        except InvalidRequestError as exc:
            self._malformed(req_id, exc.message)
            return
        what = f"{service.name}.{msg['method']}"
        call = self._call(req_id, service.name, what, method, params)
        if not method.slow and not self._may_prompt(service.gate, method, params):
            await call  # the common case, answered in order without a task
            return
        # a call that may wait (on the user, on an install) must not hold up the session
        task = asyncio.get_running_loop().create_task(call)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _may_prompt(self, gate: str | None, method: Any, params: dict[str, Any]) -> bool:
        check = self.runtime.manager.check
        perm = method.permission(params) if callable(method.permission) else method.permission
        return any(p and check(self.origin, p, use=False) is Action.PROMPT for p in (gate, perm))

    def _malformed(self, req_id: Any, message: str) -> None:
        self.malformed += 1
        self.send({"id": req_id, "error": {"code": "INVALID_REQUEST", "permission": None,
                                           "message": message}})  # fmt: skip
        if self.malformed >= self.runtime.config.max_malformed:
            raise _Close(WS_MALFORMED)

    async def _call(
        self, req_id: Any, service_name: str, what: str, method: Any, params: dict[str, Any]
    ) -> None:
        reply: dict[str, Any]
        try:
            needed: list[str] = []
            gate = SERVICES[service_name].gate
            if gate:
                needed.append(gate)
            perm = method.permission
            if callable(perm):
                perm = perm(params)
            if perm and perm not in needed:
                needed.append(perm)
            for permission in needed:
                await self.require(permission, what)
            self.services.add(service_name)
            reply = {"id": req_id, "result": await method.handler(CallContext(self), params)}
        except DeviceError as exc:
            reply = {"id": req_id, "error": {"code": exc.code, "permission": None,
                                             "reason": exc.details.get("reason"),
                                             "message": exc.message}}  # fmt: skip
        except KaisecError as exc:  # PERMISSION_DENIED (with the permission) and the rest
            reply = {"id": req_id, "error": {"code": exc.code, "permission": exc.details.get(
                "permission"), "message": exc.message}}  # fmt: skip
        except Exception:
            log.exception("%s: %s failed", self.origin, what)
            reply = {"id": req_id, "error": {"code": "INTERNAL_ERROR", "permission": None,
                                             "message": "internal error"}}  # fmt: skip
        # answers go out directly (no hop through the event queue): the common path is short
        if self.state is SessionState.OPEN:
            with contextlib.suppress(Exception):  # the peer left; the reader sees it
                await self.ws.send_text(json.dumps(reply, separators=(",", ":")))

    async def reader(self) -> None:
        # idle sessions are closed by a watchdog: a timer per message would cost more
        # than the rest of a call
        cfg = self.runtime.config
        watchdog = asyncio.get_running_loop().create_task(self._watch_idle(cfg.idle_timeout))
        try:
            await self._read(cfg)
        finally:
            watchdog.cancel()
        if self.idle:
            raise _Close(WS_TIMEOUT)

    async def _watch_idle(self, timeout: float) -> None:
        while True:
            await asyncio.sleep(min(timeout, 30.0) / 2)
            if time.monotonic() - self.last_seen > timeout:
                self.idle = True
                with contextlib.suppress(Exception):
                    await self.ws.close(code=WS_TIMEOUT, reason=CLOSE_CODES[WS_TIMEOUT])
                return

    async def _read(self, cfg: Any) -> None:
        while True:
            message = await self.ws.receive()
            self.last_seen = time.monotonic()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                data = message.get("bytes") or b""
                if len(data) > cfg.max_message:
                    raise _Close(WS_TOO_BIG)
                self._malformed(None, "binary frames are not used")
                continue
            if len(text) > cfg.max_message:
                raise _Close(WS_TOO_BIG)
            if not self.bucket.take():
                # over the rate: refused; too many refusals within one second closes
                now = time.monotonic()
                if now - self.window_start > 1.0:
                    self.window_start, self.violations = now, 0
                self.violations += 1
                if self.violations >= cfg.max_violations:
                    raise _Close(WS_RATE_LIMITED)
                self.send({"id": None, "error": {"code": "RATE_LIMITED", "permission": None,
                                                 "message": "slow down"}})  # fmt: skip
                continue
            await self.handle(text)


async def _authenticate(runtime: Runtime, ws: WebSocket) -> tuple[str, AppRecord]:
    """The first message must be a token issued to this connection's Origin."""
    from kaisec.daemon.tokens import TokenError

    origin = runtime.sites.registry_origin(ws.headers.get("origin"))
    try:
        first = await asyncio.wait_for(ws.receive_text(), runtime.config.handshake_timeout)
    except TimeoutError as exc:
        runtime.audit.record(origin or "-", "token", "refused", actor="gateway", detail="timeout")
        raise _Close(WS_TIMEOUT) from exc
    try:
        if origin is None:
            raise TokenError("no Origin header")
        if len(first) > 4096:
            raise TokenError("oversized handshake")
        msg = json.loads(first)
        token = msg.get("token") if isinstance(msg, dict) else None
        runtime.tokens.redeem(token, origin)
        app = runtime.sites.app_by_origin(origin)
        if app is None:
            raise TokenError(f"{origin} is no longer installed")
    except (TokenError, json.JSONDecodeError) as exc:
        # one answer for every failure; the reason goes to the audit log only
        runtime.audit.record(origin or "-", "token", "refused", actor="gateway", detail=str(exc))
        raise _Close(WS_AUTH_FAILED) from exc
    return origin, app


async def run_session(runtime: Runtime, ws: WebSocket) -> None:
    """Serve one WebSocket connection until it closes."""
    await ws.accept()
    session: _Session | None = None
    code = 1000
    try:
        origin, app = await _authenticate(runtime, ws)
        session = _Session(runtime, ws, origin, app)
        runtime.sessions[session.key] = session
        await ws.send_text(json.dumps({"ready": True, "origin": origin, "app": app.name,
                                       "class": app.app_class.value}))  # fmt: skip
        writer = asyncio.get_running_loop().create_task(session.writer())
        try:
            await session.reader()
        finally:
            session.state = SessionState.CLOSED
            for task in list(session.tasks):
                task.cancel()
            session.out.put_nowait(None) if not session.out.full() else None
            try:
                await asyncio.wait_for(writer, 1.0)
            except (TimeoutError, Exception):
                writer.cancel()
    except _Close as close:
        code = close.code
    except WebSocketDisconnect:
        code = 1000
    finally:
        if session is not None:
            runtime.sessions.pop(session.key, None)
            runtime.prompts.unwatch(session.key)
        if ws.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):  # the peer may be gone already
                await ws.close(code=code, reason=CLOSE_CODES.get(code, ""))
