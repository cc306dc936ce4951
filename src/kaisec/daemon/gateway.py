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
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from json.scanner import make_scanner
from typing import TYPE_CHECKING, Any, cast

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from kaisec.daemon.services import SERVICES, Method, check_params
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


# --- JSON on the hot path -------------------------------------------------------------
#
# json.loads and json.dumps set up a decoder or an encoder on every call (a few
# microseconds, a large share of a call): the C scanner and encoder are made once here.
# Anything the fast path does not take (leading or trailing whitespace, garbage) goes to
# json.loads, which decides and explains exactly as before.

_scan = make_scanner(cast(Any, json.JSONDecoder()))  # typeshed wants a scanner; a decoder is right


def _loads(text: str) -> Any:
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        return json.loads(text)
    return value if end == len(text) else json.loads(text)


def _encoder() -> Callable[[Any], str]:
    try:
        from _json import encode_basestring_ascii, make_encoder
    except ImportError:  # not CPython: the pure-Python encoder
        return json.JSONEncoder(separators=(",", ":")).encode

    def default(o: Any) -> Any:
        raise TypeError(f"{o.__class__.__name__} is not JSON serializable")

    # what json.dumps(separators=(",", ":")) does, without its per-call set-up; no
    # circular-reference markers: a cycle raises RecursionError, which callers catch
    encode = make_encoder(
        None, default, encode_basestring_ascii, None, ":", ",", False, False, True
    )
    return lambda value: "".join(encode(value, 0))


_dumps = _encoder()


@dataclass(frozen=True, slots=True)
class _Route:
    """One service method with what a call to it needs, worked out once."""

    service: str
    what: str  # "service.method", the audit detail
    gate: str | None
    method: Method


