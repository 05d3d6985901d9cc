"""Every inspector route over a real server (``serve(port=0)``): auth, state (patch persisted
through the normal write path), connections, actions, schedules, KV, workflow history and replay,
the workflow-not-enabled inference, the dev-mode admin routes and ``/ui``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import msgpack
import pytest

from driver_tests.helpers import eventually
from runtime.drivers import FileDriver
from runtime.server.serve import serve
from tests.inspector.actors import lines, registry

pytestmark = pytest.mark.anyio

ADMIN = "admin-secret"


@contextlib.asynccontextmanager
async def running(driver: Any = None, admin: str | None = ADMIN) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    async with serve(registry, "127.0.0.1", 0, driver, inspector_admin_token=admin) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10.0) as http:
            yield server, http


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def create(http: httpx.AsyncClient, name: str, key: str, input: Any = None) -> str:
    body: dict[str, Any] = {"name": name, "key": key}
    if input is not None:
        from runtime.protocol.encoding import encode_input

        body["input"] = encode_input(input)
    r = await http.put("/actors", json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["actor"]["actor_id"])


async def token_of(http: httpx.AsyncClient, actor_id: str) -> str:
    r = await http.get(f"/inspector/token/{actor_id}", headers=bearer(ADMIN))
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def assert_error(r: httpx.Response, status: int, group: str, code: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"group", "code", "message", "metadata"}
    assert (body["group"], body["code"]) == (group, code), body


async def test_every_actor_route_with_its_token() -> None:
    async with running() as (server, http):
        actor_id = await create(http, "counter", "a")
        h = server.runtime.client().get_for_id("counter", actor_id)
        await h.increment(3)
        await h.put("greeting", "hello")
        await h.put("avatar", b"\x00\x01")
        await h.put("other", "x")
        schedule_id = await h.remind(3600, "later")
        t = bearer(await token_of(http, actor_id))
        base = f"/gateway/{actor_id}/inspector"

        summary = (await http.get(f"{base}/summary", headers=t)).json()
        assert summary["name"] == "counter" and summary["key"] == ["a"] and summary["actor_id"] == actor_id
        assert summary["state"]["count"] == 3 and summary["workflow"] is False and summary["schedules"] == 1
        assert (await http.get(f"{base}/state", headers=t)).json() == {
            "enabled": True, "state": {"count": 3, "profile": {"name": "ada", "tags": ["x", "y"]}}}
        assert (await http.get(f"{base}/actions", headers=t)).json() == {
            "actions": ["get", "increment", "nap", "put", "remind", "ring"]}

        async with h.connect(params={"user": "ada"}):
            conns = (await http.get(f"{base}/connections", headers=t)).json()
            assert [(c["params"], c["hibernatable"]) for c in conns] == [({"user": "ada"}, True)]

        r = await http.post(f"{base}/actions/increment", headers=t, json={"args": [4]})
        assert r.status_code == 200 and r.json() == {"output": 7}
        assert (await http.post(f"{base}/actions/get", headers=t)).json()["output"]["count"] == 7  # args default []
        assert_error(await http.post(f"{base}/actions/nope", headers=t, json={"args": []}), 404, "actor",
                     "action_not_found")

        schedules = (await http.get(f"{base}/schedules", headers=t)).json()
        assert [(s["id"], s["action"], s["args"]) for s in schedules] == [(schedule_id, "ring", ["later"])]
        r = await http.delete(f"{base}/schedules/{schedule_id}", headers=t)
        assert r.status_code == 200 and r.json() == {"cancelled": True}
        assert (await http.delete(f"{base}/schedules/{schedule_id}", headers=t)).json() == {"cancelled": False}
        assert (await http.get(f"{base}/schedules", headers=t)).json() == []
        assert await h.action("get") is not None

        kv = (await http.get(f"{base}/kv", headers=t)).json()
        assert kv == [{"key": "avatar", "value": ["$Uint8Array", "AAE="]}, {"key": "greeting", "value": "hello"},
                      {"key": "other", "value": "x"}]
        assert (await http.get(f"{base}/kv?prefix=gr", headers=t)).json() == [{"key": "greeting", "value": "hello"}]
        assert len((await http.get(f"{base}/kv?limit=2", headers=t)).json()) == 2
        assert_error(await http.get(f"{base}/kv?limit=-1", headers=t), 400, "actor", "invalid_request")

        # msgpack, like the other routes
        r = await http.get(f"{base}/kv?prefix=av", headers={**t, "x-rivet-encoding": "msgpack"})
        assert r.headers["content-type"] == "application/x-msgpack"
        assert msgpack.unpackb(r.content) == [{"key": "avatar", "value": b"\x00\x01"}]
        r = await http.patch(f"{base}/state", headers={**t, "x-rivet-encoding": "msgpack"},
                             content=msgpack.packb({"state": {"count": 1, "blob": b"\xff"}}))
        assert msgpack.unpackb(r.content) == {"state": {"count": 1, "blob": b"\xff"}}

        # by name (rvt-* form); getOrCreate is served as get: an inspector request never creates
        r = await http.get("/gateway/counter/inspector/state?rvt-method=get&rvt-key=a", headers=t)
        assert r.json()["state"]["count"] == 1
        r = await http.get("/gateway/counter/inspector/state?rvt-method=getOrCreate&rvt-key=new", headers=t)
        assert_error(r, 404, "actor", "not_found")
        assert [a.key for a in await server.runtime.driver.list_actors("counter")] == [("a",)]


async def test_auth_failures_never_reach_the_data() -> None:
    async with running() as (server, http):
        a = await create(http, "counter", "a")
        b = await create(http, "counter", "b")
        token_b = await token_of(http, b)
        base = f"/gateway/{a}/inspector"
        for headers in ({}, bearer("wrong"), bearer(token_b), bearer(ADMIN), {"authorization": "Basic abc"},
                        {"authorization": "Bearer"}):
            for method, path, body in (("GET", "state", None), ("PATCH", "state", {"state": {"count": 99}}),
                                       ("POST", "actions/increment", {"args": [1]}), ("GET", "kv", None),
                                       ("DELETE", "schedules/x", None), ("GET", "workflow/history", None),
                                       ("POST", "workflow/replay", {"entry": "one"}), ("GET", "summary", None),
                                       ("GET", "connections", None), ("GET", "actions", None),
                                       ("GET", "schedules", None)):
                r = await http.request(method, f"{base}/{path}", headers=headers, json=body)
                assert_error(r, 401, "inspector", "unauthorized")
        assert (await server.runtime.client().get_for_id("counter", a).get())["count"] == 0

        # a missing header is refused before the actor is resolved: a sleeping actor stays asleep
        await server.runtime.client().get_for_id("counter", a).nap()

        def asleep() -> None:
            assert a not in server.runtime.manager.instances

        await eventually(asleep)
        assert_error(await http.get(f"{base}/state"), 401, "inspector", "unauthorized")
        assert a not in server.runtime.manager.instances


async def test_route_errors() -> None:
    async with running() as (server, http):
        a = await create(http, "counter", "a")
        t = bearer(await token_of(http, a))
        base = f"/gateway/{a}/inspector"
        assert_error(await http.get(f"{base}/nope", headers=t), 404, "core", "route_not_found")
        assert_error(await http.get(f"{base}", headers=t), 404, "core", "route_not_found")
        assert_error(await http.delete(f"{base}/state", headers=t), 405, "actor", "method_not_allowed")
        assert_error(await http.get(f"{base}/actions/increment", headers=t), 405, "actor", "method_not_allowed")
        assert_error(await http.patch(f"{base}/state", headers=t, json={"nostate": 1}), 400, "actor",
                     "invalid_request")
        assert_error(await http.patch(f"{base}/state", headers=t, content=b"{oops"), 400, "actor", "invalid_request")
        assert_error(await http.post(f"{base}/actions/increment", headers=t, json={"args": 5}), 400, "actor",
                     "invalid_request")
        assert_error(await http.get(f"{base}/state", headers={**t, "x-rivet-encoding": "cbor"}), 400, "protocol",
                     "unsupported_encoding")
        assert_error(await http.get("/gateway/nobody/inspector/state", headers=t), 404, "actor", "not_found")
        # the other gateway routes are untouched, including raw paths that contain "inspector"
        r = await http.post(f"/gateway/{a}/action/increment", json={"args": [1]})
        assert r.json() == {"output": 1}
        assert_error(await http.get(f"/gateway/{a}/request/inspector/x"), 404, "actor", "not_found")


async def test_patch_state_is_persisted_through_the_normal_write_path(tmp_path: Path) -> None:
    path = tmp_path / "state"
    async with running(FileDriver(path)) as (server, http):
        a = await create(http, "counter", "p")
        t = bearer(await token_of(http, a))
        new = {"count": 41, "profile": {"name": "grace", "tags": []}, "bytes": ["$Uint8Array", "AQI="]}
        r = await http.patch(f"/gateway/{a}/inspector/state", headers=t, json={"state": new})
        assert r.status_code == 200 and r.json() == {"state": new}
        # the actor's own code sees it at once, and keeps working with it
        assert await server.runtime.client().get_for_id("counter", a).increment(1) == 42
        r = await http.post(f"/gateway/{a}/inspector/state", headers=t, json={"state": {**new, "count": 50}})
        assert r.status_code == 200
    async with running(FileDriver(path)) as (server, http):
        state = await server.runtime.client().get_for_id("counter", a).get()
        assert state == {"count": 50, "profile": {"name": "grace", "tags": []}, "bytes": b"\x01\x02"}


async def test_workflow_history_and_replay(tmp_path: Path) -> None:
    log = str(tmp_path / "steps.log")
    async with running() as (server, http):
        f = await create(http, "flow", "w", {"log": log, "nap": 0.05})
        t = bearer(await token_of(http, f))
        base = f"/gateway/{f}/inspector"

        async def history() -> list[dict[str, Any]]:
            r = await http.get(f"{base}/workflow/history", headers=t)
            assert r.status_code == 200 and r.json()["workflow"] == "enabled", r.text
            return list(r.json()["history"])

        async def finished() -> None:
            assert [e["name"] for e in await history()] == ["one", "two", "nap", "three", "four", "five", "__done__"]

        await eventually(finished)
        entries = {e["name"]: e for e in await history()}
        assert entries["three"]["result"] == "three#1" and entries["__done__"]["result"][2] == "three#1"
        assert entries["nap"]["kind"] == "sleep" and entries["nap"]["status"] == "completed"

        assert_error(await http.post(f"{base}/workflow/replay", headers=t, json={"entry": "zzz"}), 400, "actor",
                     "invalid_request")
        assert_error(await http.post(f"{base}/workflow/replay", headers=t, json={}), 400, "actor", "invalid_request")
        r = await http.post(f"{base}/workflow/replay", headers=t, json={"entry": "three"})
        assert r.status_code == 200 and r.json() == {"workflow": "enabled", "removed": 4}  # three four five done

        async def rerun() -> None:
            entries = {e["name"]: e for e in await history()}
            assert entries.get("__done__", {}).get("result") == ["one#1", "two#1", "three#2", "four#2", "five#2"]
            assert entries["three"]["result"] == "three#2"

        await eventually(rerun)
        # the replayed steps really ran again; the ones before the entry did not
        assert lines(log) == ["one", "two", "three", "four:start", "five", "three", "four:start", "five"]


async def test_workflow_not_enabled_is_inferred_from_the_dropped_reply() -> None:
    async with running() as (server, http):
        a = await create(http, "counter", "n")
        t = bearer(await token_of(http, a))
        r = await http.get(f"/gateway/{a}/inspector/workflow/history", headers=t)
        assert r.status_code == 200 and r.json() == {"workflow": "not_enabled", "history": None}
        r = await http.post(f"/gateway/{a}/inspector/workflow/replay", headers=t, json={"entry": "one"})
        assert_error(r, 409, "inspector", "workflow_not_enabled")
        assert r.json()["metadata"] == {"workflow": "not_enabled"}
        # the summary says the same, from the actor's side
        assert (await http.get(f"/gateway/{a}/inspector/summary", headers=t)).json()["workflow"] is False


async def test_admin_routes_and_ui_only_in_dev_mode() -> None:
    async with running(admin=None) as (server, http):
        a = await create(http, "counter", "a")
        for path in ("/inspector/actors", f"/inspector/token/{a}", "/ui"):
            assert_error(await http.get(path, headers=bearer(ADMIN)), 404, "core", "route_not_found")
    async with running() as (server, http):
        a = await create(http, "counter", "a")
        b = await create(http, "counter", "b")
        await server.runtime.client().get_for_id("counter", b).nap()

        async def listing() -> None:
            r = await http.get("/inspector/actors", headers=bearer(ADMIN))
            assert r.status_code == 200
            rows = {x["actor_id"]: x for x in r.json()["actors"]}
            assert rows[a]["awake"] is True and rows[b]["awake"] is False
            assert rows[b]["name"] == "counter" and rows[b]["key"] == ["b"]

        await eventually(listing)
        assert b not in server.runtime.manager.instances  # listing wakes nobody
        for headers in ({}, bearer("nope"), bearer(await token_of(http, a))):
            assert_error(await http.get("/inspector/actors", headers=headers), 401, "inspector", "unauthorized")
            assert_error(await http.get(f"/inspector/token/{a}", headers=headers), 401, "inspector", "unauthorized")
        assert_error(await http.get("/inspector/token/nobody", headers=bearer(ADMIN)), 404, "actor", "not_found")
        assert_error(await http.post("/inspector/actors", headers=bearer(ADMIN)), 405, "actor", "method_not_allowed")
        assert_error(await http.get("/inspector/other", headers=bearer(ADMIN)), 404, "core", "route_not_found")
        # the per-actor token is stable (stored with the actor) and works on the actor routes
        token = await token_of(http, b)
        assert token == await token_of(http, b)
        assert (await http.get(f"/gateway/{b}/inspector/state", headers=bearer(token))).status_code == 200
        r = await http.get("/ui")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "<script>" in r.text and "http" not in r.text.split("<script>")[0].split("<body>")[1]
        assert "src=" not in r.text and "<link" not in r.text  # self-contained: no external assets
