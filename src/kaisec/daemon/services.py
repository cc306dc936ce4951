"""The services the gateway offers, each method with the permission it needs.

A service has a gate permission (KaiOS: ``#[permission=...]`` on the service,
checked here on every call so that a revocation takes effect at once) and
each method may need its own (``contacts:create`` to add a contact). Device
storage computes its permission from the area and the access kind:
``device-storage:<area>:read|write|create``. Handlers only translate
parameters into device-layer calls: the device knows nothing of permissions.
Documented in ``docs/protocol.md``.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kaisec.errors import InvalidRequestError

if TYPE_CHECKING:
    from kaisec.daemon.gateway import CallContext

__all__ = ["SERVICES", "Method", "Service", "check_params"]

Handler = Callable[["CallContext", dict[str, Any]], Awaitable[Any]]
PermissionFor = Callable[[dict[str, Any]], str]

_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "num": (int, float),
    "bool": (bool,),
    "dict": (dict,),
    "list": (list,),
    "any": (str, int, float, bool, list, dict),
}


@dataclass(frozen=True)
class Param:
    kind: str
    required: bool = True
    max_len: int = 4096


@dataclass(frozen=True)
class Method:
    """One callable method."""

    handler: Handler
    permission: str | PermissionFor | None = None
    params: Mapping[str, Param] = field(default_factory=dict)
    #: may wait long (an install, a confirmation): run apart so the session goes on
    slow: bool = False


@dataclass(frozen=True)
class Service:
    """A named group of methods behind one gate permission (None: no gate)."""

    name: str
    gate: str | None
    methods: Mapping[str, Method]


def check_params(method: Method, params: Any) -> dict[str, Any]:
    """Validate request parameters against the method's spec.

    Raises:
        InvalidRequestError: not an object, unknown or missing names, wrong types, too long.
    """
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidRequestError("params must be an object")
    unknown = set(params) - set(method.params)
    if unknown:
        raise InvalidRequestError(f"unknown parameter {sorted(unknown)[0]!r}")
    for name, spec in method.params.items():
        if name not in params or params[name] is None:
            if spec.required:
                raise InvalidRequestError(f"missing parameter {name!r}")
            continue
        value = params[name]
        types = _TYPES[spec.kind]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise InvalidRequestError(f"parameter {name!r} must be {spec.kind}")
        if isinstance(value, str | list | dict) and len(value) > spec.max_len:
            raise InvalidRequestError(f"parameter {name!r} is longer than {spec.max_len}")
    return dict(params)


def _s(required: bool = True, max_len: int = 4096) -> Param:
    return Param("str", required, max_len)


# --- handlers ----------------------------------------------------------------------------


def _dicts(items: Any) -> list[Any]:
    return [i.to_dict() if hasattr(i, "to_dict") else i for i in items]


async def tel_dial(ctx: CallContext, p: dict[str, Any]) -> Any:
    number = p["number"]
    tel = ctx.device.telephony
    if tel.is_premium(number):
        # the seed's 900/910 bill: every call to a premium-rate number is confirmed
        await ctx.confirm("telephony", reason=f"premium-rate number {number}")
    return tel.dial(number, owner=ctx.origin).to_dict()


async def tel_hang_up(ctx: CallContext, p: dict[str, Any]) -> Any:
    return ctx.device.telephony.hang_up(p["call"], owner=ctx.origin).to_dict()


async def tel_calls(ctx: CallContext, p: dict[str, Any]) -> Any:
    return _dicts(ctx.device.telephony.calls(owner=ctx.origin))


async def tel_emergency(ctx: CallContext, p: dict[str, Any]) -> Any:
    return {"number": p["number"], "emergency": ctx.device.telephony.is_emergency(p["number"])}


async def sms_send(ctx: CallContext, p: dict[str, Any]) -> Any:
    return ctx.device.sms.send(p["to"], p["body"], owner=ctx.origin).to_dict()


async def sms_list(ctx: CallContext, p: dict[str, Any]) -> Any:
    return _dicts(ctx.device.sms.list(limit=p.get("limit") or 100))


async def contacts_find(ctx: CallContext, p: dict[str, Any]) -> Any:
    return _dicts(
        ctx.device.contacts.find(
            name=p.get("name"), number=p.get("number"), limit=p.get("limit") or 100
        )
    )


async def contacts_get(ctx: CallContext, p: dict[str, Any]) -> Any:
    return ctx.device.contacts.get(p["id"]).to_dict()


async def contacts_add(ctx: CallContext, p: dict[str, Any]) -> Any:
    return ctx.device.contacts.add(p["contact"]).to_dict()


async def contacts_update(ctx: CallContext, p: dict[str, Any]) -> Any:
    return ctx.device.contacts.update(p["id"], p["fields"]).to_dict()


async def contacts_remove(ctx: CallContext, p: dict[str, Any]) -> Any:
    ctx.device.contacts.remove(p["id"])
    return {"removed": p["id"]}


def _decode(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except ValueError as exc:
        raise InvalidRequestError("data must be base64") from exc


async def storage_add(ctx: CallContext, p: dict[str, Any]) -> Any:
    info = ctx.device.storage.add(
        p["area"], p["name"], _decode(p["data"]), owner=ctx.origin, mime=p.get("type")
    )
    return info.to_dict()


async def storage_get(ctx: CallContext, p: dict[str, Any]) -> Any:
    info, data = ctx.device.storage.get(p["area"], p["name"], owner=ctx.origin)
    return info.to_dict() | {"data": base64.b64encode(data).decode()}


async def storage_list(ctx: CallContext, p: dict[str, Any]) -> Any:
    return _dicts(ctx.device.storage.list(p["area"], owner=ctx.origin))


async def storage_delete(ctx: CallContext, p: dict[str, Any]) -> Any:
    ctx.device.storage.delete(p["area"], p["name"], owner=ctx.origin)
    return {"deleted": p["name"]}


def _storage(kind: str) -> PermissionFor:
    def permission(p: dict[str, Any]) -> str:
        return f"device-storage:{p.get('area')}:{kind}"

    return permission


async def settings_get(ctx: CallContext, p: dict[str, Any]) -> Any:
    return {"name": p["name"], "value": ctx.device.settings.get(p["name"])}


async def settings_list(ctx: CallContext, p: dict[str, Any]) -> Any:
    return ctx.device.settings.list()


async def settings_set(ctx: CallContext, p: dict[str, Any]) -> Any:
    ctx.device.settings.set(p["name"], p["value"])
    return {"name": p["name"], "value": p["value"]}


async def geo_position(ctx: CallContext, p: dict[str, Any]) -> Any:
    return ctx.device.geolocation.current_position().to_dict()


async def camera_take(ctx: CallContext, p: dict[str, Any]) -> Any:
    png = ctx.device.camera.take_picture(width=p.get("width") or 320, height=p.get("height") or 240)
    return {"type": "image/png", "data": base64.b64encode(png).decode()}


async def notify_show(ctx: CallContext, p: dict[str, Any]) -> Any:
    return ctx.device.notifications.show(
        p["title"], p.get("body") or "", owner=ctx.origin
    ).to_dict()


async def notify_list(ctx: CallContext, p: dict[str, Any]) -> Any:
    return _dicts(ctx.device.notifications.list(owner=ctx.origin))


async def notify_close(ctx: CallContext, p: dict[str, Any]) -> Any:
    ctx.device.notifications.close(p["id"], owner=ctx.origin)
    return {"closed": p["id"]}


async def alarms_add(ctx: CallContext, p: dict[str, Any]) -> Any:
    return ctx.device.alarms.add(p["at"], owner=ctx.origin, data=p.get("data")).to_dict()


async def alarms_list(ctx: CallContext, p: dict[str, Any]) -> Any:
    return _dicts(ctx.device.alarms.list(owner=ctx.origin))


async def alarms_remove(ctx: CallContext, p: dict[str, Any]) -> Any:
    ctx.device.alarms.remove(p["id"], owner=ctx.origin)
    return {"removed": p["id"]}


async def time_get(ctx: CallContext, p: dict[str, Any]) -> Any:
    return ctx.device.system_time.get()


async def time_set(ctx: CallContext, p: dict[str, Any]) -> Any:
    ctx.device.system_time.set(time=p.get("time"), timezone=p.get("timezone"))
    return ctx.device.system_time.get()


# apps and permissions act on the runtime itself (the installer, the permission manager)


async def apps_list(ctx: CallContext, p: dict[str, Any]) -> Any:
    from kaisec.registry import list_apps

    return [a.to_dict() | {"icon": _icon(a.manifest)} for a in list_apps(ctx.runtime.manager.store)]


def _icon(manifest: Mapping[str, Any]) -> str | None:
    icons = manifest.get("icons")
    if isinstance(icons, list) and icons and isinstance(icons[0], dict):
        src = icons[0].get("src")
        return src if isinstance(src, str) else None
    return None


async def apps_install(ctx: CallContext, p: dict[str, Any]) -> Any:
    loop = asyncio.get_running_loop()

    def progress(stage: str, fraction: float) -> None:
        loop.call_soon_threadsafe(
            ctx.send_event,
            "apps",
            "installprogress",
            {"url": p["url"], "stage": stage, "progress": fraction},
        )

    result = await asyncio.to_thread(ctx.runtime.install, p["url"], progress)
    return result.app.to_dict()


async def apps_uninstall(ctx: CallContext, p: dict[str, Any]) -> Any:
    rec = await asyncio.to_thread(ctx.runtime.uninstall, p["app"])
    return rec.to_dict()


async def perms_list(ctx: CallContext, p: dict[str, Any]) -> Any:
    mgr = ctx.runtime.manager
    app = mgr.app(p["app"])
    features = app.manifest.get("b2g_features")
    requests = features.get("permissions") if isinstance(features, dict) else None
    requests = requests if isinstance(requests, dict) else {}

    def description(permission: str) -> str | None:
        row = mgr.table.find(permission)
        entry = requests.get(row.name if row else permission)
        return entry.get("description") if isinstance(entry, dict) else None

    return {
        "app": app.to_dict(),
        "permissions": {
            s.permission: s.to_dict() | {"description": description(s.permission)}
            for s in mgr.permissions(app.origin)
        },
    }


async def perms_set(ctx: CallContext, p: dict[str, Any]) -> Any:
    from kaisec.types import Action, Expiry

    mgr = ctx.runtime.manager
    app = mgr.app(p["app"])
    duration = p.get("duration")
    expiry = Expiry.UNTIL if duration else Expiry.NEVER
    await asyncio.to_thread(
        mgr.set,
        app.origin,
        p["permission"],
        Action(p["action"]),
        expiry=expiry,
        duration=duration,
        pin=p.get("pin"),
        actor=f"system:{ctx.origin}",
    )
    return {"app": app.name, "permission": p["permission"],
            "action": mgr.check(app.origin, p["permission"], use=False).value}  # fmt: skip


async def perms_watch(ctx: CallContext, p: dict[str, Any]) -> Any:
    return {"pending": ctx.watch_prompts()}


async def perms_answer(ctx: CallContext, p: dict[str, Any]) -> Any:
    from kaisec.daemon.prompts import Answer
    from kaisec.types import Action

    action = Action(p["action"]) if p["action"] in ("allow", "deny") else None
    if action is None:
        raise InvalidRequestError("action must be allow or deny")
    answer = Answer(action, remember=bool(p.get("remember")), duration=p.get("duration"))
    prompt = ctx.runtime.prompts.answer(p["id"], answer)
    return {"id": p["id"], "answered": prompt is not None}


async def perms_audit(ctx: CallContext, p: dict[str, Any]) -> Any:
    mgr = ctx.runtime.manager
    origin = mgr.app(p["app"]).origin if p.get("app") else None
    ctx.runtime.audit.flush()
    entries = mgr.store.audit_log(
        origin=origin, permission=p.get("permission"), limit=p.get("limit") or 200
    )
    return [e.to_dict() for e in entries]


async def perms_developer_mode(ctx: CallContext, p: dict[str, Any]) -> Any:
    from kaisec.installer import Installer

    with Installer(ctx.runtime.home, manager=ctx.runtime.manager) as inst:
        if p.get("on") is not None:
            await asyncio.to_thread(inst.set_developer_mode, bool(p["on"]), pin=p.get("pin"))
        return {"on": inst.developer_mode()}


async def perms_set_pin(ctx: CallContext, p: dict[str, Any]) -> Any:
    pins = ctx.runtime.manager.pins
    try:
        await asyncio.to_thread(pins.set, p["new"], current=p.get("old"))
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from exc
    return {"set": True}


async def perms_table(ctx: CallContext, p: dict[str, Any]) -> Any:
    return [r.to_dict() for r in ctx.runtime.manager.table.rows.values()]


_AREA = {"area": _s(max_len=32)}
SERVICES: dict[str, Service] = {
    s.name: s
    for s in (
        Service("telephony", "telephony", {
            "dial": Method(tel_dial, params={"number": _s(max_len=32)}, slow=True),
            "hangUp": Method(tel_hang_up, params={"call": _s(max_len=64)}),
            "calls": Method(tel_calls),
            "isEmergency": Method(tel_emergency, params={"number": _s(max_len=32)}),
        }),
        Service("sms", "sms", {
            "send": Method(sms_send, params={"to": _s(max_len=32), "body": _s(max_len=1600)}),
            "list": Method(sms_list, params={"limit": Param("int", False)}),
        }),
        Service("contacts", "contacts:read", {
            "find": Method(contacts_find, params={"name": _s(False, 256), "number": _s(False, 64),
                                                  "limit": Param("int", False)}),
            "get": Method(contacts_get, params={"id": _s(max_len=64)}),
            "add": Method(contacts_add, "contacts:create", {"contact": Param("dict")}),
            "update": Method(contacts_update, "contacts:write",
                             {"id": _s(max_len=64), "fields": Param("dict")}),
            "remove": Method(contacts_remove, "contacts:write", {"id": _s(max_len=64)}),
        }),
        Service("storage", None, {
            "add": Method(storage_add, _storage("create"),
                          {**_AREA, "name": _s(max_len=255), "data": _s(max_len=48_000),
                           "type": _s(False, 128)}),
            "get": Method(storage_get, _storage("read"), {**_AREA, "name": _s(max_len=255)}),
            "list": Method(storage_list, _storage("read"), dict(_AREA)),
            "delete": Method(storage_delete, _storage("write"), {**_AREA, "name": _s(max_len=255)}),
        }),
        Service("settings", "settings:read", {
            "get": Method(settings_get, params={"name": _s(max_len=128)}),
            "list": Method(settings_list),
            "set": Method(settings_set, "settings:write",
                          {"name": _s(max_len=128), "value": Param("any", True, 4096)}),
        }),
        Service("geolocation", "geolocation", {
            "getCurrentPosition": Method(geo_position),
        }),
        Service("camera", "camera", {
            "takePicture": Method(camera_take, params={"width": Param("int", False),
                                                       "height": Param("int", False)}),
        }),
        Service("notifications", "desktop-notification", {
            "show": Method(notify_show, params={"title": _s(max_len=256), "body": _s(False, 2048)}),
            "list": Method(notify_list),
            "close": Method(notify_close, params={"id": _s(max_len=64)}),
        }),
        Service("alarms", "alarms", {
            "add": Method(alarms_add, params={"at": Param("num"), "data": Param("dict", False)}),
            "list": Method(alarms_list),
            "remove": Method(alarms_remove, params={"id": _s(max_len=64)}),
        }),
        Service("time", "system-time:read", {
            "get": Method(time_get),
            "set": Method(time_set, "system-time:write",
                          {"time": Param("num", False), "timezone": _s(False, 64)}),
        }),
        Service("apps", "webapps-manage", {
            "list": Method(apps_list),
            "install": Method(apps_install, params={"url": _s(max_len=2048)}, slow=True),
            "uninstall": Method(apps_uninstall, params={"app": _s(max_len=256)}, slow=True),
        }),
        Service("permissions", "permissions", {
            "list": Method(perms_list, params={"app": _s(max_len=256)}),
            "set": Method(perms_set, params={"app": _s(max_len=256), "permission": _s(max_len=128),
                                             "action": _s(max_len=8), "pin": _s(False, 32),
                                             "duration": Param("num", False)}),
            "watch": Method(perms_watch),
            "answer": Method(perms_answer, params={"id": _s(max_len=32), "action": _s(max_len=8),
                                                   "remember": Param("bool", False),
                                                   "duration": Param("num", False)}),
            "audit": Method(perms_audit, params={"app": _s(False, 256),
                                                 "permission": _s(False, 128),
                                                 "limit": Param("int", False)}),
            "table": Method(perms_table),
            "developerMode": Method(perms_developer_mode, params={"on": Param("bool", False),
                                                                  "pin": _s(False, 32)}, slow=True),
            "setPin": Method(perms_set_pin, params={"new": _s(max_len=32), "old": _s(False, 32)},
                             slow=True),
        }),
    )
}  # fmt: skip
