"""Raw HTTP (``/request/...`` → ``on_request``) and WebSocket (``/websocket/...`` → ``on_websocket``)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

pytestmark = pytest.mark.anyio


async def create(http, name: str, key: str) -> str:
    r = await http.put("/actors", json={"name": name, "key": key, "runner_name_selector": "default",
                                        "crash_policy": "sleep"})
    return r.json()["actor"]["actor_id"]


async def test_on_request_by_id(http):
    actor_id = await create(http, "web", "a")
    r = await http.get(f"/gateway/{actor_id}/request/items/3?x=1&y=two", headers={"X-Test": "hdr"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"method": "GET", "path": "/items/3", "query": {"x": "1", "y": "two"}, "header": "hdr",
                        "body": "", "hits": 1}
    r = await http.post(f"/gateway/{actor_id}/request", content=b"payload")
    assert r.json()["path"] == "/" and r.json()["body"] == "payload" and r.json()["method"] == "POST"
    r = await http.get(f"/gateway/{actor_id}/request/text")
    assert (r.status_code, r.text) == (200, "plain text")
    assert r.headers["content-type"].startswith("text/plain")
    r = await http.put(f"/gateway/{actor_id}/request/response")
    assert (r.status_code, r.content, r.headers["x-custom"]) == (201, b"created!", "yes")


async def test_on_request_by_name_strips_rvt_params(http):
    r = await http.get("/gateway/web/request/q?keep=1&rvt-namespace=default&rvt-method=getOrCreate"
                       "&rvt-runner=default&rvt-key=k1")
    assert r.json()["query"] == {"keep": "1"}
    r = await http.get("/gateway/web/request/q?rvt-namespace=default&rvt-method=get&rvt-key=k1")
    assert r.json()["hits"] == 2


async def test_on_request_errors(http):
    actor_id = await create(http, "web", "errors")
    r = await http.get(f"/gateway/{actor_id}/request/boom")
    assert r.status_code == 500
    assert r.json() == {"group": "core", "code": "internal_error", "message": "An internal error occurred",
                        "metadata": None}
    r = await http.get(f"/gateway/{actor_id}/request/user-error")
    assert r.status_code == 400 and r.json()["code"] == "raw_bad"
    plain_id = await create(http, "plain", "no-raw")
    r = await http.get(f"/gateway/{plain_id}/request/anything")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    r = await http.get("/gateway/missing-id/request/x")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    # the actor still serves
    r = await http.get(f"/gateway/{actor_id}/request/text")
    assert r.text == "plain text"


def ws_url(server, path: str) -> str:
    return server.url.replace("http://", "ws://") + path


async def test_on_websocket_echo_and_server_close(server, http):
    actor_id = await create(http, "web", "ws")
    async with websockets.connect(ws_url(server, f"/gateway/{actor_id}/websocket/chat?room=1"),
                                  subprotocols=["rivet"]) as ws:
        assert await ws.recv() == "hello /chat [('room', '1')]"
        await ws.send("hi")
        assert await ws.recv() == "echo:hi"
        await ws.send(b"\x01\x02")
        assert await ws.recv() == b"echo:\x01\x02"
        await ws.send("close")
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 5)
        assert (info.value.rcvd.code, info.value.rcvd.reason) == (4000, "bye")


async def test_on_websocket_by_name_and_client_close(server, http):
    path = "/gateway/web/websocket?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=w2"
    async with websockets.connect(ws_url(server, path)) as ws:
        assert await ws.recv() == "hello / []"
        await ws.send("one")
        assert await ws.recv() == "echo:one"
    # the handler ended with the client's close; the actor keeps serving
    async with websockets.connect(ws_url(server, path)) as ws:
        assert await ws.recv() == "hello / []"


async def test_on_websocket_missing_handler_or_actor(server, http):
    plain_id = await create(http, "plain", "no-ws")
    for path, reason in [(f"/gateway/{plain_id}/websocket/x", "actor.not_found"),
                         ("/gateway/missing/websocket", "actor.not_found"),
                         ("/elsewhere", "core.route_not_found")]:
        async with websockets.connect(ws_url(server, path)) as ws:
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), 5)
            assert (info.value.rcvd.code, info.value.rcvd.reason) == (1011, reason)


async def test_open_raw_socket_is_closed_on_shutdown(tmp_path):
    from runtime.drivers import FileDriver
    from tests.server.actors import registry

    async with registry.serve(port=0, driver=FileDriver(tmp_path)) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            actor_id = await create(http, "web", "shutdown")
        ws = await websockets.connect(ws_url(server, f"/gateway/{actor_id}/websocket"))
        assert (await ws.recv()).startswith("hello")
    # leaving serve() ended the socket instead of hanging on it
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 5)