_ROUTES: dict[tuple[str, str], _Route] = {
    (service.name, name): _Route(service.name, f"{service.name}.{name}", service.gate, method)
    for service in SERVICES.values()
    for name, method in service.methods.items()
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


@dataclass(slots=True)
class _Bucket:
    rate: float
    burst: float
    tokens: float
    stamp: float

    def take(self, now: float) -> bool:
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
        self._check = runtime.manager.check
        self._record = runtime.audit.record
        self.context = CallContext(self)  # what handlers see; the same for every call

    # -- output ------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        try:
            self.out.put_nowait(_dumps(message))
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

    def _decide(self, permission: str, what: str) -> Action:
        """Check one permission now (a one-time grant is used); audited unless PROMPT."""
        action = self._check(self.origin, permission)
        if action is not Action.PROMPT:  # a prompt's answer is audited when it comes
            self._record(self.origin, permission, action.value, actor="gateway", detail=what)
        return action

    def _denied(self, permission: str) -> PermissionDeniedError:
        return PermissionDeniedError(
            f"{self.app.display_name} may not use {permission}", permission=permission
        )

    async def require(self, permission: str, what: str) -> None:
        action = self._decide(permission, what)
        if action is Action.PROMPT:
            await self.ask(permission, reason="permission", remember_allowed=True)
        elif action is not Action.ALLOW:
            raise self._denied(permission)

    # -- requests ------------------------------------------------------------------

    async def handle(self, text: str) -> None:
        try:
            msg = _loads(text)
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
        service, name = msg.get("service"), msg.get("method")
        route = (
            _ROUTES.get((service, name))
            if isinstance(service, str) and isinstance(name, str)
            else None
        )
        if route is None:
            self._malformed(req_id, f"unknown method {service}.{name}")
            return
        method = route.method
        try:
            params = check_params(method, msg.get("params"))
        except InvalidRequestError as exc:
            self._malformed(req_id, exc.message)
            return
        try:
            needed = self._needed(route, params)
        except Exception as exc:
            await self._answer(self._error(req_id, route.what, exc))
            return
        # every permission is checked now, in order, on every call; only a PROMPT waits
        # (on the user), in a task of its own so that the session goes on meanwhile
        for i, permission in enumerate(needed):
            action = self._decide(permission, route.what)
            if action is Action.ALLOW:
                continue
            if action is Action.PROMPT:
                self._spawn(self._prompted(req_id, route, params, permission, needed[i + 1 :]))
            else:
                await self._answer(self._error(req_id, route.what, self._denied(permission)))
            return
        self.services.add(route.service)
        if method.slow:  # may wait long (an install, a confirmation): apart, like a prompt
            self._spawn(self._run(req_id, route, params))
            return
        await self._run(req_id, route, params)  # the common case, answered in order

    @staticmethod
    def _needed(route: _Route, params: dict[str, Any]) -> tuple[str, ...]:
        """The permissions a call needs: the service's gate, then the method's own."""
        perm = route.method.permission
        if callable(perm):
            perm = perm(params)
        if not perm or perm == route.gate:
            return (route.gate,) if route.gate else ()
        return (route.gate, perm) if route.gate else (perm,)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _prompted(
        self,
        req_id: Any,
        route: _Route,
        params: dict[str, Any],
        permission: str,
        rest: tuple[str, ...],
    ) -> None:
        """A call that needs the user's answer for ``permission`` (then checks the rest)."""
        try:
            await self.ask(permission, reason="permission", remember_allowed=True)
            for other in rest:
                await self.require(other, route.what)
        except Exception as exc:
            await self._answer(self._error(req_id, route.what, exc))
            return
        self.services.add(route.service)
        await self._run(req_id, route, params)

    async def _run(self, req_id: Any, route: _Route, params: dict[str, Any]) -> None:
        """Run a call whose permissions were granted, and answer it."""
        try:
            reply = {"id": req_id, "result": await route.method.handler(self.context, params)}
        except Exception as exc:
            reply = self._error(req_id, route.what, exc)
        await self._answer(reply)

    def _error(self, req_id: Any, what: str, exc: Exception) -> dict[str, Any]:
        if isinstance(exc, DeviceError):
            return {"id": req_id, "error": {"code": exc.code, "permission": None,
                                            "reason": exc.details.get("reason"),
                                            "message": exc.message}}  # fmt: skip
        if isinstance(exc, KaisecError):  # PERMISSION_DENIED (with the permission) and the rest
            return {"id": req_id, "error": {"code": exc.code, "permission": exc.details.get(
                "permission"), "message": exc.message}}  # fmt: skip
        log.error("%s: %s failed", self.origin, what, exc_info=exc)
        return {"id": req_id, "error": {"code": "INTERNAL_ERROR", "permission": None,
                                        "message": "internal error"}}  # fmt: skip

    async def _answer(self, reply: dict[str, Any]) -> None:
        try:
            text = _dumps(reply)
        except (TypeError, ValueError, RecursionError) as exc:  # a result that is not JSON
            log.error("%s: an answer could not be encoded", self.origin, exc_info=exc)
            text = _dumps({"id": reply.get("id"), "error": {"code": "INTERNAL_ERROR",
                           "permission": None, "message": "internal error"}})  # fmt: skip
        # Answers go out at the end of the event loop's pass, after the other sessions
        # whose requests came in the same pass (one yield, no timer). Sent as each is
        # ready, they left one every few dozen microseconds, so a client woke (and its
        # wake-up cost both sides a thread switch) once per answer; sent together, once
        # per pass. Each session still sends its own answers in order, in its own task:
        # a client that does not read holds up no one else.
        await asyncio.sleep(0)
        if self.state is not SessionState.OPEN:
            return
        try:
            await self.ws.send_text(text)
        except Exception:  # the peer left; the reader sees it
            return

    def _malformed(self, req_id: Any, message: str) -> None:
        self.malformed += 1
        self.send({"id": req_id, "error": {"code": "INVALID_REQUEST", "permission": None,
                                           "message": message}})  # fmt: skip
        if self.malformed >= self.runtime.config.max_malformed:
            raise _Close(WS_MALFORMED)

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
        receive, handle, take = self.ws.receive, self.handle, self.bucket.take
        clock, max_message = time.monotonic, cfg.max_message
        while True:
            message = await receive()
            now = self.last_seen = clock()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                data = message.get("bytes") or b""
                if len(data) > max_message:
                    raise _Close(WS_TOO_BIG)
                self._malformed(None, "binary frames are not used")
                continue
            if len(text) > max_message:
                raise _Close(WS_TOO_BIG)
            if not take(now):
                # over the rate: refused; too many refusals within one second closes
                if now - self.window_start > 1.0:
                    self.window_start, self.violations = now, 0
                self.violations += 1
                if self.violations >= cfg.max_violations:
                    raise _Close(WS_RATE_LIMITED)
                self.send({"id": None, "error": {"code": "RATE_LIMITED", "permission": None,
                                                 "message": "slow down"}})  # fmt: skip
                continue
            await handle(text)


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
