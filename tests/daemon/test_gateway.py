"""The API gateway with real WebSocket clients: credentials, decisions, prompts, faults."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from kaisec.client import Client, ClosedError, GatewayError, PermissionDenied, fetch_token
from kaisec.manager import PermissionManager
from kaisec.types import Action

from .conftest import Daemon, run


async def session(d: Daemon, app: str | None = None, origin: str | None = None) -> Client:
    return await Client.connect(port=d.port, app=app, origin=origin)


def test_allowed_and_denied_calls(daemon: Daemon) -> None:
    async def go() -> None:
        async with await session(daemon, "contacts") as api:
            assert api.ready["class"] == "signed"
            added = await api.contacts.add(contact={"name": "Ada", "numbers": ["5551234"]})
            found = await api.contacts.find(name="Ada")
            assert [c["id"] for c in found] == [added["id"]]
            with pytest.raises(PermissionDenied) as info:
                await api.telephony.dial(number="5551234")
            assert info.value.permission == "telephony"
            with pytest.raises(PermissionDenied) as info:
                await api.settings.set(name="x.y", value=1)
            assert info.value.permission == "settings:read"  # the gate: signed apps get no settings
        async with await session(daemon, "dialer") as dialer:
            call = await dialer.telephony.dial(number="5551234")
            assert call["number"] == "5551234"
            assert [c["name"] for c in await dialer.contacts.find(name="Ada")] == ["Ada"]
            with pytest.raises(PermissionDenied) as info:  # readonly: no create
                await dialer.contacts.add(contact={"name": "Bob"})
            assert info.value.permission == "contacts:create"

    run(go())


def test_pwa_gets_token_by_cors_and_cannot_open_telephony(daemon: Daemon) -> None:
    web = daemon.extra["web"].base

    async def go() -> None:
        async with await session(daemon, origin=web) as api:
            assert api.ready["class"] == "pwa"
            with pytest.raises(PermissionDenied) as info:
                await api.telephony.dial(number="112")
            assert info.value.permission == "telephony"

    run(go())
    pre = httpx.options(f"http://127.0.0.1:{daemon.port}/.kaisec/token", trust_env=False,
                        headers={"Host": f"localhost:{daemon.port}", "Origin": web,
                                 "Access-Control-Request-Method": "GET",
                                 "Access-Control-Request-Headers": "x-kaisec-token-request"})  # fmt: skip
    assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == web
    for origin in ("https://evil.example", f"http://contacts.localhost:{daemon.port}"):
        pre = httpx.options(f"http://127.0.0.1:{daemon.port}/.kaisec/token", trust_env=False,
                            headers={"Host": f"localhost:{daemon.port}", "Origin": origin})  # fmt: skip
        assert pre.status_code == 403
        r = httpx.get(f"http://127.0.0.1:{daemon.port}/.kaisec/token", trust_env=False,
                      headers={"Host": f"localhost:{daemon.port}", "Origin": origin,
                               "X-Kaisec-Token-Request": "1"})  # fmt: skip
        assert r.status_code == 403 and "token" not in r.text


def test_token_endpoint_is_same_origin_only(daemon: Daemon) -> None:
    url = f"http://127.0.0.1:{daemon.port}/.kaisec/token"
    host = {"Host": f"contacts.localhost:{daemon.port}"}
    assert httpx.get(url, headers=host, trust_env=False).status_code == 403  # no custom header
    r = httpx.get(url, headers=host | {"X-Kaisec-Token-Request": "1", "Sec-Fetch-Site": "same-site"},
                  trust_env=False)  # fmt: skip
    assert r.status_code == 403
    r = httpx.options(url, headers=host | {"Origin": f"http://gallery.localhost:{daemon.port}"},
                      trust_env=False)  # fmt: skip
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
    r = httpx.get(url, headers=host | {"X-Kaisec-Token-Request": "1"}, trust_env=False)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    assert len(r.json()["token"]) >= 40


def test_tokens_are_single_use_and_bound_to_origin(daemon: Daemon) -> None:
    async def refused(**kw: object) -> int | None:
        with pytest.raises(ClosedError) as info:
            await Client.connect(port=daemon.port, **kw)  # type: ignore[arg-type]
        return info.value.code

    async def go() -> None:
        token = await fetch_token(port=daemon.port, app="contacts")
        async with await Client.connect(port=daemon.port, app="contacts", token=token):
            pass
        assert await refused(app="contacts", token=token) == 4401  # replayed
        stolen = await fetch_token(port=daemon.port, app="contacts")
        assert await refused(app="gallery", token=stolen) == 4401  # used from another origin
        assert await refused(app="contacts", token="made-up") == 4401
        assert await refused(app="contacts", token="") == 4401  # missing
        # a page of a site that is not installed gets nothing
        assert await refused(origin="https://evil.example", token=stolen) == 4401
        # no Origin header at all
        ws = await connect(f"ws://localhost:{daemon.port}/.kaisec/ws",
                           host="127.0.0.1", port=daemon.port)  # fmt: skip
        await ws.send(json.dumps({"token": await fetch_token(port=daemon.port, app="contacts")}))
        with pytest.raises(Exception):
            await ws.recv()
        assert ws.close_code == 4401

    run(go())


def test_revocation_reaches_open_sessions(daemon: Daemon) -> None:
    async def go() -> None:
        mgr = PermissionManager.open(daemon.home)  # another process's view, as the CLI has
        try:
            mgr.set("http://contacts.localhost", "camera", Action.ALLOW)
            async with await session(daemon, "contacts") as api:
                png = await api.camera.takePicture()
                assert base64.b64decode(png["data"]).startswith(b"\x89PNG")
                mgr.set("http://contacts.localhost", "camera", Action.DENY)
                with pytest.raises(PermissionDenied):
                    await api.camera.takePicture()
        finally:
            mgr.close()

    run(go())


def test_prompt_flow(daemon: Daemon) -> None:
    web = daemon.extra["web"].base

    async def go() -> None:
        # no prompt screen open: a prompt denies at once
        async with await session(daemon, origin=web) as pwa:
            with pytest.raises(PermissionDenied):
                await pwa.geolocation.getCurrentPosition()
        async with (
            await session(daemon, "system") as system,
            await session(daemon, origin=web) as pwa,
        ):
            assert (await system.permissions.watch())["pending"] == []

            async def answer(action: str, remember: bool) -> None:
                event = await asyncio.wait_for(system.events.get(), 5)
                assert event["event"] == "prompt"
                assert event["data"]["permission"] == "geolocation"
                assert event["data"]["description"] == "forecast"
                assert event["data"]["class"] == "pwa"
                await system.permissions.answer(id=event["data"]["id"], action=action,
                                                remember=remember)  # fmt: skip
                closed = await asyncio.wait_for(system.events.get(), 5)
                assert closed["event"] == "promptclosed"

            # allow once: this call only
            pos, _ = await asyncio.gather(
                pwa.geolocation.getCurrentPosition(), answer("allow", False)
            )
            assert "lat" in pos
            # asked again next time; deny without remembering
            with pytest.raises(PermissionDenied):
                await asyncio.gather(pwa.geolocation.getCurrentPosition(), answer("deny", False))
            # allow and remember: no more prompts
            await asyncio.gather(pwa.geolocation.getCurrentPosition(), answer("allow", True))
            await pwa.geolocation.getCurrentPosition()
            assert system.events.empty()
            # an unanswered prompt denies after the timeout
            mgr = PermissionManager.open(daemon.home)
            mgr.set(web, "geolocation", Action.PROMPT)
            mgr.close()
            with pytest.raises(PermissionDenied):
                await pwa.geolocation.getCurrentPosition()
        audit = PermissionManager.open(daemon.home)
        try:
            decisions = [
                e.decision for e in audit.store.audit_log(origin=web, permission="geolocation")
            ]
        finally:
            audit.close()
        assert "prompt:allow" in decisions and "prompt:deny" in decisions

    run(go())


def test_premium_numbers_need_confirmation_every_time(daemon: Daemon) -> None:
    async def go() -> None:
        async with await session(daemon, "system") as system, await session(daemon, "dialer") as d:
            await system.permissions.watch()

            async def answer(action: str) -> None:
                event = await asyncio.wait_for(system.events.get(), 5)
                assert "premium" in event["data"]["reason"]
                assert event["data"]["remember_allowed"] is False
                await system.permissions.answer(
                    id=event["data"]["id"], action=action, remember=True
                )
                await system.events.get()

            call, _ = await asyncio.gather(d.telephony.dial(number="9001234"), answer("allow"))
            assert call["number"] == "9001234"
            with pytest.raises(PermissionDenied):  # remember was ignored: asked again
                await asyncio.gather(d.telephony.dial(number="9001234"), answer("deny"))
            emergency = await d.telephony.dial(number="112")  # no question for emergencies
            assert emergency["emergency"] is True

    run(go())


def test_storage_is_per_app_and_per_area(daemon: Daemon) -> None:
    async def go() -> None:
        mgr = PermissionManager.open(daemon.home)
        for app in ("http://contacts.localhost", "http://gallery.localhost"):
            for perm in ("device-storage:pictures:read", "device-storage:pictures:create"):
                mgr.set(app, perm, Action.ALLOW)
        mgr.close()
        data = base64.b64encode(b"\x89PNG fake").decode()
        async with await session(daemon, "contacts") as c, await session(daemon, "gallery") as g:
            await c.storage.add(area="pictures", name="ada.png", data=data)
            assert [f["name"] for f in await c.storage.list(area="pictures")] == ["ada.png"]
            assert await g.storage.list(area="pictures") == []
            with pytest.raises(GatewayError) as info:
                await g.storage.get(area="pictures", name="ada.png")
            assert info.value.code == "DEVICE_ERROR"
            with pytest.raises(PermissionDenied) as denied:
                await c.storage.list(area="music")  # not requested
            assert denied.value.permission == "device-storage:music:read"
            with pytest.raises(PermissionDenied):
                await c.storage.delete(area="pictures", name="ada.png")  # readcreate: no write
            got = await c.storage.get(area="pictures", name="ada.png")
            assert "path" not in got and base64.b64decode(got["data"]) == b"\x89PNG fake"

    run(go())


def test_faults_are_contained(daemon: Daemon) -> None:
    async def go() -> None:
        async with await session(daemon, "contacts") as bystander:
            ws = await connect(f"ws://contacts.localhost:{daemon.port}/.kaisec/ws",
                               origin=f"http://contacts.localhost:{daemon.port}",  # type: ignore[arg-type]
                               host="127.0.0.1", port=daemon.port)  # fmt: skip
            await ws.send(
                json.dumps({"token": await fetch_token(port=daemon.port, app="contacts")})
            )
            assert json.loads(await ws.recv())["ready"]
            for bad in ("{not json", "[1,2]", json.dumps({"id": 1, "service": "nope", "method": "x"}),
                        json.dumps({"id": 2, "service": "contacts", "method": "find",
                                    "params": {"name": 5}}),
                        json.dumps({"id": 3, "service": "contacts", "method": "find",
                                    "params": {"evil": 1}}),
                        json.dumps({"service": "contacts", "method": "find"}),
                        json.dumps({"id": 4, "service": ["contacts"], "method": "find"}),
                        json.dumps({"id": 5, "service": "contacts", "method": {"find": 1}})):  # fmt: skip
                await ws.send(bad)
                reply = json.loads(await ws.recv())
                assert reply["error"]["code"] == "INVALID_REQUEST"
            await ws.send("x" * (daemon.config.max_message + 10))
            with pytest.raises(Exception):
                await ws.recv()
            assert ws.close_code == 1009
            # the bystander is still served
            assert await bystander.contacts.find() == []

    run(go())


def test_floods_close_the_session(daemon: Daemon) -> None:
    async def go() -> None:
        async with await session(daemon, "contacts") as api:
            msg = json.dumps({"id": 1, "service": "contacts", "method": "find", "params": {}})
            try:
                for _ in range(20_000):
                    await api.ws.send(msg)
            except Exception:
                pass
            code = await asyncio.wait_for(api.wait_closed(), 20)
            assert code == 4429
        async with await session(daemon, "contacts") as again:
            assert await again.contacts.find() == []
        # token floods: a bounded number of outstanding tokens per origin
        statuses = [
            httpx.get(f"http://127.0.0.1:{daemon.port}/.kaisec/token", trust_env=False,
                      headers={"Host": f"gallery.localhost:{daemon.port}",
                               "X-Kaisec-Token-Request": "1"}).status_code
            for _ in range(daemon.config.max_tokens_per_origin + 5)
        ]  # fmt: skip
        assert statuses.count(200) == daemon.config.max_tokens_per_origin
        assert statuses[-1] == 429

    run(go())


def test_handshake_timeout(daemon: Daemon) -> None:
    async def go() -> None:
        ws = await connect(f"ws://contacts.localhost:{daemon.port}/.kaisec/ws",
                           origin=f"http://contacts.localhost:{daemon.port}",  # type: ignore[arg-type]
                           host="127.0.0.1", port=daemon.port)  # fmt: skip
        with pytest.raises(Exception):
            await asyncio.wait_for(ws.recv(), daemon.config.handshake_timeout + 5)
        assert ws.close_code == 4408

    run(go())


async def raw_session(d: Daemon, app: str) -> Any:
    """A bare WebSocket past the handshake (no client library reading in the background)."""
    ws = await connect(f"ws://{app}.localhost:{d.port}/.kaisec/ws",
                       origin=f"http://{app}.localhost:{d.port}",  # type: ignore[arg-type]
                       host="127.0.0.1", port=d.port)  # fmt: skip
    await ws.send(json.dumps({"token": await fetch_token(port=d.port, app=app)}))
    assert json.loads(await ws.recv())["ready"]
    return ws


def test_pipelined_calls_are_answered_in_order(daemon: Daemon) -> None:
    """Answers wait for the end of the loop's pass, but a session's stay in order."""

    async def go() -> None:
        api, other = await raw_session(daemon, "contacts"), await raw_session(daemon, "dialer")
        calls = [{"id": n, "service": "contacts", "method": "find", "params": {"limit": 1}}
                 if n % 3 else {"id": n, "service": "telephony", "method": "calls"}
                 for n in range(60)]  # fmt: skip
        for n in range(20):  # another session's traffic in the same passes
            await other.send(json.dumps({"id": n, "service": "contacts", "method": "find"}))
        for call in calls:
            await api.send(json.dumps(call))
        replies = [json.loads(await api.recv()) for _ in calls]
        assert [r["id"] for r in replies] == list(range(60))
        for n, reply in enumerate(replies):
            if n % 3:
                assert reply["result"] == []
            else:  # a signed app may not use telephony: denied, in its place
                assert reply["error"]["code"] == "PERMISSION_DENIED"
                assert reply["error"]["permission"] == "telephony"
        assert [json.loads(await other.recv())["id"] for _ in range(20)] == list(range(20))
        await api.close()
        await other.close()

    run(go())


def test_every_decision_is_audited(daemon: Daemon) -> None:
    async def go() -> None:
        async with await session(daemon, "contacts") as api:
            await api.contacts.find()
            with pytest.raises(PermissionDenied):
                await api.telephony.calls()

    run(go())
    import time

    time.sleep(daemon.config.audit_flush * 3)
    mgr = PermissionManager.open(daemon.home)
    try:
        log = [(e.permission, e.decision, e.detail) for e in mgr.store.audit_log(
            origin="http://contacts.localhost") if e.actor == "gateway"]  # fmt: skip
    finally:
        mgr.close()
    assert ("contacts:read", "allow", "contacts.find") in log
    assert ("telephony", "deny", "telephony.calls") in log


def test_uninstall_takes_the_apps_files_along(daemon: Daemon, build) -> None:  # type: ignore[no-untyped-def]
    from kaisec.installer import Installer

    from ..install.conftest import manifest_doc

    perms = {"device-storage:pictures": {"description": "p", "access": "readcreate"}}

    def grant() -> None:
        mgr = PermissionManager.open(daemon.home)
        for perm in ("device-storage:pictures:read", "device-storage:pictures:create"):
            mgr.set("http://album.localhost", perm, Action.ALLOW)
        mgr.close()

    with Installer(daemon.home) as inst:
        inst.install(build(manifest_doc("Album", permissions=perms)))
    grant()

    async def put() -> None:
        async with await session(daemon, "album") as api:
            await api.storage.add(
                area="pictures", name="me.png", data=base64.b64encode(b"x").decode()
            )

    async def names() -> list[str]:
        async with await session(daemon, "album") as api:
            return [f["name"] for f in await api.storage.list(area="pictures")]

    run(put())
    with Installer(daemon.home) as inst:
        inst.uninstall("album")
        inst.install(build(manifest_doc("Album", permissions=perms)))  # same origin again
    grant()
    assert run(names()) == []


def test_system_app_manages_pin_and_developer_mode(daemon: Daemon) -> None:
    async def go() -> None:
        async with (
            await session(daemon, "system") as system,
            await session(daemon, "contacts") as c,
        ):
            assert (await system.permissions.developerMode())["on"] is False
            assert (await system.permissions.setPin(new="2468"))["set"] is True
            with pytest.raises(GatewayError) as info:
                await system.permissions.developerMode(on=True)
            assert info.value.code == "PIN_REQUIRED"
            assert (await system.permissions.developerMode(on=True, pin="2468"))["on"] is True
            with pytest.raises(GatewayError) as info:
                await system.permissions.set(app="contacts", permission="camera", action="allow")
            assert info.value.code == "PIN_REQUIRED"
            await system.permissions.set(
                app="contacts", permission="camera", action="allow", pin="2468"
            )
            with pytest.raises(GatewayError) as info:  # implicit: nobody may change it
                await system.permissions.set(
                    app="contacts", permission="contacts:read", action="deny"
                )
            assert info.value.code == "IMPLICIT_PERMISSION"
            with pytest.raises(PermissionDenied) as denied:  # only the system app holds it
                await c.permissions.setPin(new="1111", old="2468")
            assert denied.value.permission == "permissions"

    run(go())
